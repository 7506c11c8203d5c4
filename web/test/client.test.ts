import { describe, expect, it } from 'vitest';
import { connectError, elide } from '../src/client';

describe('the event log', () => {
  it('elides audio and video payloads but keeps everything else', () => {
    const audio = 'A'.repeat(4000);
    const line = JSON.parse(elide({ type: 'response.audio.delta', item_id: 'a1', delta: audio }));
    expect(line).toEqual({ type: 'response.audio.delta', item_id: 'a1', delta: '<3000 bytes>' });
    expect(JSON.parse(elide({ type: 'input_audio_buffer.append', audio })).audio).toBe('<3000 bytes>');
    expect(JSON.parse(elide({ type: 'session.avatar.connect', client_sdp: audio })).client_sdp).toBe('<3000 bytes>');
    // A transcript delta is text, and kept whole.
    const text = 'word '.repeat(30);
    expect(JSON.parse(elide({ type: 'response.audio_transcript.delta', delta: text })).delta).toBe(text);
  });

  it('explains a failed connection by what /health says', () => {
    expect(connectError('http://h:1', null, false)).toMatch(/cannot be reached/);
    expect(connectError('http://h:1', { auth: true }, true)).toMatch(/refused the API key/);
    expect(connectError('http://h:1', { auth: true }, false)).toMatch(/needs an API key/);
    expect(connectError('http://h:1', { auth: false }, false)).toMatch(/session limit/);
  });
});
