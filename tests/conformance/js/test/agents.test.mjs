// npm `@openai/agents-realtime` (RealtimeSession, transport 'websocket') against brazen's GA endpoint.
//
// The SDK parses every server event with its own zod schemas and silently ignores any event that
// does not match (a malformed response.done = a turn that never ends). Every raw server event is
// therefore also checked here against those same schemas (`realtimeServerEventSchema`,
// `realtimeMessageItemSchema`), and any mismatch fails the test.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import WebSocket from 'ws';
import { RealtimeAgent, RealtimeSession, OpenAIRealtimeWebSocket, tool } from '@openai/agents-realtime';
import { startBrazen, API_KEY } from '../lib/server.mjs';
import { EventQueue, ofType, sleep, CHUNK_SLEEP_MS } from '../lib/events.mjs';
import { speechPcm16, silence, chunks } from '../lib/audio.mjs';

// The SDK's own schemas (not in its package exports, so loaded by file path).
const require = createRequire(import.meta.url);
const agentsDist = path.dirname(require.resolve('@openai/agents-realtime'));
const { realtimeServerEventSchema } = require(path.join(agentsDist, 'openaiRealtimeEvents.js'));
const { realtimeMessageItemSchema } = require(path.join(agentsDist, 'items.js'));
const GA_TYPES = new Set(realtimeServerEventSchema._zod.def.options.map((o) => o._zod.def.shape.type._zod.def.values[0]));

const MS_PER_CHAR = 40;
const BAD_EVENT_ID = 'evt_conformance_bad_1';

let server;
before(async () => { server = await startBrazen('js-agents'); });
after(async () => { await server?.stop(); });

function checkRaw(raw) {
  const out = [];
  if (!GA_TYPES.has(raw.type)) {
    // Not fatal for the SDK (treated as a generic event), but brazen's GA dialect should only use GA names.
    out.push(`type ${JSON.stringify(raw.type)} is not a GA server event known to @openai/agents-realtime`);
    return out;
  }
  const r = realtimeServerEventSchema.safeParse(raw);
  if (!r.success) {
    out.push(`fails the SDK's zod schema (the SDK silently ignores it): ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const item = raw.item;
  if (item?.type === 'message' && ['conversation.item.added', 'conversation.item.done', 'conversation.item.retrieved', 'response.output_item.added', 'response.output_item.done'].includes(raw.type)) {
    const content = item.role === 'assistant' && Array.isArray(item.content)
      ? item.content.map((p) => (p?.type === 'audio' ? { ...p, type: 'output_audio' } : p))
      : item.content;
    const m = realtimeMessageItemSchema.safeParse({ itemId: item.id, type: item.type, role: item.role, content, status: item.status ?? 'in_progress' });
    if (!m.success) out.push(`message item fails the SDK's item schema (it throws): ${m.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  if (raw.type === 'response.output_item.done' && raw.item?.type === 'function_call' && raw.item.status !== 'completed') {
    out.push('function_call output_item.done without status "completed": the SDK never runs the tool');
  }
  return out;
}

function weatherTool(calls) {
  return tool({
    name: 'get_weather',
    description: 'Look up the current weather for a city.',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'], additionalProperties: false },
    strict: false,
    execute: async (args) => { calls.push(args); return '{"temperature_c": 21}'; },
  });
}

async function openSession(label, { config, transport } = {}) {
  const calls = [];
  const agent = new RealtimeAgent({ name: 'conformance', instructions: 'You are the brazen conformance suite.', tools: [weatherTool(calls)] });
  const session = new RealtimeSession(agent, { transport: transport ?? 'websocket', model: 'gpt-realtime', ...(config ? { config } : {}) });
  const q = new EventQueue(label);
  const violations = [];
  const errors = [];
  const audio = [];
  const ends = [];
  session.on('transport_event', (ev) => {
    if (ev && typeof ev === 'object' && typeof ev.type === 'string' && 'event_id' in ev || ev?.type === 'error') {
      const short = JSON.stringify(ev).replace(/"(delta|audio)":"[A-Za-z0-9+/=]{40,}"/g, '"$1":"<base64>"').slice(0, 400);
      for (const p of checkRaw(ev)) violations.push(`${ev.type}: ${p}\n    raw: ${short}`);
      q.push(ev);
    }
  });
  session.on('error', (e) => errors.push(e));
  session.on('audio', (e) => audio.push(e));
  session.on('agent_end', (_ctx, _agent, text) => ends.push(text));
  await session.connect({ apiKey: API_KEY, url: `${server.wsBase}/v1/realtime?model=gpt-realtime` });
  return { session, q, violations, errors, audio, ends, calls, label };
}

async function withSession(label, opts, fn) {
  const s = await openSession(label, opts);
  let failure;
  try { await fn(s); } catch (e) { failure = e; }
  try { s.session.close(); } catch { /* ignore */ }
  const unexpected = s.errors.filter((e) => !s.expectedErrors?.includes(e));
  const problems = [...new Set(s.violations)];
  if (unexpected.length) problems.push(...unexpected.map((e) => `session 'error' event: ${describeError(e)}`));
  if (failure) {
    if (problems.length) failure.message += `\n(also:\n  - ${problems.join('\n  - ')})`;
    throw failure;
  }
  assert.equal(problems.length, 0, `[${label}] ${problems.length} problem(s):\n  - ${problems.join('\n  - ')}`);
}

function describeError(e) {
  try { return JSON.stringify(e?.error ?? e, (k, v) => (v instanceof Error ? `${v.name}: ${v.message}` : v)); } catch { return String(e); }
}

async function waitUntil(pred, what, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function textTurn(s, text) {
  const n = s.ends.length;
  const audioBefore = s.audio.length;
  s.session.sendMessage(text);
  const { ev: done } = await s.q.waitFor('response.done');
  assert.equal(done.response.status, 'completed');
  await waitUntil(() => s.ends.length > n, 'agent_end');
  const expected = `You said: ${text}`;
  assert.equal(s.ends.at(-1), expected, 'agent_end text');
  const bytes = s.audio.slice(audioBefore).reduce((acc, e) => acc + e.data.byteLength, 0);
  const want = expected.length * MS_PER_CHAR * 48;
  assert.ok(bytes >= 0.75 * want && bytes <= 1.25 * want, `audio bytes ${bytes}, expected ~${want}`);
  const hist = s.session.history;
  const user = hist.filter((i) => i.type === 'message' && i.role === 'user').at(-1);
  assert.equal(user?.content?.[0]?.text, text, 'user message in session.history');
  const asst = hist.filter((i) => i.type === 'message' && i.role === 'assistant').at(-1);
  assert.equal(asst?.status, 'completed');
  assert.equal(asst?.content?.[0]?.transcript, expected, 'assistant transcript in session.history');
  return done;
}

const serverVadConfig = {
  audio: { input: { transcription: { model: 'whisper-1' }, turnDetection: { type: 'server_vad', threshold: 0.5, prefixPaddingMs: 300, silenceDurationMs: 500 } } },
};

describe('@openai/agents-realtime (websocket transport)', () => {
  test('connect: default agent config (semantic_vad, tracing) is accepted', async () => {
    await withSession('agents/connect', {}, async (s) => {
      const { ev } = await s.q.waitFor((e) => e.type === 'session.updated' && (e.session?.tools ?? []).length > 0);
      assert.equal(ev.session.type, 'realtime');
      assert.equal(ev.session.instructions, 'You are the brazen conformance suite.');
      assert.deepEqual(ev.session.tools.map((t) => t.name), ['get_weather']);
      await textTurn(s, 'hello agents');
    });
  });

  test('text turn', async () => {
    await withSession('agents/text', {}, async (s) => {
      await textTurn(s, 'hello agents');
      await textTurn(s, 'second message');
    });
  });

  test('text-only output (outputModalities: ["text"])', async () => {
    await withSession('agents/text-only', { config: { outputModalities: ['text'] } }, async (s) => {
      await s.q.waitFor((e) => e.type === 'session.updated' && (e.session?.tools ?? []).length > 0);
      const n = s.ends.length;
      s.session.sendMessage('text only please');
      const { ev: done, seen } = await s.q.waitFor('response.done');
      assert.equal(done.response.status, 'completed');
      assert.equal(ofType(seen, 'response.output_text.delta').map((e) => e.delta).join(''), 'You said: text only please');
      assert.equal(ofType(seen, 'response.output_audio.delta').length, 0);
      await waitUntil(() => s.ends.length > n, 'agent_end');
      assert.equal(s.ends.at(-1), 'You said: text only please');
    });
  });

  test('audio turn committed by server VAD', async () => {
    await withSession('agents/audio', { config: serverVadConfig }, async (s) => {
      await s.q.waitFor((e) => e.type === 'session.updated' && e.session?.audio?.input?.turn_detection?.type === 'server_vad');
      const n = s.ends.length;
      const pcm = speechPcm16();
      for (const c of chunks(Buffer.concat([silence(300), pcm, silence(1200)]))) {
        s.session.sendAudio(c.buffer.slice(c.byteOffset, c.byteOffset + c.byteLength));
        if (CHUNK_SLEEP_MS) await sleep(CHUNK_SLEEP_MS);
      }
      const { ev: started } = await s.q.waitFor('input_audio_buffer.speech_started');
      await s.q.waitFor('input_audio_buffer.speech_stopped');
      await s.q.waitFor('input_audio_buffer.committed');
      let transcript; let done; const seen = [];
      while (transcript === undefined || done === undefined) {
        const r = await s.q.waitFor((e) => e.type === 'response.done' || e.type === 'conversation.item.input_audio_transcription.completed');
        seen.push(...r.seen);
        if (r.ev.type === 'response.done') done = r.ev; else transcript = r.ev.transcript;
      }
      assert.match(transcript, /^\[speech \d+\.\d s\]$/);
      await waitUntil(() => s.ends.length > n, 'agent_end');
      assert.equal(s.ends.at(-1), `You said: ${transcript}`);
      // The SDK answers transcription.completed with conversation.item.retrieve.
      const isRetrieved = (e) => e.type === 'conversation.item.retrieved' && e.item?.id === started.item_id;
      await waitUntil(() => s.q.all.some(isRetrieved), 'conversation.item.retrieved for the user audio item');
      const retrieved = s.q.all.find(isRetrieved);
      assert.equal(retrieved.item.content?.[0]?.type, 'input_audio');
      assert.equal(retrieved.item.content?.[0]?.transcript, transcript);
      await waitUntil(() => s.session.history.some((i) => i.itemId === started.item_id && i.content?.[0]?.transcript === transcript), 'user transcript in history');
    });
  });

  test('function call round trip (tool executed by the SDK)', async () => {
    await withSession('agents/tool', {}, async (s) => {
      const n = s.ends.length;
      s.session.sendMessage('Please call get_weather with {"city": "Paris"} for me.');
      await waitUntil(() => s.calls.length === 1, 'tool execution');
      assert.deepEqual(s.calls[0], { city: 'Paris' });
      await s.q.waitFor((e) => e.type === 'conversation.item.added' && e.item?.type === 'function_call_output');
      await waitUntil(() => s.ends.length >= n + 2, 'agent_end after the tool result');
      assert.equal(s.ends.at(-1), 'The get_weather tool returned: {"temperature_c": 21}');
      const fc = s.q.all.filter((e) => e.type === 'response.done').map((e) => e.response.output?.[0]).find((o) => o?.type === 'function_call');
      assert.equal(fc?.name, 'get_weather');
    });
  });

  test('interrupt after audio started: conversation.item.truncate (and response.cancel while in progress)', async () => {
    await withSession('agents/interrupt', {}, async (s) => {
      s.session.sendMessage('please keep talking for a long time '.repeat(12));
      await waitUntil(() => s.audio.length > 0, 'first audio');
      const { ev: added } = await s.q.waitFor((e) => e.type === 'response.output_item.added');
      await sleep(100);
      // The SDK sends response.cancel only while it thinks the response is still running, then
      // conversation.item.truncate at the playback position (~100 ms).
      s.session.interrupt();
      const { ev: done } = await s.q.waitFor('response.done');
      assert.ok(['cancelled', 'completed'].includes(done.response.status), done.response.status);
      const { ev: truncated } = await s.q.waitFor('conversation.item.truncated');
      assert.equal(truncated.item_id, added.item.id);
      assert.equal(truncated.content_index, 0);
      assert.ok(Number.isInteger(truncated.audio_end_ms) && truncated.audio_end_ms >= 100 && truncated.audio_end_ms < 5000, truncated.audio_end_ms);
      await s.q.drain(300);
      await textTurn(s, 'after interrupt');
    });
  });

  test('response.cancel right after the request', async () => {
    await withSession('agents/cancel', {}, async (s) => {
      await s.q.waitFor((e) => e.type === 'session.updated' && (e.session?.tools ?? []).length > 0);
      s.session.transport.sendEvent({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'please keep talking for a long time '.repeat(12) }] } });
      s.session.transport.sendEvent({ type: 'response.create' });
      s.session.transport.sendEvent({ type: 'response.cancel' });
      const { ev: done } = await s.q.waitFor('response.done');
      assert.equal(done.response.status, 'cancelled');
      await s.q.drain(300);
      await textTurn(s, 'after cancel');
    });
  });

  test('bad event: error, then the connection still works', async () => {
    await withSession('agents/bad-event', {}, async (s) => {
      await s.q.waitFor((e) => e.type === 'session.updated' && (e.session?.tools ?? []).length > 0);
      const nErr = s.errors.length;
      s.session.transport.sendEvent({ type: 'conformance.no_such_event', event_id: BAD_EVENT_ID });
      const { ev } = await s.q.waitFor('error', { allowError: true });
      assert.equal(ev.error?.type, 'invalid_request_error');
      assert.equal(ev.error?.event_id, BAD_EVENT_ID);
      await waitUntil(() => s.errors.length > nErr, "session 'error' event");
      s.expectedErrors = s.errors.slice(nErr);
      await textTurn(s, 'still alive');
    });
  });

  test('browser-style subprotocol auth (realtime, openai-insecure-api-key.KEY)', async () => {
    let selected;
    const transport = new OpenAIRealtimeWebSocket({
      createWebSocket: async ({ url, apiKey }) => {
        const ws = new WebSocket(url, ['realtime', `openai-insecure-api-key.${apiKey}`, 'openai-agents-sdk.0.20.0']);
        ws.on('open', () => { selected = ws.protocol; });
        return ws;
      },
    });
    await withSession('agents/subprotocol', { transport }, async (s) => {
      await textTurn(s, 'hello from a browser');
      assert.equal(selected, 'realtime', 'server must select the `realtime` subprotocol');
    });
  });
});
