// Debian Chromium plays brazen's avatar over WebRTC and over the WebSocket (fragmented MP4 through
// MediaSource), connected the way the Voice Live avatar samples connect. Over WebRTC: their backend sends the samples' own `session.update` (lisa, casual-sitting, 1920×1080
// cropped to 800×1080) over the socket, the page builds the offer with the ICE servers from
// `session.updated`, the backend relays it as `session.avatar.connect` and hands back the answer.
// The `<video>` must play the cropped picture with the mouth moving while the avatar speaks and
// still while it is idle; the audio arrives over WebRTC; the data channel carries the speaking edges.
// Over the WebSocket the same holds for the MediaSource player, whose stream carries the sound too,
// and the background picture named by a data: URL is drawn behind the avatar; a transparent
// background colour arrives as alpha in a second picture below the first.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startBrazen } from '../lib/server.mjs';
import { sleep } from '../lib/events.mjs';
import { launchChromium, openAvatarPage, mouthRegion, connectBackend, collectVideo, relayVideo } from '../lib/avatar-page.mjs';

// The avatar part of the samples' session.update, as captured from them (see CLIENTS.md).
const RESOLUTION = { width: 1920, height: 1080 };
const CROP = { top_left: [560, 0], bottom_right: [1360, 1080] };
const SAMPLE_SESSION = {
  modalities: ['text', 'audio'],
  instructions: 'You are a helpful shop assistant.',
  voice: { name: 'en-US-AvaMultilingualNeural', rate: '1.0', type: 'azure-standard' },
  avatar: {
    character: 'lisa', style: 'casual-sitting', customized: false,
    video: { codec: 'h264', bitrate: 1000000, resolution: RESOLUTION, crop: CROP },
    output_protocol: 'webrtc',
  },
  input_audio_format: 'pcm16', output_audio_format: 'pcm16',
  input_audio_transcription: { model: 'azure-speech' },
  turn_detection: { threshold: 0.3, prefix_padding_ms: 300, silence_duration_ms: 500, type: 'server_vad' },
  temperature: 0.9,
};
// The share of the mouth region's pixels whose luma moved by more than 24 since the previous frame:
// a speaking mouth changes 1–17 % per frame, a resting one under 0.5 % (the encoder's quality
// settling, the idle head sway).
const MOVING = 0.015;
const STILL = 0.008;
// What the samples give MediaSource for `output_protocol: "websocket"`.
const MSE_MIME = 'video/mp4; codecs="avc1.42E01E, mp4a.40.2"';

/**
 * The mouth region (`mouth`, pixels) changed in most frames inside the `speaking` window and in
 * none beyond stillness inside the `idle` windows; `frames` are `{t, changed}` on the windows' clock.
 */
function assertMouthFollowsSpeech(frames, mouth, speaking, idle) {
  const area = mouth.w * mouth.h;
  const during = ([a, b]) => frames.filter((f) => f.t > a && f.t < b).map((f) => f.changed / area);
  const moving = during(speaking);
  const still = idle.flatMap(during);
  const summary = `speaking ${moving.map((r) => r.toFixed(3))}; idle ${still.map((r) => r.toFixed(3))}`;
  assert.ok(moving.length > 25 && still.length > 25, summary);
  assert.ok(moving.filter((r) => r > MOVING).length * 2 > moving.length, `the mouth moves while speaking: ${summary}`);
  assert.ok(still.every((r) => r <= STILL), `the mouth rests while idle: ${summary}`);
}

let server;
let browser;
before(async () => {
  server = await startBrazen('browser-avatar', { tts: 'piper' });
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await server?.stop();
});

async function peers() {
  const health = await (await fetch(`${server.baseUrl}/health`)).json();
  return health.avatar_media.peers;
}

test('Chromium plays the avatar with the mouth moving only while it speaks', async () => {
  const { ws, events, send } = await connectBackend(server);
  await events.waitFor('session.created');
  send({ type: 'session.update', session: SAMPLE_SESSION });
  const { ev: updated } = await events.waitFor('session.updated');
  const iceServers = updated.session.avatar.ice_servers;
  assert.ok(Array.isArray(iceServers) && iceServers.length > 0, JSON.stringify(updated.session.avatar));

  const page = await openAvatarPage(browser);
  const clientSdp = await page.evaluate((servers) => window.makeOffer(servers), iceServers);
  const gatheredMs = await page.evaluate(() => window.seen.gatheredMs);
  assert.ok(gatheredMs < 2000, `ICE gathering took ${gatheredMs} ms: brazen's STUN server should answer at once`);
  send({ type: 'session.avatar.connect', client_sdp: clientSdp });
  const { ev: connecting } = await events.waitFor('session.avatar.connecting');
  const answer = JSON.parse(Buffer.from(connecting.server_sdp, 'base64').toString());
  assert.equal(answer.type, 'answer');
  assert.match(answer.sdp, /a=fingerprint:sha-256 /);
  const mouth = mouthRegion(RESOLUTION, CROP);
  await page.evaluate(([sdp, region]) => window.acceptAnswer(sdp, region), [connecting.server_sdp, mouth]);

  await page.waitForFunction(() => window.seen.firstFrameAt !== null, null, { timeout: 10000 }).catch(async (e) => {
    throw new Error(`no video frame: ${JSON.stringify(await page.evaluate(() => window.mediaStats()))}\n${server.logTail()}`, { cause: e });
  });
  const first = await page.evaluate(() => window.seen);
  assert.deepEqual(first.videoSize, [800, 1080], 'the crop of the 1920×1080 picture is what plays');
  console.log(`first frame shown ${(first.firstFrameAt - first.answerAt).toFixed(0)} ms after the answer reached the page`);

  // Idle for a while, then a reply spoken by the local voice.
  await sleep(1500);
  send({ type: 'response.create', response: { pre_generated_assistant_message: 'Your blue jacket ships from Portland on Thursday morning.' } });
  const { seen } = await events.waitFor('session.avatar.switch_to_idle', { timeoutMs: 60000 });
  const kinds = seen.map((e) => e.type);
  assert.ok(kinds.includes('session.avatar.switch_to_speaking'), kinds.join(', '));
  assert.ok(!kinds.includes('response.audio.delta'), 'the audio goes over WebRTC, not the socket');
  await sleep(1500);

  const stats = await page.evaluate(() => window.mediaStats());
  const watched = await page.evaluate(() => window.seen);
  fs.mkdirSync(process.env.BRAZEN_CONF_LOGS || '/tmp', { recursive: true });
  await page.screenshot({ path: path.join(process.env.BRAZEN_CONF_LOGS || '/tmp', 'browser-avatar.png') });
  assert.equal(stats.connectionState, 'connected', JSON.stringify(stats));
  assert.ok(stats.codecs.some((c) => c.startsWith('video/H264') && c.includes('packetization-mode=1')), JSON.stringify(stats.codecs));
  assert.ok(stats.video.framesDecoded > 75, `frames decoded: ${stats.video.framesDecoded}`);
  assert.ok(stats.audio.packets > 150 && stats.audio.energy > 0, `audio over WebRTC: ${JSON.stringify(stats.audio)}`);

  // The data channel's speaking edges, timed on the page's clock as they arrived.
  const edge = (name) => watched.events.find((e) => e.data.includes(name))?.at;
  const speakingAt = edge('EVENT_TYPE_SWITCH_TO_SPEAKING');
  const idleAt = edge('EVENT_TYPE_SWITCH_TO_IDLE');
  assert.ok(speakingAt && idleAt && idleAt - speakingAt > 2000, `data channel: ${JSON.stringify(watched.events)}`);
  // Frames well inside each state: the idle edge comes 300 ms after the last sound, and the video
  // plays behind the data channel by its jitter buffer.
  const onPage = watched.frames.map((f) => ({ t: f.at, changed: f.changed }));
  assertMouthFollowsSpeech(onPage, mouth, [speakingAt + 200, idleAt - 400], [[watched.firstFrameAt + 500, speakingAt - 100], [idleAt + 500, Infinity]]);

  // The session ends: its peer is cleaned up.
  ws.close();
  await page.close();
  const deadline = Date.now() + 5000;
  while ((await peers()) !== 0) {
    assert.ok(Date.now() < deadline, 'the peer outlived its session');
    await sleep(50);
  }
});

test('Chromium plays the WebSocket avatar (fragmented MP4 through MediaSource) with the mouth moving only while it speaks', async () => {
  const { ws, events, send } = await connectBackend(server);
  // The backend hands the page every response.video.delta, in order, as the samples' backend does
  // (the first carries the MP4's initialisation segment).
  const video = collectVideo(ws);
  await events.waitFor('session.created');
  // A background picture too: a PNG data: URL of one colour, made by the page.
  const page = await openAvatarPage(browser);
  const background = { image_url: await page.evaluate(() => window.pngOf('#3050c0')) };
  const settings = { ...SAMPLE_SESSION.avatar.video, background };
  const session = { ...SAMPLE_SESSION, avatar: { ...SAMPLE_SESSION.avatar, output_protocol: 'websocket', video: settings } };
  send({ type: 'session.update', session });
  await events.waitFor('session.updated');
  const mouth = mouthRegion(RESOLUTION, CROP);
  await page.evaluate(([mime, region]) => window.startMse(mime, region), [MSE_MIME, mouth]);
  const relay = relayVideo(page, video);
  // The page clock's currentTime when the speaking edges reach the backend.
  const playhead = () => page.evaluate(() => document.getElementById('video').currentTime);
  try {
    await page.waitForFunction(() => window.seen.firstFrameAt !== null, null, { timeout: 10000 }).catch(async (e) => {
      throw new Error(`no video frame: ${JSON.stringify(await page.evaluate(() => window.mseState()))}`, { cause: e });
    });
    await sleep(1500);
    send({ type: 'response.create', response: { pre_generated_assistant_message: 'Your blue jacket ships from Portland on Thursday morning.' } });
    await events.waitFor('session.avatar.switch_to_speaking', { timeoutMs: 60000 });
    const speakingAt = await playhead();
    const { seen } = await events.waitFor('session.avatar.switch_to_idle', { timeoutMs: 60000 });
    const idleAt = await playhead();
    assert.ok(!seen.some((e) => e.type === 'response.audio.delta'), 'the audio is in the MP4, not in audio deltas');
    await sleep(1500);
    const state = await page.evaluate(() => window.mseState());
    const watched = await page.evaluate(() => window.seen);
    await page.screenshot({ path: path.join(process.env.BRAZEN_CONF_LOGS || '/tmp', 'browser-avatar-mse.png') });
    assert.equal(video.malformed, null, 'response.video.delta {output_index: 0, codec: "h264", delta}');
    assert.equal(state.error, null, JSON.stringify(state));
    assert.deepEqual(state.size, [800, 1080], 'the crop of the 1920×1080 picture plays');
    assert.ok(state.currentTime > 4, `playing: ${JSON.stringify(state)}`);
    assert.ok(state.audioBytes > 0 && state.videoBytes > 0, `AAC and H.264 both decode: ${JSON.stringify(state)}`);
    assert.ok(video.biggest < 4 * 1024 * 1024, `largest event ${video.biggest} bytes`);
    // The top-right corner is background: the picture's colour (through H.264 and back).
    const corner = await page.evaluate(() => window.pixelAt(790, 10));
    assert.ok(corner.every((v, i) => Math.abs(v - [0x30, 0x50, 0xc0][i]) < 24), `background ${corner}`);

    // Frames by their time in the stream, well inside each state (the playhead trails the
    // producer by the little that is buffered).
    const inStream = watched.frames.map((f) => ({ t: f.mediaTime, changed: f.changed }));
    assertMouthFollowsSpeech(inStream, mouth, [speakingAt + 0.4, idleAt - 0.3], [[0.5, speakingAt - 0.3], [idleAt + 0.8, Infinity]]);
  } finally {
    clearInterval(relay);
    ws.close();
    await page.close();
  }
});

test('a transparent background reaches MediaSource as alpha below the picture', async () => {
  const { ws, events, send } = await connectBackend(server);
  const video = collectVideo(ws);
  await events.waitFor('session.created');
  const resolution = { width: 640, height: 480 };
  const avatar = { character: 'lisa', output_protocol: 'websocket', video: { resolution, background: { color: '#00FF0000' } } };
  send({ type: 'session.update', session: { turn_detection: null, avatar } });
  const { ev: updated } = await events.waitFor('session.updated');
  assert.deepEqual(updated.session.avatar.transparency, { method: 'alpha_below' });
  const page = await openAvatarPage(browser);
  try {
    const mouth = mouthRegion(resolution, null);
    await page.evaluate(([mime, region]) => window.startMse(mime, region), [MSE_MIME, mouth]);
    const relay = relayVideo(page, video);
    await page.waitForFunction(() => window.seen.firstFrameAt !== null, null, { timeout: 10000 });
    await sleep(1000);
    clearInterval(relay);
    const state = await page.evaluate(() => window.mseState());
    await page.setViewportSize({ width: 640, height: 960 });
    await page.screenshot({ path: path.join(process.env.BRAZEN_CONF_LOGS || '/tmp', 'browser-avatar-alpha.png') });
    assert.equal(state.error, null, JSON.stringify(state));
    assert.deepEqual(state.size, [640, 960], 'the picture, then its alpha below it');
    const px = (x, y) => page.evaluate(([a, b]) => window.pixelAt(a, b), [x, y]);
    const near = (p, q) => p.every((v, i) => Math.abs(v - q[i]) < 24);
    // A corner is background: transparent, so black above (colour over black) and black below.
    const [corner, cornerAlpha] = [await px(4, 4), await px(4, 484)];
    assert.ok(near(corner, [0, 0, 0]) && near(cornerAlpha, [0, 0, 0]), `corner ${corner}, alpha ${cornerAlpha}`);
    // The cheek beside the mouth is the character: coloured above, opaque (white) below.
    const [cx, cy] = [mouth.x - 10, mouth.y + 10];
    const [cheek, cheekAlpha] = [await px(cx, cy), await px(cx, cy + 480)];
    assert.ok(!near(cheek, [0, 0, 0]) && near(cheekAlpha, [255, 255, 255]), `cheek ${cheek}, alpha ${cheekAlpha}`);
  } finally {
    ws.close();
    await page.close();
  }
});

test('a photo avatar speaks from its portrait and moves with live scene changes', async () => {
  const { ws, events, send } = await connectBackend(server);
  const video = collectVideo(ws);
  await events.waitFor('session.created');
  const page = await openAvatarPage(browser);
  const resolution = { width: 512, height: 512 };
  const avatar = {
    type: 'photo-avatar', character: 'anika', model: 'vasa-1', output_protocol: 'websocket',
    photo_url: await page.evaluate(() => window.portraitPng()),
    video: { resolution, bitrate: 500000, background: { color: '#FFFFFFFF' } },
    scene: { zoom: 1, amplitude: 1 },
  };
  send({ type: 'session.update', session: { turn_detection: null, avatar } });
  await events.waitFor('session.updated');
  // The portrait fills the square picture: its mouth region, as brazen's photo renderer places it.
  const mw = 0.16 * 512;
  const [mx, my] = [0.5 * 512, 0.66 * 512];
  const mouth = { x: Math.round(mx - 0.8 * mw), y: Math.round(my - 0.3 * mw), w: Math.round(1.6 * mw), h: Math.round(1.2 * mw) };
  const relay = relayVideo(page, video);
  const playhead = () => page.evaluate(() => document.getElementById('video').currentTime);
  try {
    await page.evaluate(([mime, region]) => window.startMse(mime, region), [MSE_MIME, mouth]);
    await page.waitForFunction(() => window.seen.firstFrameAt !== null, null, { timeout: 10000 });
    await sleep(1500);
    const faceBefore = await page.evaluate(() => window.pixelAt(150, 260));
    send({ type: 'response.create', response: { pre_generated_assistant_message: 'Your blue jacket ships from Portland on Thursday morning.' } });
    await events.waitFor('session.avatar.switch_to_speaking', { timeoutMs: 60000 });
    const speakingAt = await playhead();
    await events.waitFor('session.avatar.switch_to_idle', { timeoutMs: 60000 });
    const idleAt = await playhead();
    await sleep(1500);
    const watched = await page.evaluate(() => window.seen);
    const inStream = watched.frames.map((f) => ({ t: f.mediaTime, changed: f.changed }));
    assertMouthFollowsSpeech(inStream, mouth, [speakingAt + 0.4, idleAt - 0.3], [[0.5, speakingAt - 0.3], [idleAt + 0.8, Infinity]]);
    // Moving the scene live shifts the portrait: the cheek's spot shows the white background.
    send({ type: 'session.update', session: { avatar: { ...avatar, scene: { zoom: 0.5, position_x: 0.6, amplitude: 1 } } } });
    await events.waitFor('session.updated');
    await sleep(1200);
    const faceAfter = await page.evaluate(() => window.pixelAt(150, 260));
    await page.screenshot({ path: path.join(process.env.BRAZEN_CONF_LOGS || '/tmp', 'browser-avatar-photo.png') });
    const near = (p, q) => p.every((v, i) => Math.abs(v - q[i]) < 30);
    assert.ok(near(faceBefore, [0xe0, 0xb0, 0x90]), `the cheek before: ${faceBefore}`);
    assert.ok(near(faceAfter, [255, 255, 255]), `the background after the move: ${faceAfter}`);
  } finally {
    clearInterval(relay);
    ws.close();
    await page.close();
  }
});
