import { describe, expect, it } from 'vitest';
import { DEFAULTS, STORAGE_KEY, avatarConfig, loadSettings, longestTurnWaitMs, realtimeUrl, sanitize, saveSettings, sessionConfig, sessionCredential } from '../src/settings';

const memory = () => {
  const data = new Map<string, string>();
  return { getItem: (k: string) => data.get(k) ?? null, setItem: (k: string, v: string) => void data.set(k, v), data };
};

describe('settings', () => {
  it('are saved and loaded through storage', () => {
    const store = memory();
    const changed = { ...DEFAULTS, voice: 'en_US-joe-medium', rate: 1.2, avatar: { ...DEFAULTS.avatar, output: 'websocket' as const } };
    saveSettings(changed, store);
    expect(JSON.parse(store.data.get(STORAGE_KEY)!).voice).toBe('en_US-joe-medium');
    expect(loadSettings(store)).toEqual(changed);
  });

  it('say so when the browser will not store them', () => {
    const full = { setItem: () => { throw new DOMException('full', 'QuotaExceededError'); } };
    expect(saveSettings(DEFAULTS, full)).toBe(false);
    expect(saveSettings(DEFAULTS, memory())).toBe(true);
  });

  it('replace broken or out-of-range stored values by defaults, keeping the rest', () => {
    const store = memory();
    store.setItem(STORAGE_KEY, JSON.stringify({ rate: 9, pitch: 'high', voice: 'alloy', micMode: 'shout', turn: { silenceMs: 800, type: 42 },
      avatar: { background: 'green', resolution: 'hd', output: 'carrier-pigeon', scene: { zoom: 2, amplitude: -1 } } }));
    const s = loadSettings(store);
    expect(s.rate).toBe(DEFAULTS.rate);
    expect(s.pitch).toBe(DEFAULTS.pitch);
    expect(s.voice).toBe('alloy');
    expect(s.micMode).toBe('hands-free');
    expect(s.turn).toEqual({ ...DEFAULTS.turn, silenceMs: 800 });
    expect(s.avatar.background).toBe(DEFAULTS.avatar.background);
    expect(s.avatar.resolution).toBe('hd');
    expect(s.avatar.output).toBe('webrtc');
    expect(s.avatar.scene).toEqual({ ...DEFAULTS.avatar.scene, zoom: 2 });
    store.setItem(STORAGE_KEY, '{not json');
    expect(loadSettings(store)).toEqual(DEFAULTS);
    expect(sanitize(null)).toEqual(DEFAULTS);
  });

  it('point the socket at the serving origin, or at the endpoint given, never with the key in the URL', () => {
    expect(realtimeUrl(DEFAULTS, 'http://127.0.0.1:8080')).toBe('ws://127.0.0.1:8080/voice-live/realtime?api-version=2025-10-01&model=gpt-4o');
    const s = { ...DEFAULTS, endpoint: 'https://example.com/brazen/', apiKey: 'k&1' };
    expect(realtimeUrl(s, 'http://ignored')).toBe('wss://example.com/brazen/voice-live/realtime?api-version=2025-10-01&model=gpt-4o');
  });

  it('get a one-session client secret from the token URL, or by the API key, before a call', async () => {
    const calls: [string, RequestInit | undefined][] = [];
    const answer = (status: number, body: unknown) => async (url: RequestInfo | URL, init?: RequestInit) => {
      calls.push([String(url), init]);
      return new Response(JSON.stringify(body), { status });
    };
    expect(await sessionCredential(DEFAULTS, 'http://127.0.0.1:8080', answer(200, {}) as typeof fetch)).toBeNull();
    expect(calls).toEqual([]);
    // With a token URL the page holds no key: the backend answers for it, with the page's cookies.
    const viaBackend = { ...DEFAULTS, apiKey: 'ignored', tokenUrl: '/token' };
    expect(await sessionCredential(viaBackend, 'https://shop.example', answer(200, { value: 'ek_1', expires_at: 1 }) as typeof fetch)).toEqual({ kind: 'secret', value: 'ek_1' });
    expect(calls[0][0]).toBe('https://shop.example/token');
    expect(calls[0][1]?.credentials).toBe('include');
    expect(JSON.stringify(calls[0][1]?.headers ?? {})).not.toContain('ignored');
    // With a key, the server mints it: the key goes in a header, once.
    const keyed = { ...DEFAULTS, endpoint: 'https://brazen.example', apiKey: 'k1' };
    expect(await sessionCredential(keyed, 'http://ignored', answer(200, { value: 'ek_2' }) as typeof fetch)).toEqual({ kind: 'secret', value: 'ek_2' });
    expect(calls[1][0]).toBe('https://brazen.example/v1/realtime/client_secrets');
    expect((calls[1][1]?.headers as Record<string, string>)['api-key']).toBe('k1');
    await expect(sessionCredential(keyed, 'http://ignored', answer(401, { error: { message: 'no' } }) as typeof fetch)).rejects.toThrow('refused the API key');
    // A Voice Live service that mints no secrets: the key goes in the URL, as before.
    expect(await sessionCredential(keyed, 'http://ignored', answer(404, {}) as typeof fetch)).toEqual({ kind: 'key', value: 'k1' });
    expect(realtimeUrl(keyed, 'http://ignored', 'k1')).toContain('api-key=k1');
    await expect(sessionCredential(viaBackend, 'https://shop.example', answer(500, { detail: 'down' }) as typeof fetch)).rejects.toThrow('HTTP 500 (down)');
    await expect(sessionCredential(viaBackend, 'https://shop.example', answer(200, { nope: 1 }) as typeof fetch)).rejects.toThrow('holds no client secret');
    const unreachable = (async () => { throw new TypeError('failed'); }) as typeof fetch;
    await expect(sessionCredential(viaBackend, 'https://shop.example', unreachable)).rejects.toThrow('no answer');
  });

  it('make the Voice Live session.update', () => {
    const s = sessionConfig({ ...DEFAULTS, pitch: -10, language: 'de', turn: { ...DEFAULTS.turn, type: 'server_vad', threshold: 0.3, interrupt: false } });
    expect(s.voice).toEqual({ name: DEFAULTS.voice, type: 'azure-standard', rate: 1, pitch: '-10%' });
    expect(s.input_audio_transcription).toEqual({ model: 'gpt-4o-mini-transcribe', language: 'de' });
    expect(s.turn_detection).toMatchObject({ type: 'server_vad', threshold: 0.3, interrupt_response: false, silence_duration_ms: 500 });
    expect(s.output_audio_timestamp_types).toEqual(['word']);
    expect((s.tools as unknown[]).length).toBe(1);
    expect(sessionConfig({ ...DEFAULTS, micMode: 'push-to-talk' }).turn_detection).toBeNull();
    // The default: semantic turn detection, with its eagerness and none of the silence settings.
    expect(sessionConfig(DEFAULTS).turn_detection).toEqual({
      type: 'semantic_vad', eagerness: 'auto', interrupt_response: true, remove_filler_words: true, create_response: true,
    });
    // Backchannels interrupting is a choice; with an agent, only a changed turn detection is sent.
    const plain = { ...DEFAULTS, turn: { ...DEFAULTS.turn, ignoreFillers: false } };
    expect(sessionConfig(plain).turn_detection).toMatchObject({ remove_filler_words: false });
    expect(sessionConfig(plain, undefined, true).turn_detection).toMatchObject({ remove_filler_words: false });
    expect(sessionConfig(DEFAULTS, undefined, true)).not.toHaveProperty('turn_detection');
    expect(longestTurnWaitMs(DEFAULTS.turn)).toBe(2000);
    expect(longestTurnWaitMs({ ...DEFAULTS.turn, eagerness: 'low' })).toBe(4000);
    expect(longestTurnWaitMs({ ...DEFAULTS.turn, type: 'server_vad', silenceMs: 700 })).toBe(700);
    expect(sessionConfig({ ...DEFAULTS, browserTools: false }).tools).toEqual([]);
  });

  it('ask for the avatar video as set: size, crop, background, transparency, photo and scene', () => {
    expect(avatarConfig(DEFAULTS)).toEqual({
      character: 'ava', style: 'casual', customized: false, output_protocol: 'webrtc',
      video: { codec: 'h264', bitrate: 1_000_000, resolution: { width: 1920, height: 1080 },
        crop: { top_left: [560, 0], bottom_right: [1360, 1080] }, background: { color: '#FFFFFFFF' } },
    });
    const photo = avatarConfig({ ...DEFAULTS, avatar: { ...DEFAULTS.avatar, kind: 'photo', portrait: 'anika', resolution: 'square',
      background: '#00ff0080', scene: { ...DEFAULTS.avatar.scene, zoom: 1.5 } } }, 'websocket')!;
    expect(photo).toMatchObject({ type: 'photo-avatar', character: 'anika', output_protocol: 'websocket',
      video: { resolution: { width: 512, height: 512 }, background: { color: '#00FF0080' } }, scene: { zoom: 1.5 } });
    expect(photo.video).not.toHaveProperty('crop');
    const url = avatarConfig({ ...DEFAULTS, avatar: { ...DEFAULTS.avatar, kind: 'photo', portrait: 'data:image/png;base64,AAA', imageUrl: 'https://x/bg.png' } })!;
    expect(url).toMatchObject({ photo_url: 'data:image/png;base64,AAA', video: { background: { image_url: 'https://x/bg.png' } } });
    expect(avatarConfig({ ...DEFAULTS, avatar: { ...DEFAULTS.avatar, enabled: false } })).toBeNull();
    const drawn = sessionConfig(DEFAULTS, 'canvas');
    expect(drawn.avatar).toBeNull();
    expect(drawn.animation).toEqual({ outputs: ['viseme_id'] });
  });
});
