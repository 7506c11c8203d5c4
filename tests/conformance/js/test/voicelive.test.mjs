// npm `@azure/ai-voicelive` against brazen's Voice Live endpoint.
//
// The SDK's deserializers dereference nested fields without null checks; when one throws, the SDK
// replaces the event by `error {code: "MessageParsingError"}`. Any such error, any server event the
// SDK does not know (it silently drops those), or any missing field it relies on fails the test.
// Client events go through the SDK's own API (updateSession, addConversationItem, sendAudio,
// sendEvent); assertions are made on the typed (camelCase) events the SDK hands the application.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { VoiceLiveClient } from '@azure/ai-voicelive';
import { AzureKeyCredential } from '@azure/core-auth';
import { startBrazen, API_KEY } from '../lib/server.mjs';
import { EventQueue, ofType, sleep, CHUNK_SLEEP_MS } from '../lib/events.mjs';
import { speechPcm16, silence, chunks, durationS } from '../lib/audio.mjs';

const MODEL = 'gpt-4o-realtime-preview';
const MS_PER_CHAR = 40;
const BAD_EVENT_ID = 'evt_conformance_bad_1';
const WEATHER_TOOL = {
  type: 'function',
  name: 'get_weather',
  description: 'Look up the current weather for a city.',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

let server;
before(async () => { server = await startBrazen('js-voicelive'); });
after(async () => { await server?.stop(); });

const CONTENT_TYPES = new Set(['input_text', 'input_audio', 'input_image', 'text', 'audio']);

/** Checks on the raw JSON of one server frame (fields the SDKs rely on). */
function rawProblems(raw) {
  const out = [];
  const t = raw.type;
  if (typeof raw.event_id !== 'string') out.push('event_id missing or not a string');
  if (t === 'session.created' && !(raw.session && typeof raw.session.id === 'string' && raw.session.id)) {
    out.push('session.created.session.id missing: the SDK then delivers no events to the application');
  }
  const checkItem = (item, where) => {
    if (!item || typeof item !== 'object') return;
    if (item.type === 'message') {
      if (!Array.isArray(item.content)) out.push(`${where}.content must be an array`);
      else item.content.forEach((c, i) => { if (!CONTENT_TYPES.has(c?.type)) out.push(`${where}.content[${i}].type ${JSON.stringify(c?.type)} is not a Voice Live content type`); });
    }
  };
  if (raw.item) checkItem(raw.item, 'item');
  if ((t === 'response.created' || t === 'response.done') && raw.response) {
    (raw.response.output || []).forEach((it, i) => checkItem(it, `response.output[${i}]`));
  }
  if (t === 'response.function_call_arguments.done' && typeof raw.name !== 'string') {
    out.push('response.function_call_arguments.done without `name` (the SDK README sample reads event.name)');
  }
  for (const f of ['output_index', 'content_index', 'audio_start_ms', 'audio_end_ms']) {
    if (f in raw && !Number.isInteger(raw[f])) out.push(`${f} must be an integer, got ${JSON.stringify(raw[f])}`);
  }
  return out;
}

async function openSession(label, credential) {
  const client = new VoiceLiveClient(server.baseUrl, credential);
  const session = client.createSession(MODEL);
  const q = new EventQueue(label);
  const violations = [];
  // Watch every raw frame and what the SDK's parser made of it.
  const parser = session._messageParser;
  const parse = parser.parseIncomingMessage.bind(parser);
  parser.parseIncomingMessage = (data) => {
    const result = parse(data);
    let raw;
    try { raw = JSON.parse(typeof data === 'string' ? data : Buffer.from(data).toString('utf8')); } catch { violations.push(`non-JSON frame: ${String(data).slice(0, 200)}`); return result; }
    const short = JSON.stringify(raw).replace(/"(delta|audio)":"[A-Za-z0-9+/=]{40,}"/g, '"$1":"<base64>"').slice(0, 400);
    if (result === null) violations.push(`${raw.type}: not a server event type known to @azure/ai-voicelive (silently dropped)\n    raw: ${short}`);
    else if (result.event?.type === 'error' && result.event?.error?.code === 'MessageParsingError') {
      violations.push(`${raw.type}: MessageParsingError: ${result.event.error.message}\n    raw: ${short}`);
    }
    for (const p of rawProblems(raw)) violations.push(`${raw.type}: ${p}\n    raw: ${short}`);
    return result;
  };
  session.subscribe({
    onServerEvent: async (ev) => { q.push(ev); },
    onError: async (args) => { violations.push(`connection error: ${args?.error?.message ?? JSON.stringify(args)}`); },
  });
  await session.connect();
  const { ev: created } = await q.waitFor('session.created', { timeoutMs: 10000 });
  assert.ok(created.session, 'session.created without session');
  return { session, q, violations, created };
}

async function withSession(label, credential, fn) {
  const s = await openSession(label, credential);
  let failure;
  try {
    await fn(s);
  } catch (e) {
    failure = e;
  }
  try { await s.session.disconnect(); } catch { /* ignore */ }
  const uniq = [...new Set(s.violations)];
  if (failure) {
    if (uniq.length) failure.message += `\n(also ${uniq.length} SDK-level violation(s):\n  - ${uniq.join('\n  - ')})`;
    throw failure;
  }
  assert.equal(uniq.length, 0, `[${label}] ${uniq.length} SDK-level violation(s):\n  - ${uniq.join('\n  - ')}`);
}

async function userText(s, text) {
  await s.session.addConversationItem({ type: 'message', role: 'user', content: [{ type: 'input_text', text }] });
}

async function textTurn(s, text) {
  await userText(s, text);
  const { ev: created } = await s.q.waitFor((e) => e.type === 'conversation.item.created' && e.item?.role === 'user');
  assert.equal(created.item.content?.[0]?.text, text);
  await s.session.sendEvent({ type: 'response.create' });
  const { ev: done, seen } = await s.q.waitFor('response.done');
  const expected = `You said: ${text}`;
  assert.equal(done.response.status, 'completed');
  const transcript = ofType(seen, 'response.audio_transcript.delta').map((e) => e.delta).join('');
  assert.equal(transcript, expected);
  assert.equal(ofType(seen, 'response.audio_transcript.done').at(-1)?.transcript, expected);
  const audio = ofType(seen, 'response.audio.delta').reduce((n, e) => n + e.delta.length, 0);
  const want = expected.length * MS_PER_CHAR * 48;
  assert.ok(audio >= 0.75 * want && audio <= 1.25 * want, `audio bytes ${audio}, expected ~${want}`);
  const out = done.response.output ?? [];
  assert.equal(out.length, 1);
  assert.equal(out[0].type, 'message');
  assert.equal(out[0].role, 'assistant');
  assert.equal(out[0].content?.[0]?.type, 'audio');
  assert.equal(out[0].content?.[0]?.transcript, expected);
  const rid = done.response.id;
  for (const e of seen) if (e.responseId !== undefined) assert.equal(e.responseId, rid, `${e.type} responseId`);
  return { done, seen };
}

const vadSession = {
  modalities: ['text', 'audio'],
  inputAudioFormat: 'pcm16',
  outputAudioFormat: 'pcm16',
  inputAudioTranscription: { model: 'whisper-1' },
  turnDetection: { type: 'server_vad', threshold: 0.5, prefixPaddingInMs: 300, silenceDurationInMs: 500 },
};

const scenarios = {
  async session_update(s) {
    const td = s.created.session.turnDetection;
    // The protocol's default is server_vad; brazen's built-in agent starts with semantic_vad.
    assert.ok(['server_vad', 'semantic_vad'].includes(td?.type), `default turn detection: ${JSON.stringify(td)}`);
    await s.session.updateSession({ ...vadSession, instructions: 'You are the brazen conformance suite.' });
    const { ev } = await s.q.waitFor('session.updated');
    assert.equal(ev.session.instructions, 'You are the brazen conformance suite.');
    assert.equal(ev.session.turnDetection?.type, 'server_vad');
    assert.equal(ev.session.inputAudioTranscription?.model, 'whisper-1');
    assert.equal(ev.session.inputAudioFormat, 'pcm16');
  },
  async text_turn(s) {
    await textTurn(s, 'hello brazen');
    await textTurn(s, 'second message');
  },
  async text_only(s) {
    await s.session.updateSession({ modalities: ['text'] });
    await s.q.waitFor('session.updated');
    const text = 'text only please';
    await userText(s, text);
    await s.session.sendEvent({ type: 'response.create' });
    const { ev: done, seen } = await s.q.waitFor('response.done');
    assert.equal(done.response.status, 'completed');
    assert.equal(ofType(seen, 'response.text.delta').map((e) => e.delta).join(''), `You said: ${text}`);
    assert.equal(ofType(seen, 'response.text.done').at(-1)?.text, `You said: ${text}`);
    assert.equal(ofType(seen, 'response.audio.delta').length, 0, 'audio deltas in a text-only response');
    assert.equal(done.response.output?.[0]?.content?.[0]?.type, 'text');
    assert.equal(done.response.output?.[0]?.content?.[0]?.text, `You said: ${text}`);
  },
  async audio_vad_turn(s) {
    await s.session.updateSession(vadSession);
    await s.q.waitFor('session.updated');
    const pcm = speechPcm16();
    for (const c of chunks(Buffer.concat([silence(300), pcm, silence(1200)]))) {
      await s.session.sendAudio(new Uint8Array(c));
      if (CHUNK_SLEEP_MS) await sleep(CHUNK_SLEEP_MS);
    }
    const { ev: started } = await s.q.waitFor('input_audio_buffer.speech_started');
    const { ev: stopped } = await s.q.waitFor('input_audio_buffer.speech_stopped');
    assert.equal(stopped.itemId, started.itemId);
    const speechMs = stopped.audioEndInMs - started.audioStartInMs;
    const totalMs = durationS(pcm) * 1000;
    assert.ok(speechMs >= 0.5 * totalMs && speechMs <= totalMs + 1500, `speech ${speechMs} ms vs spoken ${totalMs} ms`);
    const { ev: committed } = await s.q.waitFor('input_audio_buffer.committed');
    assert.equal(committed.itemId, started.itemId);
    let transcript; let done; const seenAll = [];
    while (transcript === undefined || done === undefined) {
      const { ev, seen } = await s.q.waitFor((e) => e.type === 'response.done' || e.type === 'conversation.item.input_audio_transcription.completed');
      seenAll.push(...seen);
      if (ev.type === 'response.done') done = ev; else transcript = ev.transcript;
    }
    assert.match(transcript, /^\[speech \d+\.\d s\]$/);
    assert.equal(done.response.status, 'completed');
    const said = ofType(seenAll, 'response.audio_transcript.delta').map((e) => e.delta).join('');
    assert.equal(said, `You said: ${transcript}`);
    const userItem = ofType(seenAll, 'conversation.item.created').find((e) => e.item?.id === started.itemId);
    assert.ok(userItem, 'no conversation.item.created for the committed audio');
    assert.equal(userItem.item.content?.[0]?.type, 'input_audio');
  },
  async function_call(s) {
    await s.session.updateSession({ tools: [WEATHER_TOOL], toolChoice: 'auto' });
    await s.q.waitFor('session.updated');
    await userText(s, 'Please call get_weather with {"city": "Paris"} for me.');
    await s.session.sendEvent({ type: 'response.create' });
    const { ev: argsDone } = await s.q.waitFor('response.function_call_arguments.done');
    assert.deepEqual(JSON.parse(argsDone.arguments), { city: 'Paris' });
    assert.ok(argsDone.callId);
    const { ev: done } = await s.q.waitFor('response.done');
    const fc = done.response.output?.[0];
    assert.equal(fc?.type, 'function_call');
    assert.equal(fc.name, 'get_weather');
    assert.equal(fc.callId, argsDone.callId);
    await s.session.addConversationItem({ type: 'function_call_output', callId: argsDone.callId, output: '{"temperature_c": 21}' });
    await s.q.waitFor((e) => e.type === 'conversation.item.created' && e.item?.type === 'function_call_output');
    await s.session.sendEvent({ type: 'response.create' });
    const { seen } = await s.q.waitFor('response.done');
    const said = ofType(seen, 'response.audio_transcript.delta').map((e) => e.delta).join('');
    assert.equal(said, 'The get_weather tool returned: {"temperature_c": 21}');
  },
  async cancel(s) {
    await userText(s, 'please keep talking for a long time '.repeat(12));
    await s.q.waitFor((e) => e.type === 'conversation.item.created' && e.item?.role === 'user');
    // Cancel right behind the create: the echo engine can finish a reply within milliseconds.
    await s.session.sendEvent({ type: 'response.create' });
    await s.session.sendEvent({ type: 'response.cancel' });
    const { ev: created } = await s.q.waitFor('response.created');
    const { ev: done } = await s.q.waitFor('response.done');
    assert.equal(done.response.id, created.response.id);
    assert.equal(done.response.status, 'cancelled');
    await s.q.drain(300);
    await textTurn(s, 'after cancel');
  },
  async truncate(s) {
    const { done } = await textTurn(s, 'truncate me please');
    const itemId = done.response.output[0].id;
    await s.session.sendEvent({ type: 'conversation.item.truncate', itemId, contentIndex: 0, audioEndInMs: 300 });
    const { ev } = await s.q.waitFor('conversation.item.truncated');
    assert.equal(ev.itemId, itemId);
    assert.equal(ev.contentIndex, 0);
    assert.equal(ev.audioEndInMs, 300);
  },
  async bad_event(s) {
    await s.session.sendEvent({ type: 'conformance.no_such_event', eventId: BAD_EVENT_ID });
    const { ev } = await s.q.waitFor('error', { allowError: true });
    assert.equal(ev.error.type, 'invalid_request_error');
    assert.ok(ev.error.message);
    assert.equal(ev.error.eventId, BAD_EVENT_ID, 'error.event_id should echo the client event_id');
    await textTurn(s, 'still alive');
  },
};

const credentials = {
  'api-key': () => new AzureKeyCredential(API_KEY),
  bearer: () => ({ getToken: async () => ({ token: API_KEY, expiresOnTimestamp: Date.now() + 3600_000 }) }),
};

for (const [auth, makeCred] of Object.entries(credentials)) {
  describe(`@azure/ai-voicelive (${auth})`, () => {
    for (const [name, fn] of Object.entries(scenarios)) {
      test(name, async () => {
        await withSession(`@azure/ai-voicelive/${auth}`, makeCred(), fn);
      });
    }
  });
}

test('@azure/ai-voicelive: wrong key is rejected', async () => {
  const client = new VoiceLiveClient(server.baseUrl, new AzureKeyCredential('wrong-key'));
  await assert.rejects(client.startSession(MODEL), (e) => {
    assert.match(String(e?.message ?? e), /401/, `expected an HTTP 401 rejection, got ${e?.message ?? e}`);
    return true;
  });
});
