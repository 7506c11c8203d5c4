import { describe, expect, it } from 'vitest';
import { EMPTY, humanError, reduce, stages, wordAt, type ServerEvent } from '../src/conversation';

const run = (events: [ServerEvent, number][]) => events.reduce((s, [ev, at]) => reduce(s, ev, at), EMPTY);

describe('the conversation reducer', () => {
  it('builds a spoken turn: the user streaming then final, the reply streaming with word timings', () => {
    const s = run([
      [{ type: 'input_audio_buffer.speech_started', item_id: 'u1' }, 0],
      [{ type: 'conversation.item.input_audio_transcription.delta', item_id: 'u1', delta: 'What is' }, 500],
      [{ type: 'input_audio_buffer.speech_stopped', item_id: 'u1' }, 1000],
      [{ type: 'conversation.item.input_audio_transcription.completed', item_id: 'u1', transcript: ' What is the time? ' }, 1300],
      [{ type: 'response.created', response: { id: 'r1' } }, 1310],
      [{ type: 'response.output_item.added', item: { id: 'a1', type: 'message', role: 'assistant' } }, 1400],
      [{ type: 'response.audio_transcript.delta', item_id: 'a1', delta: 'It is ' }, 1700],
      [{ type: 'response.audio_timestamp.delta', item_id: 'a1', text: 'It', audio_offset_ms: 0, audio_duration_ms: 120 }, 1700],
      [{ type: 'response.audio_timestamp.delta', item_id: 'a1', text: 'is', audio_offset_ms: 120, audio_duration_ms: 100 }, 1700],
      [{ type: 'response.audio.delta', item_id: 'a1', delta: 'AAAA' }, 1750],
      [{ type: 'client.avatar_frame' }, 1790],
      [{ type: 'response.audio_transcript.delta', item_id: 'a1', delta: 'noon.' }, 2000],
      [{ type: 'response.output_item.done', item: { id: 'a1' } }, 2100],
      [{ type: 'response.done', response: { id: 'r1', status: 'completed', output: [{ id: 'a1' }] } }, 2100],
    ]);
    expect(s.entries.map((e) => [e.kind, e.text, e.status])).toEqual([
      ['user', 'What is the time?', 'done'],
      ['assistant', 'It is noon.', 'done'],
    ]);
    expect(s.entries[1].words.map((w) => w.text)).toEqual(['It', 'is']);
    expect(s.responseId).toBeNull();
    expect(s.turns).toEqual([{ endOfSpeech: 1000, transcript: 1300, firstText: 1700, firstAudio: 1750, firstFrame: 1790 }]);
    expect(stages(s.turns[0]).map((x) => x.ms)).toEqual([300, 700, 750, 790]);
  });

  it('a frame before the reply audio is not its first frame', () => {
    const s = run([
      [{ type: 'client.turn_sent' }, 0],
      [{ type: 'client.avatar_frame' }, 10],
      [{ type: 'client.avatar_speaking' }, 400],
      [{ type: 'client.avatar_frame' }, 420],
      [{ type: 'client.avatar_frame' }, 460],
    ]);
    expect(s.turns).toEqual([{ endOfSpeech: 0, firstAudio: 400, firstFrame: 420 }]);
  });

  it('a truncation keeps the words heard and marks the reply cancelled', () => {
    const s = run([
      [{ type: 'response.output_item.added', item: { id: 'a1', type: 'message' } }, 0],
      ...['One', 'two', 'three', 'four'].map((w, i): [ServerEvent, number] => [
        { type: 'response.audio_timestamp.delta', item_id: 'a1', text: w, audio_offset_ms: i * 300, audio_duration_ms: 250 }, 0]),
      [{ type: 'response.audio_transcript.delta', item_id: 'a1', delta: 'One two three four' }, 0],
      [{ type: 'conversation.item.truncated', item_id: 'a1', content_index: 0, audio_end_ms: 650 }, 700],
      [{ type: 'response.audio_transcript.done', item_id: 'a1', transcript: 'One two three four' }, 710],
    ]);
    expect(s.entries[0]).toMatchObject({ text: 'One two three', status: 'cancelled', truncatedAtMs: 650 });
  });

  it('shows tool calls inline with their arguments and the answer', () => {
    const s = run([
      [{ type: 'response.output_item.added', item: { id: 'f1', type: 'function_call', name: 'get_local_time', call_id: 'c1' } }, 0],
      [{ type: 'response.function_call_arguments.delta', item_id: 'f1', delta: '{"zone":' }, 10],
      [{ type: 'response.function_call_arguments.done', item_id: 'f1', call_id: 'c1', name: 'get_local_time', arguments: '{"zone":"UTC"}' }, 20],
      [{ type: 'client.tool_output', call_id: 'c1', output: '{"time":"noon"}' }, 30],
    ]);
    expect(s.entries).toHaveLength(1);
    expect(s.entries[0]).toMatchObject({ kind: 'tool', status: 'done', tool: { name: 'get_local_time', arguments: '{"zone":"UTC"}', output: '{"time":"noon"}' } });
  });

  it('typed messages, errors and notices become lines of their own', () => {
    const s = run([
      [{ type: 'conversation.item.created', item: { id: 'u1', type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hi there' }] } }, 0],
      [{ type: 'error', error: { code: 'invalid_value', message: 'no such voice', param: 'session.voice.name' } }, 5],
      [{ type: 'client.notice', text: 'Microphone access was denied.' }, 6],
      [{ type: 'session.updated', session: {} }, 7],
    ]);
    expect(s.entries.map((e) => [e.kind, e.text])).toEqual([
      ['user', 'Hi there'],
      ['error', 'The voice setting was refused: no such voice'],
      ['notice', 'Microphone access was denied.'],
    ]);
  });

  it('a cancelled response leaves its lines marked cancelled', () => {
    const s = run([
      [{ type: 'response.output_item.added', item: { id: 'a1', type: 'message' } }, 0],
      [{ type: 'response.audio_transcript.delta', item_id: 'a1', delta: 'Well' }, 1],
      [{ type: 'response.done', response: { status: 'cancelled', output: [{ id: 'a1' }] } }, 2],
    ]);
    expect(s.entries[0].status).toBe('cancelled');
  });

  it('an item done incomplete (as a cancelled response sends it, before response.done) is marked cancelled', () => {
    const s = run([
      [{ type: 'response.output_item.added', item: { id: 'a1', type: 'message' } }, 0],
      [{ type: 'response.audio_transcript.delta', item_id: 'a1', delta: 'One moment, please.' }, 1],
      [{ type: 'response.output_item.done', item: { id: 'a1', status: 'incomplete' } }, 2],
      [{ type: 'response.done', response: { status: 'cancelled', output: [{ id: 'a1' }] } }, 2],
    ]);
    expect(s.entries[0].status).toBe('cancelled');
  });

  it('finds the word being heard', () => {
    const words = [0, 300, 600].map((startMs, i) => ({ text: `w${i}`, startMs, durationMs: 250 }));
    expect([wordAt(words, -1), wordAt(words, 0), wordAt(words, 299), wordAt(words, 650), wordAt(words, 5000)]).toEqual([-1, 0, 0, 2, 2]);
  });

  it('puts protocol errors in plain words', () => {
    expect(humanError({ code: 'invalid_value', message: 'unknown character', param: 'session.avatar.character' })).toBe(
      'The avatar could not start: unknown character',
    );
    expect(humanError(undefined)).toBe('The server reported an error.');
  });
});
