// The TTS-avatar REST API's example page (examples/avatar-chat, served by `brazen serve
// --web-root`) in Debian Chromium: it connects the avatar over WebRTC with /api/avatar/connect,
// streams an answer from an OpenAI-compatible LLM (a stand-in here, written from the published
// chat-completions streaming format; the test is about the page and the avatar API) and sends each
// finished sentence to /api/avatar/speak; the avatar then speaks (its data channel says so) and
// its video plays.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBrazen, API_KEY } from '../lib/server.mjs';
import { launchChromium } from '../lib/avatar-page.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PAGE_DIR = path.resolve(HERE, '../../../../examples/avatar-chat');
const ANSWER = ['Hello from the ', 'stand-in model. ', 'It answers in two ', 'sentences.'];

let server;
let llm;
let llmUrl;
let browser;
const asked = [];

before(async () => {
  llm = http.createServer((req, res) => {
    const cors = { 'access-control-allow-origin': '*', 'access-control-allow-headers': 'content-type' };
    if (req.method === 'OPTIONS') { res.writeHead(204, cors); return res.end(); }
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      asked.push(JSON.parse(body));
      res.writeHead(200, { ...cors, 'content-type': 'text/event-stream' });
      for (const piece of ANSWER) {
        res.write(`data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: piece } }] })}\n\n`);
      }
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise((resolve) => llm.listen(0, '127.0.0.1', resolve));
  llmUrl = `http://127.0.0.1:${llm.address().port}/v1`;
  server = await startBrazen('avatar-chat', { env: { BRAZEN_WEB_ROOT: PAGE_DIR, BRAZEN_AGENT: 'none' } });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  llm?.close();
});

test('the example chat page speaks an LLM answer through /api/avatar/speak', async () => {
  const page = await browser.newPage();
  const events = [];
  page.on('console', (m) => { if (m.text().includes('avatar event')) events.push(m.text()); });
  const spoken = [];
  page.on('response', async (r) => {
    if (r.url().endsWith('/api/avatar/speak')) spoken.push({ status: r.status(), body: r.request().postDataJSON() });
  });
  await page.goto(`${server.baseUrl}/`);
  await page.fill('#llm', llmUrl);
  await page.fill('#key', API_KEY);
  await page.click('#connect');
  await page.waitForFunction(() => document.getElementById('log').textContent.includes('Avatar connected.'), null, { timeout: 30000 });
  await page.fill('#message', 'Say hello, please.');
  await page.press('#message', 'Enter');
  await page.waitForFunction(() => document.getElementById('log').textContent.includes('two sentences.'), null, { timeout: 20000 });
  const deadline = Date.now() + 20000;
  while (!events.some((e) => e.includes('EVENT_TYPE_SWITCH_TO_IDLE')) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(asked.length, 1, 'one question to the LLM');
  assert.equal(asked[0].messages.at(-1).content, 'Say hello, please.');
  assert.deepEqual(spoken.map((s) => s.status), [202, 202], JSON.stringify(spoken));
  assert.deepEqual(spoken.map((s) => s.body.text), ['Hello from the stand-in model.', 'It answers in two sentences.']);
  assert.ok(events.some((e) => e.includes('EVENT_TYPE_SWITCH_TO_SPEAKING')), `the avatar spoke: ${JSON.stringify(events)}`);
  assert.ok(events.some((e) => e.includes('EVENT_TYPE_SWITCH_TO_IDLE')), `and finished: ${JSON.stringify(events)}`);
  const video = await page.evaluate(() => { const v = document.getElementById('video'); return { w: v.videoWidth, t: v.currentTime }; });
  assert.ok(video.w > 0 && video.t > 0, `the avatar's video plays: ${JSON.stringify(video)}`);
  await page.click('#disconnect');
});
