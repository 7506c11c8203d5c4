// brazen's own browser app (web/, embedded in the binary) end to end in Debian Chromium, against
// `brazen serve` with the real models (Silero VAD, Whisper tiny.en, the local Qwen LLM, Piper).
// Chromium's fake microphone plays a WAV of a spoken question in a loop: the page connects, the
// question is recognised and shown, the reply streams into the transcript while the avatar speaks
// it over WebRTC (its audio arrives, its mouth moves); unmuting the microphone while the avatar is
// speaking is a barge-in that stops the reply and truncates it. Without the avatar, a typed message
// is answered through the page's own audio player with the words highlighted as they are heard.
// Wrong keys and unreachable servers get plain-language messages; a phone-sized screen has no
// sideways scrolling. Screenshots go beside the server logs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startBrazen, API_KEY } from '../lib/server.mjs';
import { sleep } from '../lib/events.mjs';
import { chromium } from 'playwright-core';
import { CHROMIUM, launchChromium, mouthRegion, mouthSampler } from '../lib/avatar-page.mjs';
import { speechWav } from '../lib/wav.mjs';

const QUESTION = 'Name the days of the week.';
const INSTRUCTIONS = 'You are a helpful assistant. Do exactly what the user asks.';
const SETTINGS_KEY = 'brazen.settings.v1';
// The mouth region moves in most speaking frames (share of its pixels, as in avatar-browser).
const MOVING = 0.015;
const SQUARE = { width: 512, height: 512 };
const SHOTS = process.env.BRAZEN_CONF_LOGS || '/tmp/brazen-conformance-logs';

let server;
let echoServer;
let browser;
let wav;
before(async () => {
  // The question between silences, looped by Chromium, and from its start whenever the page opens
  // the microphone: muted (the device released) as soon as the server hears the question end,
  // the microphone is unmuted while the avatar speaks and the question comes again at once.
  wav = speechWav(QUESTION, 4000, 400);
  server = await startBrazen('browser-app', {
    asr: 'whisper-tiny-en', llm: 'qwen2.5-coder-1.5b', tts: 'piper', timeoutMs: 240000,
  });
  // A server whose WebRTC media address cannot be reached (a documentation-only address, as a
  // misconfigured NAT would give), with the stand-in recogniser and LLM (the reply repeats the
  // user) and the Piper voice, for the fallback, drawn-avatar and push-to-talk tests.
  echoServer = await startBrazen('browser-app-echo', { tts: 'piper', env: { BRAZEN_MEDIA_ADDRESS: '192.0.2.1' } });
  browser = await launchChromium([`--use-file-for-fake-audio-capture=${wav.file}`]);
});
after(async () => {
  await browser?.close();
  await server?.stop();
  await echoServer?.stop();
});

/** A page of the app with these settings stored (merged over the defaults by the app). */
async function openApp(settings, viewport = { width: 1280, height: 800 }, on = server) {
  const page = await browser.newPage({ viewport });
  const problems = [];
  page.on('pageerror', (e) => problems.push(e.message));
  await page.addInitScript(([key, value]) => {
    if (!sessionStorage.getItem('seeded')) {
      localStorage.setItem(key, value);
      sessionStorage.setItem('seeded', '1');
    }
  }, [SETTINGS_KEY, JSON.stringify(settings)]);
  await page.goto(on.baseUrl + '/');
  await page.waitForSelector('body[data-ready]', { timeout: 10000 });
  return { page, problems };
}

/**
 * `error` with the page's event log and the server's log appended, after a screenshot
 * `app-failed-NAME.png` of `page` (`on`: the server the page talked to).
 */
async function failed(page, name, error, on = server) {
  await shot(page, `failed-${name}`).catch(() => {});
  const events = await page.locator('.log li summary').allInnerTexts().catch(() => []);
  return new Error(
    `${error.message}\n--- the page's last events ---\n${events.slice(-30).join('\n')}\n--- server log ---\n${on.logTail(60)}`,
    { cause: error },
  );
}

const shot = (page, name) => page.screenshot({ path: path.join(SHOTS, `app-${name}.png`), fullPage: true });
const view = (page) => page.evaluate(() => window.brazen.view);
const logged = (page, type) => page.locator('.log li summary', { hasText: new RegExp(`^${type.replace(/\./g, '\\.')}$`) }).count();

test('a spoken question is answered by the talking avatar, and speaking over it stops it', async (t) => {
  // Barge-in as soon as speech is heard: with "mm-hmm does not interrupt" (the default) the
  // words decide, and on these busy cores they can come after a short reply has ended. Holding
  // backchannels is tested with the real models in crates/server/tests/backchannels.rs.
  const { page, problems } = await openApp({
    apiKey: API_KEY, instructions: INSTRUCTIONS, developer: true, micMode: 'hands-free', rate: 0.5, browserTools: false,
    turn: { ignoreFillers: false },
    avatar: { enabled: true, output: 'webrtc', resolution: 'square' },
  });
  try {
    const before = await page.locator('.stage').boundingBox();
    // Record, in the page, each video frame's mouth movement and the avatar's speaking state.
    await page.evaluate(([sampler, region]) => {
      const make = new Function(`return (${sampler})`)();
      const sample = make(region);
      const video = document.querySelector('[data-testid=avatar-video]');
      window.frames_ = [];
      const onFrame = () => {
        const changed = sample(video);
        if (changed !== null) window.frames_.push({ at: performance.now(), changed, speaking: !!window.brazen.view?.avatarSpeaking });
        video.requestVideoFrameCallback(onFrame);
      };
      video.requestVideoFrameCallback(onFrame);
    }, [mouthSampler.toString(), mouthRegion(SQUARE)]);

    // Mute the moment the server hears the question end (in the page, so the looping file cannot
    // ask it again first).
    const muted = page.evaluate(() => new Promise((resolve) => {
      let heard = false;
      const poll = () => {
        const label = document.querySelector('.mic .label')?.textContent;
        if (label === 'hearing you') heard = true;
        if (heard && label !== 'hearing you') {
          document.querySelector('[data-testid=mute]').click();
          return resolve();
        }
        requestAnimationFrame(poll);
      };
      poll();
    }));
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.waitForSelector('.status.connected', { timeout: 15000 });
    await muted;

    // The question is recognised.
    const user = page.locator('.entry.user[data-status=done]').first();
    await user.waitFor({ timeout: 30000 });
    const heard = await user.locator('.text').innerText();
    assert.match(heard, /days|week/i, `the question as recognised: ${heard}`);

    // The avatar speaks the reply (slowly: rate 0.5); unmuting the microphone reopens it, the
    // question is heard again from its start and interrupts the reply about a second in, however
    // short the model's answer.
    await page.waitForFunction(() => window.brazen.view.avatarSpeaking, null, { timeout: 60000 });
    const energyEarly = (await page.evaluate(() => window.brazen.call.mediaStats())).audioEnergy;
    await sleep(400);
    assert.ok((await view(page)).avatarSpeaking, 'still speaking before the barge-in');
    const unmutedAt = await page.evaluate(() => performance.now());
    await page.getByTestId('mute').click();
    const cut = page.locator('.entry.assistant[data-status=cancelled]').first();
    await cut.waitFor({ timeout: 8000 });
    await page.waitForFunction(() => !window.brazen.view.avatarSpeaking, null, { timeout: 3000 });
    await page.getByTestId('mute').click();
    const stoppedAt = await page.evaluate(() => performance.now());
    assert.ok(stoppedAt - unmutedAt < 4000, `the reply stopped ${Math.round(stoppedAt - unmutedAt)} ms after unmuting`);

    // While it spoke: its audio arrived, its mouth moved, the box stayed put.
    const stats = await page.evaluate(() => window.brazen.call.mediaStats());
    assert.ok(stats.audioEnergy > energyEarly, `the avatar's audio is heard: energy ${energyEarly} → ${stats.audioEnergy}`);
    assert.ok(stats.videoFrames > 50, `video frames decoded: ${stats.videoFrames}`);
    const area = mouthRegion(SQUARE).w * mouthRegion(SQUARE).h;
    // Slow speech holds some shapes for several frames, and the speaking edges lead and trail
    // the lips a little: the mouth moves in a good share of the speaking frames and far more often
    // than in the idle ones.
    const frames = await page.evaluate(() => window.frames_);
    const share = (fs) => fs.filter((f) => f.changed / area > MOVING).length / Math.max(1, fs.length);
    const speaking = frames.filter((f) => f.speaking);
    const idle = frames.filter((f) => !f.speaking);
    const summary = `moving in ${(share(speaking) * 100).toFixed(0)} % of ${speaking.length} speaking frames, ${(share(idle) * 100).toFixed(0)} % of ${idle.length} idle ones`;
    t.diagnostic(summary);
    assert.ok(speaking.length > 12 && idle.length > 25, summary);
    assert.ok(share(speaking) >= 0.3 && share(idle) * 3 < share(speaking), `the mouth follows the speech: ${summary}`);
    const after = await page.locator('.stage').boundingBox();
    assert.deepEqual(after, before, 'the avatar box did not move or resize when the video arrived');

    // The words heard before the barge-in stay, then the note of where it was cut.
    assert.match(await cut.innerText(), /\w+.*\(interrupted at \d+\.\d s\)/s);
    assert.equal(await logged(page, 'conversation.item.truncate'), 1, 'the page sent one truncate');
    assert.equal(await logged(page, 'conversation.item.truncated'), 1, 'the server confirmed it');
    await shot(page, 'barge-in');

    // The developer panel timed the start-up and the turn.
    const startup = (await view(page)).startup;
    assert.ok(startup.firstFrame > startup.click, JSON.stringify(startup));
    const turn = await page.locator('.latency.turns tbody tr').first().innerText();
    assert.match(turn, /\d+ ms/, `turn latency row: ${turn}`);
    assert.deepEqual(problems, []);
  } catch (e) {
    throw await failed(page, 'avatar', e);
  } finally {
    await page.close();
  }
});

test('without the avatar a typed message is answered through the page audio player, words highlighted', async () => {
  const { page, problems } = await openApp({
    apiKey: API_KEY, instructions: INSTRUCTIONS, developer: true, avatar: { enabled: false },
  });
  try {
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.waitForSelector('.status.connected', { timeout: 15000 });
    await page.getByTestId('mute').click();
    await page.getByLabel('Message').fill('Tell me about the Eiffel Tower.');
    await page.getByLabel('Message').press('Enter');
    await page.locator('.entry.user', { hasText: 'Eiffel Tower' }).waitFor({ timeout: 5000 });
    await page.waitForFunction(() => window.brazen.view.playing, null, { timeout: 60000 });
    await page.locator('.entry.assistant .word.now').first().waitFor({ timeout: 5000 });
    const first = await page.locator('.entry.assistant .word.now').first().innerText();
    // The words played are marked heard (the reply may open with a short interim line and then
    // wait for the model, so this is given time).
    await page.locator('.entry.assistant .word.heard').first().waitFor({ timeout: 20000 }).catch(() => {});
    const second = await page.locator('.entry.assistant .word.now').first().innerText().catch(() => '');
    const heardWords = await page.locator('.entry.assistant .word.heard').count();
    assert.ok(heardWords > 0, `words already heard are marked (${first} → ${second})`);
    // The reply streams: its transcript came in several deltas, at different times.
    const deltas = await page.locator('.log li', { hasText: 'response.audio_transcript.delta' }).locator('.t').allInnerTexts();
    assert.ok(new Set(deltas).size > 1, `transcript deltas at ${deltas}`);
    await shot(page, 'typed');
    // Typing again interrupts: the page stops the audio and truncates what was heard.
    await page.getByLabel('Message').fill('Thank you.');
    await page.getByLabel('Message').press('Enter');
    await page.locator('.entry.assistant[data-status=cancelled]').first().waitFor({ timeout: 10000 });
    // The reply's item can be marked cancelled (its `output_item.done`, incomplete) before the
    // server's answer to the truncation arrives: wait for that answer, then count it.
    await page.locator('.log li summary', { hasText: /^conversation\.item\.truncated$/ }).first()
      .waitFor({ timeout: 10000 });
    assert.equal(await logged(page, 'conversation.item.truncated'), 1);
    assert.deepEqual(problems, []);
  } catch (e) {
    throw await failed(page, 'typed', e);
  } finally {
    await page.close();
  }
});

test('the page connects with a one-session client secret, from the site\'s token URL or minted with its key, never a key in a URL', async () => {
  // The site's backend, as a page would reach it: it mints a secret with the server's key.
  const minted = [];
  const { page, problems } = await openApp({ tokenUrl: '/site/token', avatar: { enabled: false } }, undefined, echoServer);
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));
  await page.route('**/site/token', async (route) => {
    const r = await fetch(`${echoServer.baseUrl}/v1/realtime/client_secrets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ expires_after: { anchor: 'created_at', seconds: 60 } }),
    });
    minted.push(r.status);
    await route.fulfill({ status: 200, contentType: 'application/json', body: await r.text() });
  });
  try {
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.waitForSelector('.status.connected', { timeout: 15000 });
    assert.deepEqual(minted, [200], 'one secret per call');
    await page.getByLabel('Message').fill('A secret got me in.');
    await page.getByLabel('Message').press('Enter');
    await page.locator('.entry.assistant', { hasText: 'A secret got me in' }).waitFor({ timeout: 10000 });
    assert.equal(sockets.length, 1);
    assert.ok(!sockets[0].includes(API_KEY) && !sockets[0].includes('api-key'), sockets[0]);
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
  // With the key in the settings the page mints its own secret: the key goes in one request's
  // header, never into the socket's URL.
  const keyed = await openApp({ apiKey: API_KEY, avatar: { enabled: false } }, undefined, echoServer);
  const posts = [];
  const keyedSockets = [];
  keyed.page.on('request', (r) => { if (r.method() === 'POST') posts.push(new URL(r.url()).pathname); });
  keyed.page.on('websocket', (ws) => keyedSockets.push(ws.url()));
  try {
    await keyed.page.getByRole('button', { name: 'Connect' }).click();
    await keyed.page.waitForSelector('.status.connected', { timeout: 15000 });
    assert.deepEqual(posts, ['/v1/realtime/client_secrets']);
    assert.ok(keyedSockets.length === 1 && !keyedSockets[0].includes(API_KEY), String(keyedSockets));
  } finally {
    await keyed.page.close();
  }
});

test('a denied microphone is explained and typing still works', async () => {
  // A Chromium with a (fake) microphone that asks before handing it out; headless, it is denied.
  const strict = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--use-fake-device-for-media-stream'] });
  try {
    const page = await strict.newPage();
    const problems = [];
    page.on('pageerror', (e) => problems.push(e.message));
    await page.addInitScript(([key, value]) => localStorage.setItem(key, value),
      [SETTINGS_KEY, JSON.stringify({ apiKey: API_KEY, avatar: { enabled: false } })]);
    await page.goto(echoServer.baseUrl + '/');
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.locator('.entry.notice', { hasText: 'Microphone access was denied' }).waitFor({ timeout: 10000 });
    await page.waitForSelector('.status.connected');
    assert.equal(await page.locator('.mic .label').innerText(), 'mic off');
    await page.getByLabel('Message').fill('Typing works without a microphone.');
    await page.getByLabel('Message').press('Enter');
    await page.locator('.entry.assistant', { hasText: 'Typing works' }).waitFor({ timeout: 10000 });
    assert.deepEqual(problems, []);
  } finally {
    await strict.close();
  }
});

test('a wrong key and an unreachable server are explained; a phone screen does not scroll sideways', async () => {
  const wrong = await openApp({ apiKey: 'not-the-key', avatar: { enabled: false } });
  await wrong.page.getByRole('button', { name: 'Connect' }).click();
  await wrong.page.locator('.entry.notice', { hasText: 'refused the API key' }).waitFor({ timeout: 10000 });
  assert.equal(await wrong.page.locator('.status').innerText(), 'not connected');
  await wrong.page.close();

  const away = await openApp({ endpoint: 'http://127.0.0.1:9', avatar: { enabled: false } });
  await away.page.locator('.banner', { hasText: 'did not answer' }).waitFor({ timeout: 10000 });
  await away.page.getByRole('button', { name: 'Connect' }).click();
  await away.page.locator('.entry.notice', { hasText: 'cannot be reached' }).waitFor({ timeout: 15000 });
  await away.page.close();

  const phone = await openApp({ apiKey: API_KEY, developer: true }, { width: 390, height: 844 });
  await phone.page.getByRole('button', { name: 'Settings' }).click();
  await phone.page.getByRole('complementary', { name: 'Settings' }).waitFor();
  const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no sideways scrolling on a phone (overflow ${overflow} px)`);
  // The keyboard works it: Escape closes the settings and gives the focus back to their button,
  // Shift+Tab goes on to Connect, Enter connects.
  await phone.page.keyboard.press('Escape');
  assert.equal(await phone.page.getByRole('complementary', { name: 'Settings' }).count(), 0);
  await phone.page.waitForFunction(() => document.activeElement?.textContent === 'Settings');
  await shot(phone.page, 'phone');
  await phone.page.keyboard.press('Shift+Tab');
  assert.equal(await phone.page.evaluate(() => document.activeElement?.textContent), 'Connect');
  await phone.page.keyboard.press('Enter');
  await phone.page.waitForSelector('.status.connected', { timeout: 15000 });
  assert.deepEqual([...wrong.problems, ...away.problems, ...phone.problems], []);
  await phone.page.close();
});

test('when WebRTC cannot connect the avatar comes over the WebSocket instead', async () => {
  const { page, problems } = await openApp({ apiKey: API_KEY, avatar: { enabled: true, output: 'webrtc', resolution: 'square' } },
    undefined, echoServer);
  try {
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.locator('.entry.notice', { hasText: 'comes over the WebSocket instead' }).waitFor({ timeout: 15000 });
    assert.equal((await view(page)).video, 'websocket');
    await page.waitForFunction(() => window.brazen.view.startup.firstFrame, null, { timeout: 10000 });
    const t0 = await page.evaluate(() => document.querySelector('video').currentTime);
    await sleep(1000);
    const state = await page.evaluate(() => {
      const v = document.querySelector('video');
      return { t: v.currentTime, size: [v.videoWidth, v.videoHeight], decoded: v.webkitVideoDecodedByteCount };
    });
    assert.ok(state.t > t0 + 0.5, `the MediaSource video plays: ${t0} → ${state.t}`);
    assert.deepEqual(state.size, [512, 512]);
    await shot(page, 'fallback');
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

test('the page can draw the avatar itself from viseme events', async () => {
  const { page, problems } = await openApp({ apiKey: API_KEY, avatar: { enabled: true, output: 'canvas' } }, undefined, echoServer);
  try {
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.waitForSelector('.status.connected', { timeout: 15000 });
    await page.getByTestId('mute').click();
    // The mouth's box on the canvas, sampled every animation frame while the reply plays.
    const sampling = page.evaluate(() => new Promise((resolve) => {
      const canvas = document.querySelector('canvas.drawn');
      const g = canvas.getContext('2d');
      const shapes = new Set();
      let playedFrames = 0;
      const tick = () => {
        if (window.brazen.view.playing) {
          playedFrames++;
          const { data } = g.getImageData(canvas.width * 0.3, canvas.height * 0.5, canvas.width * 0.4, canvas.height * 0.2);
          let dark = 0;
          for (let i = 0; i < data.length; i += 4) if (data[i] < 120 && data[i + 3] > 0) dark++;
          shapes.add(dark);
        } else if (playedFrames > 30) return resolve({ playedFrames, shapes: shapes.size });
        requestAnimationFrame(tick);
      };
      tick();
    }));
    await page.getByLabel('Message').fill('Hello there, this is the avatar drawn by the page, opening and closing its mouth.');
    await page.getByLabel('Message').press('Enter');
    const { playedFrames, shapes } = await sampling;
    assert.ok(shapes > 10, `the drawn mouth changes shape while the reply plays: ${shapes} shapes in ${playedFrames} frames`);
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

test('push-to-talk sends the turn when the key is released', async () => {
  const { page, problems } = await openApp({ apiKey: API_KEY, developer: true, micMode: 'push-to-talk', avatar: { enabled: false } },
    undefined, echoServer);
  try {
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.waitForSelector('.status.connected', { timeout: 15000 });
    await page.locator('.mic .label', { hasText: 'hold to talk' }).waitFor({ timeout: 5000 });
    await page.locator('body').focus();
    await page.keyboard.down('Space');
    assert.equal(await page.getByRole('button', { name: /Hold to talk/ }).getAttribute('aria-pressed'), 'true');
    await sleep(2500);
    await page.keyboard.up('Space');
    // The stand-in recogniser names the turn's length; the stand-in LLM repeats it.
    const user = page.locator('.entry.user[data-status=done]').first();
    await user.waitFor({ timeout: 10000 });
    assert.match(await user.innerText(), /\[speech \d+\.\d s\]/);
    await page.locator('.entry.assistant').first().filter({ hasText: /speech/ }).waitFor({ timeout: 10000 });
    assert.equal(await logged(page, 'input_audio_buffer.commit'), 1);
    assert.equal(await logged(page, 'response.create'), 1);
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

test('a transparent background shows the page through the avatar (key colour over WebRTC, alpha over the WebSocket)', async () => {
  for (const [output, on] of [['webrtc', server], ['websocket', echoServer]]) {
    const { page, problems } = await openApp({ apiKey: API_KEY, avatar: { enabled: true, output, resolution: 'square', background: '#00FF0000' } },
      undefined, on);
    try {
      await page.getByRole('button', { name: 'Connect' }).click();
      await page.waitForFunction(() => window.brazen.view?.startup.firstFrame && window.brazen.view.transparency, null, { timeout: 15000 });
      const method = (await view(page)).transparency.method;
      assert.equal(method, output === 'webrtc' ? 'chroma_key' : 'alpha_below');
      await sleep(500);
      // The composited picture: see-through in the corner, solid on the face.
      const alpha = await page.evaluate(() => {
        const overlay = document.querySelector('canvas.overlay');
        const c = document.createElement('canvas');
        c.width = overlay.width; c.height = overlay.height;
        const g = c.getContext('2d');
        g.drawImage(overlay, 0, 0);
        const at = (x, y) => g.getImageData(Math.round(x * c.width), Math.round(y * c.height), 1, 1).data[3];
        return { corner: at(0.03, 0.03), face: at(0.5, 0.45), size: [c.width, c.height], visible: getComputedStyle(overlay).display !== 'none' };
      });
      assert.ok(alpha.visible, JSON.stringify(alpha));
      assert.deepEqual(alpha.size, [512, 512]);
      assert.ok(alpha.corner < 20 && alpha.face > 235, `${output}: ${JSON.stringify(alpha)}`);
      await shot(page, `transparent-${output}`);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  }
});

test('a photo chosen from the device becomes the avatar, and the scene sliders move it live', async () => {
  const { page, problems } = await openApp({ apiKey: API_KEY, developer: true,
    avatar: { enabled: true, output: 'websocket', resolution: 'square', kind: 'photo' } }, undefined, echoServer);
  try {
    // A head-and-shoulders "photo" (lips at 66 % of the height, as brazen expects), made by the page.
    const png = await page.evaluate(() => {
      const c = document.createElement('canvas');
      c.width = 600; c.height = 600;
      const g = c.getContext('2d');
      g.fillStyle = '#c8ccd0'; g.fillRect(0, 0, 600, 600);
      g.fillStyle = '#e0b090'; g.beginPath(); g.ellipse(300, 300, 150, 190, 0, 0, 2 * Math.PI); g.fill();
      g.fillStyle = '#a84850'; g.fillRect(260, 390, 80, 12);
      return c.toDataURL('image/png').split(',')[1];
    });
    await page.getByRole('button', { name: 'Settings' }).click();
    await page.getByLabel('…or a photo from this device').setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: Buffer.from(png, 'base64') });
    await page.waitForFunction(() => JSON.parse(localStorage.getItem('brazen.settings.v1')).avatar.portrait?.startsWith('data:image/jpeg'));
    await page.getByRole('button', { name: 'Close settings' }).click();

    await page.getByRole('button', { name: 'Connect' }).click();
    await page.waitForFunction(() => window.brazen.view?.startup.firstFrame, null, { timeout: 15000 });
    await sleep(500);
    const pixel = () => page.evaluate(() => {
      const v = document.querySelector('video');
      const c = document.createElement('canvas');
      c.width = v.videoWidth; c.height = v.videoHeight;
      const g = c.getContext('2d');
      g.drawImage(v, 0, 0);
      // Left of the face: backdrop at zoom 1, the cheek once zoomed in.
      return Array.from(g.getImageData(Math.round(c.width * 0.15), Math.round(c.height * 0.45), 1, 1).data.slice(0, 3));
    });
    const before = await pixel();
    assert.ok(Math.abs(before[0] - 0xc8) < 24 && Math.abs(before[2] - 0xd0) < 24, `the photo's backdrop beside the face: ${before}`);

    // A live scene change: zoom in while connected.
    await page.getByRole('button', { name: 'Settings' }).click();
    await page.getByLabel(/^Zoom/).fill('2');
    await page.getByRole('button', { name: 'Close settings' }).click();
    await page.waitForFunction(() => [...document.querySelectorAll('.log li pre')].some((p) => p.textContent.includes('"zoom":2')), null, { timeout: 5000 });
    await sleep(1000);
    const after = await pixel();
    assert.ok(Math.abs(after[0] - 0xe0) < 30 && Math.abs(after[2] - 0x90) < 30, `the cheek after zooming in: ${after} (before ${before})`);
    await shot(page, 'photo');
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
});

test('a tool call is shown inline and answered by the page', async () => {
  // The stand-in LLM calls a tool named in the user's text, with the text's first {...} as arguments.
  // The server runs its retail agent: the page offers its own tools beside the agent's only when asked.
  const { page, problems } = await openApp({ apiKey: API_KEY, avatar: { enabled: false }, browserToolsWithAgent: true }, undefined, echoServer);
  try {
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.waitForSelector('.status.connected', { timeout: 15000 });
    await page.getByTestId('mute').click();
    await page.getByLabel('Message').fill('Please call get_local_time {}');
    await page.getByLabel('Message').press('Enter');
    const tool = page.locator('.entry.tool');
    await tool.locator('.output').waitFor({ timeout: 10000 });
    assert.match(await tool.innerText(), /get_local_time\(\{\}\)/);
    const output = JSON.parse((await tool.locator('.output').innerText()).replace(/^→\s*/, ''));
    const zone = await page.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone);
    assert.equal(output.time_zone, zone);
    // The page sent the output and asked for the follow-up, which speaks it.
    await page.locator('.entry.assistant', { hasText: 'get_local_time tool returned' }).waitFor({ timeout: 10000 });
    assert.deepEqual(problems, []);
  } catch (e) {
    throw await failed(page, 'tool', e, echoServer);
  } finally {
    await page.close();
  }
});

test("with the retail agent the page keeps the agent's session, shows its tools' answers as cards, and the admin view shows the order and the call", async () => {
  // A server of its own (the stand-in recogniser and LLM, the tone voice): its database starts empty.
  const shop = await startBrazen('browser-app-admin');
  const { page, problems } = await openApp({ apiKey: API_KEY, avatar: { enabled: false } }, undefined, shop);
  const updates = [];
  page.on('websocket', (ws) => ws.on('framesent', (f) => {
    const ev = JSON.parse(String(f.payload));
    if (ev.type === 'session.update') updates.push(ev.session);
  }));
  try {
    assert.match(await page.getByTestId('agent').innerText(), /^retail/i);
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.waitForSelector('.status.connected', { timeout: 15000 });
    // Neither the app's default instructions nor its tools replace the agent's.
    assert.ok(updates.length >= 1);
    for (const u of updates) {
      assert.equal(u.instructions, undefined);
      assert.equal(u.tools, undefined);
    }
    await page.getByTestId('mute').click();
    // Each tool is named once; its turn ends with the stand-in's follow-up ("The NAME tool returned: …").
    const say = async (text, selector) => {
      await page.getByLabel('Message').fill(text);
      await page.getByLabel('Message').press('Enter');
      await page.locator(selector).last().waitFor({ timeout: 15000 });
      await page.locator('.entry.assistant', { hasText: `${text.split(' ')[0]} tool returned` }).waitFor({ timeout: 15000 });
    };
    // The stand-in LLM calls the tool the text names with the text's JSON: the agent's tools run in the server.
    await say('get_products_by_category {"category":"Winter wear"}', '.card.product');
    const beanie = page.locator('.card.product[data-product=P021]');
    assert.match(await beanie.innerText(), /Red Knit Beanie[\s\S]*\$19\.99/);
    assert.equal(await beanie.locator('img').getAttribute('alt'), 'Red Knit Beanie');
    // The card may show before its picture has arrived: wait for it to load or fail.
    const loaded = await beanie.locator('img').evaluate((img) => img.complete
      ? img.naturalWidth > 0
      : new Promise((done) => {
        img.addEventListener('load', () => done(img.naturalWidth > 0), { once: true });
        img.addEventListener('error', () => done(false), { once: true });
      }));
    assert.ok(loaded, 'the product picture loads');
    await say('order_products {"product_id":"P021","quantity":2}', '.card.order');
    const orderId = await page.locator('.card.order').last().getAttribute('data-order');
    assert.match(await page.locator('.card.order').last().innerText(), /\$39\.98/);
    await say(`create_delivery_order {"order_id":"${orderId}","destination":"1 Main Street, Springfield, IL 62701"}`, '.card.shipment');
    await shot(page, 'agent-cards');
    await page.getByTestId('disconnect').click();

    await page.getByRole('link', { name: 'Admin' }).click();
    await page.getByRole('link', { name: 'Orders' }).click();
    await page.locator('.admin-table tbody tr', { hasText: orderId }).waitFor({ timeout: 10000 });
    assert.match(await page.locator('.admin-table tbody tr').first().innerText(), /Red Knit Beanie[\s\S]*\$39\.98/);
    await page.getByRole('link', { name: 'Shipments' }).click();
    await page.locator('.admin-table tbody tr', { hasText: orderId }).waitFor({ timeout: 10000 });
    // The call is stored as it happened, its tool answers shown as cards again.
    await page.getByRole('link', { name: 'Conversations' }).click();
    await page.locator('.admin-table tbody a').first().click();
    await page.locator('.transcript.stored .card.order').waitFor({ timeout: 10000 });
    assert.equal(await page.locator('.transcript.stored .card.product').count() >= 1, true);
    await shot(page, 'admin-conversation');
    await page.getByRole('link', { name: 'Overview' }).click();
    await page.locator('.admin .summary').waitFor({ timeout: 10000 });
    await shot(page, 'admin');
    assert.deepEqual(problems, []);
  } finally {
    await page.close();
  }
  // Without the key the admin view says what is missing.
  const keyless = await openApp({ avatar: { enabled: false } }, undefined, shop);
  try {
    await keyless.page.goto(shop.baseUrl + '/#/admin/orders');
    const alert = keyless.page.locator('.admin [role=alert]');
    await alert.waitFor({ timeout: 10000 });
    assert.match(await alert.innerText(), /needs an API key/);
  } finally {
    await keyless.page.close();
    await shop.stop();
  }
});
