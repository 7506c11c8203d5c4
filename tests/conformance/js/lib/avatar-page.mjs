// Debian Chromium as a Voice Live avatar sample's page: the WebRTC half of the samples, which take the
// microphone, build the offer in the browser (video and audio `sendrecv` transceivers, a data
// channel, the ICE servers from `session.updated`, wait for gathering,
// `btoa(JSON.stringify(pc.localDescription))`) and hand it to their backend, which relays it as
// `session.avatar.connect`. The page is served from 127.0.0.1 (a secure context, and the microphone
// permission lets Chromium offer its real host candidates rather than mDNS names); the fake
// microphone of Chromium's test flags stands in for a real one. The page also watches what it
// plays: every decoded video frame's mouth region is compared with the previous frame's, and the
// data channel's events and the first frame are timed on the page clock (`performance.now()`).
// For `output_protocol: "websocket"` the page plays the fragmented MP4 of `response.video.delta`
// through MediaSource instead, as the samples do.
// Shared by the browser conformance test and `bench/browser.sh`.
import http from 'node:http';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';
import { API_KEY } from './server.mjs';
import { EventQueue } from './events.mjs';

/** Where Debian installs Chromium (`apt-get install chromium`); never a downloaded browser. */
export const CHROMIUM = process.env.BRAZEN_CHROMIUM || '/usr/bin/chromium';

/**
 * Headless Debian Chromium that may use loopback ICE candidates, plays media without a click and
 * grants its fake microphone (`args`: more flags, e.g. the fake microphone's WAV file).
 */
export function launchChromium(args = []) {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required', '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', ...args],
  });
}

/**
 * Runs in a page (it is serialised into it): a function of a <video> that says how many pixels of
 * the mouth `region` {x, y, w, h} changed (luma by more than 24) since its previous call, `null`
 * on the first.
 */
export function mouthSampler(region) {
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  let previous = null;
  return (video) => {
    const { x, y, w, h } = region;
    canvas.width = w; canvas.height = h;
    ctx.drawImage(video, x, y, w, h, 0, 0, w, h);
    const rgba = ctx.getImageData(0, 0, w, h).data;
    const luma = new Uint8Array(w * h);
    for (let i = 0; i < w * h; i++) luma[i] = (rgba[4 * i] * 77 + rgba[4 * i + 1] * 150 + rgba[4 * i + 2] * 29) >> 8;
    let changed = null;
    if (previous) {
      changed = 0;
      for (let i = 0; i < luma.length; i++) if (Math.abs(luma[i] - previous[i]) > 24) changed++;
    }
    previous = luma;
    return changed;
  };
}

const PAGE = `<!doctype html>
<html><body style="margin:0;background:#202020">
<video id="video" autoplay playsinline muted></video>
<audio id="audio" autoplay></audio>
<script>
const seen = { events: [], frames: [], firstFrameAt: null, answerAt: null, answeredAt: null, gatheredMs: null, videoSize: null };
window.seen = seen;
let pc = null;
let sampler = null;
const mouthSampler = ${mouthSampler.toString()};

// Counts the mouth region's changed pixels; \`now\` is the page clock, \`mediaTime\` the frame's
// own time in the stream (seconds).
function sample(video, now, mediaTime) {
  const changed = sampler && sampler(video);
  if (changed !== null && changed !== undefined) seen.frames.push({ at: now, mediaTime, changed });
}

function listen(channel) {
  channel.onmessage = (e) => seen.events.push({ at: performance.now(), data: e.data });
}

// As the samples do: the microphone, both transceivers sendrecv, a data channel, gathering waited
// for (10 s at most).
window.makeOffer = async (iceServers) => {
  await navigator.mediaDevices.getUserMedia({ audio: true });
  pc = new RTCPeerConnection({ iceServers });
  pc.ontrack = (e) => {
    const el = document.getElementById(e.track.kind === 'video' ? 'video' : 'audio');
    el.srcObject = e.streams[0] || new MediaStream([e.track]);
  };
  pc.ondatachannel = (e) => listen(e.channel);
  pc.addEventListener('iceconnectionstatechange', () => {
    if (pc.iceConnectionState === 'connected' && seen.iceAt === undefined) seen.iceAt = performance.now();
  });
  pc.addEventListener('connectionstatechange', () => {
    if (pc.connectionState === 'connected' && seen.connectedAt === undefined) seen.connectedAt = performance.now();
  });
  pc.addTransceiver('video', { direction: 'sendrecv' });
  pc.addTransceiver('audio', { direction: 'sendrecv' });
  listen(pc.createDataChannel('eventChannel'));
  const started = performance.now();
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') resolve(); });
    setTimeout(resolve, 10000);
  });
  seen.gatheredMs = performance.now() - started;
  return btoa(JSON.stringify(pc.localDescription));
};

// Watches every frame the video shows (mouth = {x, y, w, h} in video pixels).
function watch(mouth) {
  sampler = mouthSampler(mouth);
  const video = document.getElementById('video');
  const onFrame = (now, meta) => {
    if (seen.firstFrameAt === null) {
      seen.firstFrameAt = performance.now();
      seen.videoSize = [video.videoWidth, video.videoHeight];
    }
    sample(video, now, meta.mediaTime);
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

// Applies the server's answer and starts watching frames.
window.acceptAnswer = async (serverSdp, mouth) => {
  watch(mouth);
  seen.answerAt = performance.now();
  await pc.setRemoteDescription(JSON.parse(atob(serverSdp)));
  seen.answeredAt = performance.now();
};

// The WebSocket mode, as the samples play it: response.video.delta bytes appended in order to a
// MediaSource SourceBuffer of \`mime\`.
let sourceBuffer = null;
const pending = [];
function pump() {
  if (!sourceBuffer || sourceBuffer.updating || pending.length === 0) return;
  sourceBuffer.appendBuffer(pending.shift());
}
window.startMse = async (mime, mouth) => {
  if (!MediaSource.isTypeSupported(mime)) throw new Error('MediaSource does not take ' + mime);
  const video = document.getElementById('video');
  const source = new MediaSource();
  video.src = URL.createObjectURL(source);
  await new Promise((resolve) => source.addEventListener('sourceopen', resolve, { once: true }));
  sourceBuffer = source.addSourceBuffer(mime);
  sourceBuffer.addEventListener('updateend', pump);
  const fail = (why) => { seen.mseError ||= why; };
  sourceBuffer.addEventListener('error', () => fail('SourceBuffer error'));
  video.addEventListener('error', () => fail('video error: ' + (video.error && video.error.message)));
  watch(mouth);
  video.play().catch((e) => fail('play: ' + e));
};
window.appendChunks = (chunks) => {
  for (const b64 of chunks) pending.push(Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
  pump();
};
// The colour of the video's pixel (x, y) as shown now.
window.pixelAt = (x, y) => {
  const video = document.getElementById('video');
  const c = document.createElement('canvas');
  c.width = video.videoWidth; c.height = video.videoHeight;
  const g = c.getContext('2d');
  g.drawImage(video, 0, 0);
  return Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3));
};
// A PNG data: URL of one colour (for a background picture).
window.pngOf = (color) => {
  const c = document.createElement('canvas');
  c.width = 64; c.height = 36;
  const g = c.getContext('2d');
  g.fillStyle = color;
  g.fillRect(0, 0, 64, 36);
  return c.toDataURL('image/png');
};
// A 512×512 head-and-shoulders "portrait" as a PNG data: URL, framed as brazen expects a photo
// (face centred, lips at 66 % of the height).
window.portraitPng = () => {
  const c = document.createElement('canvas');
  c.width = 512; c.height = 512;
  const g = c.getContext('2d');
  g.fillStyle = '#c8ccd0'; g.fillRect(0, 0, 512, 512);
  g.fillStyle = '#34495e'; g.beginPath(); g.ellipse(256, 560, 230, 140, 0, 0, 2 * Math.PI); g.fill();
  g.fillStyle = '#3b2a20'; g.beginPath(); g.ellipse(256, 210, 150, 160, 0, 0, 2 * Math.PI); g.fill();
  g.fillStyle = '#e0b090'; g.beginPath(); g.ellipse(256, 260, 125, 160, 0, 0, 2 * Math.PI); g.fill();
  g.fillStyle = '#2a1a10'; g.fillRect(196, 230, 36, 10); g.fillRect(280, 230, 36, 10);
  g.fillStyle = '#a84850'; g.fillRect(222, 333, 68, 10);
  return c.toDataURL('image/png');
};
window.mseState = () => {
  const video = document.getElementById('video');
  const b = video.buffered;
  return {
    error: seen.mseError || null,
    currentTime: video.currentTime,
    buffered: b.length ? [b.start(0), b.end(b.length - 1)] : null,
    audioBytes: video.webkitAudioDecodedByteCount,
    videoBytes: video.webkitVideoDecodedByteCount,
    size: [video.videoWidth, video.videoHeight],
  };
};

window.mediaStats = async () => {
  const out = { connectionState: pc.connectionState };
  (await pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp') out[s.kind] = { packets: s.packetsReceived, framesDecoded: s.framesDecoded, energy: s.totalAudioEnergy };
    if (s.type === 'codec' && s.mimeType) (out.codecs ||= []).push(s.mimeType + ' ' + (s.sdpFmtpLine || ''));
    if (s.type === 'candidate-pair') (out.pairs ||= []).push({ state: s.state, nominated: s.nominated, requestsSent: s.requestsSent, responsesReceived: s.responsesReceived });
    if (s.type === 'transport') out.transport = { dtls: s.dtlsState, ice: s.iceState, role: s.iceRole };
  });
  return out;
};

</script>
</body></html>`;

/** A new page of `browser` running the sample's WebRTC code, loaded from a one-shot loopback server. */
export async function openAvatarPage(browser) {
  const page = await browser.newPage();
  const server = http.createServer((_, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end(PAGE); });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  server.close();
  return page;
}

/**
 * The mouth's rectangle in the video, in pixels, for a `resolution` {width, height} picture cropped to
 * `crop` {top_left, bottom_right}. The same geometry as `brazen_avatar::render` (`MOUTH_REGION` of the
 * unit square, the character scaled by `ZOOM` about (0.5, 0.42) and centred on the picture's short side).
 */
export function mouthRegion(resolution, crop) {
  const ZOOM = 1.3;
  const MOUTH = { x: 0.40, y: 0.50, w: 0.20, h: 0.12 };
  const side = Math.min(resolution.width, resolution.height);
  const [cx, cy] = crop ? crop.top_left : [0, 0];
  const map = (u, v) => [
    (0.5 * (1 - ZOOM) + ZOOM * u) * side + (resolution.width - side) / 2 - cx,
    (0.42 * (1 - ZOOM) + ZOOM * v) * side + (resolution.height - side) / 2 - cy,
  ];
  const [x0, y0] = map(MOUTH.x, MOUTH.y);
  const [x1, y1] = map(MOUTH.x + MOUTH.w, MOUTH.y + MOUTH.h);
  return { x: Math.round(x0), y: Math.round(y0), w: Math.round(x1 - x0), h: Math.round(y1 - y0) };
}

/**
 * Keeps every `response.video.delta` that `ws` receives, in order (base64), as the samples'
 * backend does for its page; `biggest` is the largest such frame, `malformed` the first one that
 * is not `{output_index: 0, codec: "h264", delta}`.
 */
export function collectVideo(ws) {
  const video = { chunks: [], biggest: 0, malformed: null };
  ws.on('message', (data) => {
    const e = JSON.parse(data.toString());
    if (e.type !== 'response.video.delta') return;
    if (e.codec !== 'h264' || e.output_index !== 0 || typeof e.delta !== 'string') video.malformed ||= JSON.stringify(e).slice(0, 200);
    video.biggest = Math.max(video.biggest, data.length);
    video.chunks.push(e.delta);
  });
  return video;
}

/** Hands what `video` collected to the page's MediaSource every 100 ms; clear the returned timer. */
export function relayVideo(page, video) {
  return setInterval(() => {
    if (video.chunks.length) page.evaluate((b) => window.appendChunks(b), video.chunks.splice(0)).catch(() => {});
  }, 100);
}

/**
 * The samples' backend: a Voice Live socket to `server` (from `startBrazen`) with the api-key
 * header; `events` reads the server's events in order, `send` sends one.
 */
export async function connectBackend(server) {
  const ws = new WebSocket(`${server.wsBase}/voice-live/realtime?api-version=2026-07-15&model=gpt-4o-realtime`, {
    headers: { 'api-key': API_KEY },
  });
  const events = new EventQueue('backend');
  ws.on('message', (data) => events.push(JSON.parse(data.toString())));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return { ws, events, send: (event) => ws.send(JSON.stringify(event)) };
}
