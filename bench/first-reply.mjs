// How soon the first conversation of the browser app gets its first reply audio (issue 6):
// `brazen serve` (release) with the local LLM and Piper (`--asr echo`: the turn is typed), waited
// on until its start-up work is done; then one conversation with the app's default session
// (web/src/default-session.json, whose prompt the server computes at start-up) and ROUNDS with
// instructions it has never seen (the default plus a unique sentence). Each sends the session,
// one user message and `response.create`, and times `response.create` → first `response.audio.delta`.
//
//   BRAZEN_BIN=… node bench/first-reply.mjs [ROUNDS]      (bench/first-reply.sh builds and runs it)
import fs from 'node:fs';
import path from 'node:path';
import { startBrazen } from '../tests/conformance/js/lib/server.mjs';
import { connectBackend } from '../tests/conformance/js/lib/avatar-page.mjs';

const ROUNDS = Number(process.argv[2] || 3);
const SETTLE_MS = 15000;
const session = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '../web/src/default-session.json'), 'utf8'));

async function firstAudio(server, instructions) {
  const { ws } = await connectBackend(server);
  let sent = 0;
  const ms = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no audio within 60 s')), 60000);
    ws.on('message', (data) => {
      const e = JSON.parse(data.toString());
      if (e.type === 'session.updated' && !sent) {
        ws.send(JSON.stringify({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello, who are you?' }] } }));
        ws.send(JSON.stringify({ type: 'response.create' }));
        sent = performance.now();
      }
      if (e.type === 'response.audio.delta') {
        clearTimeout(timer);
        resolve(performance.now() - sent);
      }
    });
  });
  ws.send(JSON.stringify({ type: 'session.update', session: { ...session, instructions, modalities: ['text', 'audio'], turn_detection: null } }));
  try {
    return await ms;
  } finally {
    ws.close();
  }
}

const server = await startBrazen('bench-first-reply', { llm: 'qwen2.5-coder-1.5b', tts: 'piper', timeoutMs: 240000 });
try {
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const prepared = await firstAudio(server, session.instructions);
  const unseen = [];
  for (let i = 0; i < ROUNDS; i++) unseen.push(await firstAudio(server, `${session.instructions} Conversation ${i + 1} of ${Date.now()}.`));
  console.log(`response.create → first audio, ms (release, local LLM, Piper)`);
  console.log(`  the app's default session (prepared at start-up)  ${prepared.toFixed(0)}`);
  console.log(`  instructions the server has not seen             ${unseen.map((x) => x.toFixed(0)).join(' ')}`);
} finally {
  await server.stop();
}
