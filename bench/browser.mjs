// Avatar start-up in a real browser (issue 5): Debian Chromium connects to `brazen serve` as the
// Voice Live samples do (see tests/conformance/js/lib/avatar-page.mjs), ROUNDS times, each on a new
// session and page. Per round, on the page's clock: ICE gathering against brazen's STUN server,
// then the time from the answer reaching the page to ICE connected, to DTLS connected
// (`connectionState`), and to the first video frame shown (`requestVideoFrameCallback`: decoded
// and composited); on the backend's clock, the answer's round
// trip (`session.avatar.connect` sent → `session.avatar.connecting` received).
//
//   BRAZEN_BIN=… node bench/browser.mjs [ROUNDS]      (bench/browser.sh builds and runs it)
import { startBrazen } from '../tests/conformance/js/lib/server.mjs';
import { launchChromium, openAvatarPage, mouthRegion, connectBackend } from '../tests/conformance/js/lib/avatar-page.mjs';

const ROUNDS = Number(process.argv[2] || 10);
const RESOLUTION = { width: 1920, height: 1080 };
const CROP = { top_left: [560, 0], bottom_right: [1360, 1080] };

const server = await startBrazen('bench-browser');
const browser = await launchChromium();
const rows = [];
try {
  for (let i = 0; i < ROUNDS; i++) {
    const { ws, events, send } = await connectBackend(server);
    await events.waitFor('session.created');
    send({ type: 'session.update', session: { turn_detection: null, avatar: {
      character: 'lisa', style: 'casual-sitting', video: { codec: 'h264', bitrate: 1000000, resolution: RESOLUTION, crop: CROP } } } });
    const { ev: updated } = await events.waitFor('session.updated');
    const page = await openAvatarPage(browser);
    const clientSdp = await page.evaluate((servers) => window.makeOffer(servers), updated.session.avatar.ice_servers);
    const sent = performance.now();
    send({ type: 'session.avatar.connect', client_sdp: clientSdp });
    const { ev: connecting } = await events.waitFor('session.avatar.connecting');
    const answerMs = performance.now() - sent;
    await page.evaluate(([sdp, region]) => window.acceptAnswer(sdp, region), [connecting.server_sdp, mouthRegion(RESOLUTION, CROP)]);
    await page.waitForFunction(() => window.seen.firstFrameAt !== null, null, { timeout: 10000 });
    const seen = await page.evaluate(() => window.seen);
    rows.push({
      gather: seen.gatheredMs,
      answer: answerMs,
      ice: seen.iceAt - seen.answerAt,
      dtls: seen.connectedAt - seen.answerAt,
      first: seen.firstFrameAt - seen.answerAt,
    });
    await page.close();
    ws.close();
  }
} finally {
  await browser.close();
  await server.stop();
}

const stat = (key) => {
  const v = rows.map((r) => r[key]).sort((a, b) => a - b);
  const p = (q) => v[Math.round((v.length - 1) * q)];
  return `p50 ${p(0.5).toFixed(0)} ms, max ${v[v.length - 1].toFixed(0)} ms`;
};
console.log(`rounds                          ${rows.length} (lisa, 1920×1080 cropped to 800×1080, 1 Mbit/s)`);
console.log(`ICE gathering (page)            ${stat('gather')}`);
console.log(`connect → answer (backend)      ${stat('answer')}`);
console.log(`answer → ICE connected (page)   ${stat('ice')}`);
console.log(`answer → DTLS connected (page)  ${stat('dtls')}`);
console.log(`answer → first frame (page)     ${stat('first')}   target ≤ 300 ms`);
console.log(`per round, first frame (ms)     ${rows.map((r) => r.first.toFixed(0)).join(' ')}`);
