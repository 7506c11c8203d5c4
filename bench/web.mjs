// The browser app's speed (issue 6), in Debian Chromium against `brazen serve` (release build):
// per round, on a fresh page (no cache), the time from navigation start to the app being ready
// (`window.brazen.readyAt`: the catalog loaded, Connect usable), then from the Connect click to
// the first avatar frame shown (`requestVideoFrameCallback`), over WebRTC and over the WebSocket;
// and the size of the JavaScript and CSS the page loads, raw and gzipped.
//
//   BRAZEN_BIN=… node bench/web.mjs [ROUNDS]      (bench/web.sh builds and runs it)
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { startBrazen, API_KEY } from '../tests/conformance/js/lib/server.mjs';
import { launchChromium } from '../tests/conformance/js/lib/avatar-page.mjs';

const ROUNDS = Number(process.argv[2] || 10);
const server = await startBrazen('bench-web');
const browser = await launchChromium();

async function round(output) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.addInitScript(([s]) => localStorage.setItem('brazen.settings.v1', s),
    [JSON.stringify({ apiKey: API_KEY, avatar: { enabled: true, output, resolution: 'portrait' } })]);
  await page.goto(server.baseUrl + '/');
  await page.waitForSelector('body[data-ready]');
  const ready = await page.evaluate(() => window.brazen.readyAt);
  await page.getByRole('button', { name: 'Connect' }).click();
  await page.waitForFunction(() => window.brazen.view?.startup.firstFrame, null, { timeout: 15000 });
  const s = await page.evaluate(() => window.brazen.view.startup);
  await page.close();
  return { ready, frame: s.firstFrame - s.click, socket: s.socketOpen - s.click, session: s.sessionUpdated - s.click, answer: s.answer ? s.answer - s.click : NaN };
}

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
const f = (x) => (Number.isFinite(x) ? x.toFixed(0) : '—');
try {
  for (const output of ['webrtc', 'websocket']) {
    const rows = [];
    await round(output); // the first page load warms the server's and the browser's caches
    for (let i = 0; i < ROUNDS; i++) rows.push(await round(output));
    console.log(`\n${output}: ${ROUNDS} rounds, ms            p50     p90     max`);
    for (const [key, label] of [['ready', 'page load → ready        '], ['socket', 'Connect → socket open    '], ['session', 'Connect → session set up '], ['answer', 'Connect → avatar answer  '], ['frame', 'Connect → first frame    ']]) {
      const xs = rows.map((r) => r[key]);
      console.log(`  ${label} ${f(pct(xs, 0.5)).padStart(6)}  ${f(pct(xs, 0.9)).padStart(6)}  ${f(Math.max(...xs)).padStart(6)}`);
    }
  }
} finally {
  await browser.close();
  await server.stop();
}

const dist = path.join(import.meta.dirname, '../web/dist/assets');
console.log('\nbundle (web/dist/assets)        bytes     gzip');
let total = [0, 0];
for (const name of fs.readdirSync(dist).sort()) {
  const bytes = fs.readFileSync(path.join(dist, name));
  const gz = zlib.gzipSync(bytes, { level: 9 }).length;
  total = [total[0] + bytes.length, total[1] + gz];
  console.log(`  ${name.padEnd(28)} ${String(bytes.length).padStart(7)}  ${String(gz).padStart(7)}`);
}
console.log(`  ${'total'.padEnd(28)} ${String(total[0]).padStart(7)}  ${String(total[1]).padStart(7)}`);
