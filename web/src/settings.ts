// The app's settings: what they are, their defaults, how they are kept in localStorage, and the
// Voice Live `session.update` and WebSocket URL they stand for.
// The default instructions and the browser's tools live in default-session.json, which the server
// also reads: it computes that session's prompt at start-up, so a first conversation is quick.
import firstSession from './default-session.json';

/** How the avatar reaches the page. */
export type OutputMode = 'webrtc' | 'websocket' | 'canvas';
/** When the microphone's audio is sent. */
export type MicMode = 'hands-free' | 'push-to-talk';

/** A picture size for the avatar video, with an optional crop. */
export interface ResolutionPreset {
  /** Shown in the settings. */
  label: string;
  width: number;
  height: number;
  /** `[left, top, right, bottom]` of the picture that is sent, in the full picture's pixels. */
  crop?: [number, number, number, number];
}

/** The sizes offered, by name. `portrait` is what the Voice Live samples ask for. */
export const RESOLUTIONS: Record<string, ResolutionPreset> = {
  portrait: { label: 'Portrait 800×1080 (1080p cropped)', width: 1920, height: 1080, crop: [560, 0, 1360, 1080] },
  hd: { label: 'Landscape 1280×720', width: 1280, height: 720 },
  square: { label: 'Square 512×512 (lightest)', width: 512, height: 512 },
  phone: { label: 'Phone 540×960', width: 540, height: 960 },
};

/** Where and how the photo avatar's portrait sits in the picture (Voice Live's `scene`). */
export interface Scene {
  zoom: number;
  position_x: number;
  position_y: number;
  rotation_x: number;
  rotation_y: number;
  rotation_z: number;
  amplitude: number;
}

/** Everything the user can set. */
export interface Settings {
  /** The server's http(s) or ws(s) URL; empty: the origin serving the page. */
  endpoint: string;
  /**
   * The server's API key: the page exchanges it for a one-session client secret
   * (`POST /v1/realtime/client_secrets`) before each call, so the key itself never travels in
   * a WebSocket URL. Prefer `tokenUrl`, with which the page never holds the key.
   */
  apiKey: string;
  /**
   * A URL of the site's own backend that answers a POST with a client secret
   * (`{value, expires_at}`, as brazen's and OpenAI's `client_secrets` do); asked before each
   * call with the page's cookies. Empty: use `apiKey`, or nothing.
   */
  tokenUrl: string;
  model: string;
  instructions: string;
  voice: string;
  /** Speaking rate, 0.5–1.5. */
  rate: number;
  /** Pitch change in percent, −50–+50. */
  pitch: number;
  /** The language spoken to the agent (`''`: let the recogniser decide). */
  language: string;
  turn: {
    /**
     * How the server finds the end of a turn (push-to-talk turns detection off): `semantic_vad`
     * (default) hears whether the sentence is finished and ends it sooner or waits longer;
     * `server_vad` waits for `silenceMs` of silence.
     */
    type: 'semantic_vad' | 'server_vad' | 'azure_semantic_vad';
    /** How soon `semantic_vad` ends a turn. */
    eagerness: 'auto' | 'low' | 'medium' | 'high';
    threshold: number;
    silenceMs: number;
    prefixMs: number;
    /** Speaking over the assistant stops it. */
    interrupt: boolean;
    /**
     * While the assistant speaks, "mm-hmm", "yeah" and coughs do not interrupt it; the words of
     * what is said decide (`remove_filler_words`; an interruption then comes when its words do).
     */
    ignoreFillers: boolean;
  };
  micMode: MicMode;
  /** Length of each audio chunk sent, 20–100 ms. */
  chunkMs: number;
  avatar: {
    enabled: boolean;
    kind: 'character' | 'photo';
    character: string;
    style: string;
    /** A portrait installed on the server (by name) or an http(s)/data: URL of a photo. */
    portrait: string;
    scene: Scene;
    /** `#RRGGBBAA`; alpha below FF makes the background transparent. */
    background: string;
    /** A background picture's URL; wins over the colour when set. */
    imageUrl: string;
    resolution: keyof typeof RESOLUTIONS;
    output: OutputMode;
  };
  animation: { visemes: boolean; blendshapes: boolean };
  /** Offer the browser's own tools (the time of day) to the model. */
  browserTools: boolean;
  /**
   * With a server agent, offer the browser's tools beside the agent's (off by default: the agent's
   * prompt, computed ahead at start-up, is then used as it is).
   */
  browserToolsWithAgent: boolean;
  developer: boolean;
}

/** The settings of a first visit. */
export const DEFAULTS: Settings = {
  endpoint: '',
  apiKey: '',
  tokenUrl: '',
  model: 'gpt-4o',
  instructions: firstSession.instructions,
  voice: 'en-US-AvaMultilingualNeural',
  rate: 1,
  pitch: 0,
  language: 'en',
  turn: { type: 'semantic_vad', eagerness: 'auto', threshold: 0.5, silenceMs: 500, prefixMs: 300, interrupt: true, ignoreFillers: true },
  micMode: 'hands-free',
  chunkMs: 40,
  avatar: {
    enabled: true,
    kind: 'character',
    character: 'ava',
    style: 'casual',
    portrait: '',
    scene: { zoom: 1, position_x: 0, position_y: 0, rotation_x: 0, rotation_y: 0, rotation_z: 0, amplitude: 1 },
    background: '#FFFFFFFF',
    imageUrl: '',
    resolution: 'portrait',
    output: 'webrtc',
  },
  animation: { visemes: false, blendshapes: false },
  browserTools: true,
  browserToolsWithAgent: false,
  developer: false,
};

/** The localStorage key. */
export const STORAGE_KEY = 'brazen.settings.v1';

/** Keeps `value` if it has the type of `fallback` (and, for numbers, lies in `[min, max]`). */
function same<T>(value: unknown, fallback: T, min = -Infinity, max = Infinity): T {
  if (typeof fallback === 'number') {
    return typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max ? (value as T) : fallback;
  }
  return typeof value === typeof fallback ? (value as T) : fallback;
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], fallback: T): T {
  return allowed.includes(value as T) ? (value as T) : fallback;
}

const COLOR = /^#[0-9a-fA-F]{8}$/;

/**
 * Settings from anything (stored JSON of an older version, hand-edited values): each known field
 * of the right type and range is kept, everything else takes its default.
 */
export function sanitize(raw: unknown): Settings {
  const r = (raw && typeof raw === 'object' ? raw : {}) as Record<string, any>;
  const t = (r.turn && typeof r.turn === 'object' ? r.turn : {}) as Record<string, unknown>;
  const a = (r.avatar && typeof r.avatar === 'object' ? r.avatar : {}) as Record<string, any>;
  const s = (a.scene && typeof a.scene === 'object' ? a.scene : {}) as Record<string, unknown>;
  const an = (r.animation && typeof r.animation === 'object' ? r.animation : {}) as Record<string, unknown>;
  const d = DEFAULTS;
  const pi = Math.PI;
  return {
    endpoint: same(r.endpoint, d.endpoint).trim(),
    apiKey: same(r.apiKey, d.apiKey),
    tokenUrl: same(r.tokenUrl, d.tokenUrl).trim(),
    model: same(r.model, d.model),
    instructions: same(r.instructions, d.instructions),
    voice: same(r.voice, d.voice),
    rate: same(r.rate, d.rate, 0.5, 1.5),
    pitch: same(r.pitch, d.pitch, -50, 50),
    language: same(r.language, d.language),
    turn: {
      type: oneOf(t.type, ['semantic_vad', 'server_vad', 'azure_semantic_vad'] as const, d.turn.type),
      eagerness: oneOf(t.eagerness, ['auto', 'low', 'medium', 'high'] as const, d.turn.eagerness),
      threshold: same(t.threshold, d.turn.threshold, 0, 1),
      silenceMs: same(t.silenceMs, d.turn.silenceMs, 100, 5000),
      prefixMs: same(t.prefixMs, d.turn.prefixMs, 0, 2000),
      interrupt: same(t.interrupt, d.turn.interrupt),
      ignoreFillers: same(t.ignoreFillers, d.turn.ignoreFillers),
    },
    micMode: oneOf(r.micMode, ['hands-free', 'push-to-talk'] as const, d.micMode),
    chunkMs: same(r.chunkMs, d.chunkMs, 20, 100),
    avatar: {
      enabled: same(a.enabled, d.avatar.enabled),
      kind: oneOf(a.kind, ['character', 'photo'] as const, d.avatar.kind),
      character: same(a.character, d.avatar.character),
      style: same(a.style, d.avatar.style),
      portrait: same(a.portrait, d.avatar.portrait),
      scene: {
        zoom: same(s.zoom, d.avatar.scene.zoom, 0.1, 10),
        position_x: same(s.position_x, d.avatar.scene.position_x, -1, 1),
        position_y: same(s.position_y, d.avatar.scene.position_y, -1, 1),
        rotation_x: same(s.rotation_x, d.avatar.scene.rotation_x, -pi, pi),
        rotation_y: same(s.rotation_y, d.avatar.scene.rotation_y, -pi, pi),
        rotation_z: same(s.rotation_z, d.avatar.scene.rotation_z, -pi, pi),
        amplitude: same(s.amplitude, d.avatar.scene.amplitude, 0.01, 1),
      },
      background: typeof a.background === 'string' && COLOR.test(a.background) ? a.background : d.avatar.background,
      imageUrl: same(a.imageUrl, d.avatar.imageUrl).trim(),
      resolution: oneOf(a.resolution, Object.keys(RESOLUTIONS), d.avatar.resolution),
      output: oneOf(a.output, ['webrtc', 'websocket', 'canvas'] as const, d.avatar.output),
    },
    animation: { visemes: same(an.visemes, d.animation.visemes), blendshapes: same(an.blendshapes, d.animation.blendshapes) },
    browserTools: same(r.browserTools, d.browserTools),
    browserToolsWithAgent: same(r.browserToolsWithAgent, d.browserToolsWithAgent),
    developer: same(r.developer, d.developer),
  };
}

/** The saved settings, or the defaults (a broken saved value is not an error: it is replaced). */
export function loadSettings(storage: Pick<Storage, 'getItem'> = localStorage): Settings {
  try {
    const text = storage.getItem(STORAGE_KEY);
    return sanitize(text ? JSON.parse(text) : {});
  } catch {
    return sanitize({});
  }
}

/**
 * Saves the settings; `false` when the browser would not store them (storage full or disabled):
 * they still apply to this visit.
 */
export function saveSettings(settings: Settings, storage: Pick<Storage, 'setItem'> = localStorage): boolean {
  try {
    storage.setItem(STORAGE_KEY, JSON.stringify(settings));
    return true;
  } catch {
    return false;
  }
}

/**
 * The Voice Live WebSocket URL the settings point at (`origin`: the page's, for an empty
 * endpoint); `key` goes in it as the `api-key` query parameter only for a service that mints no
 * client secrets (see `sessionCredential`).
 */
export function realtimeUrl(settings: Settings, origin: string, key: string | null = null): string {
  const url = new URL(settings.endpoint || origin);
  url.protocol = url.protocol === 'https:' || url.protocol === 'wss:' ? 'wss:' : 'ws:';
  if (!url.pathname.endsWith('/voice-live/realtime')) {
    url.pathname = url.pathname.replace(/\/+$/, '') + '/voice-live/realtime';
  }
  url.searchParams.set('api-version', '2025-10-01');
  url.searchParams.set('model', settings.model);
  if (key) url.searchParams.set('api-key', key);
  return url.toString();
}

/** How a call proves it may connect: a one-session client secret, or (a service that mints none) the key. */
export type Credential = { kind: 'secret'; value: string } | { kind: 'key'; value: string } | null;

/**
 * A client secret for one session, from the settings' token URL or minted with their API key;
 * the key itself when the endpoint mints none (an Azure Voice Live resource answers 404);
 * `null` when the settings have neither (a server without a key). Throws an `Error` that says
 * what went wrong. Gives up after 10 s.
 */
export async function sessionCredential(settings: Settings, origin: string, fetcher: typeof fetch = fetch): Promise<Credential> {
  let url: string;
  let init: RequestInit;
  if (settings.tokenUrl) {
    url = new URL(settings.tokenUrl, origin).toString();
    init = { method: 'POST', credentials: 'include' };
  } else if (settings.apiKey) {
    url = `${httpBase(settings, origin)}/v1/realtime/client_secrets`;
    init = { method: 'POST', headers: { 'api-key': settings.apiKey, 'content-type': 'application/json' }, body: '{}' };
  } else {
    return null;
  }
  init.signal = AbortSignal.timeout(10000);
  let response: Response;
  try {
    response = await fetcher(url, init);
  } catch {
    throw new Error(`The session token could not be fetched from ${url}: no answer.`);
  }
  if (!settings.tokenUrl && (response.status === 404 || response.status === 405)) return { kind: 'key', value: settings.apiKey };
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    if (!settings.tokenUrl && (response.status === 401 || response.status === 403)) throw new Error('The server refused the API key. Check the key in the settings.');
    const why = body?.error?.message ?? body?.detail ?? '';
    throw new Error(`The session token could not be fetched from ${url}: HTTP ${response.status}${why ? ` (${why})` : ''}.`);
  }
  const value = body?.value ?? body?.client_secret?.value;
  if (typeof value !== 'string' || !value) throw new Error(`The answer of ${url} holds no client secret (expected {"value": …}).`);
  return { kind: 'secret', value };
}

/** The http(s) origin of the server the settings point at. */
export function httpBase(settings: Settings, origin: string): string {
  const url = new URL(settings.endpoint || origin);
  url.protocol = url.protocol === 'wss:' || url.protocol === 'https:' ? 'https:' : 'http:';
  return url.origin;
}

/** Whether the avatar video comes from the server (WebRTC or WebSocket), not drawn by the page. */
export function serverVideo(settings: Settings): boolean {
  return settings.avatar.enabled && settings.avatar.output !== 'canvas';
}

/** The `avatar` part of `session.update` (`null`: no server video). `output` overrides the mode. */
export function avatarConfig(settings: Settings, output: OutputMode = settings.avatar.output): Record<string, unknown> | null {
  const a = settings.avatar;
  if (!a.enabled || output === 'canvas') return null;
  const preset = RESOLUTIONS[a.resolution];
  const video: Record<string, unknown> = {
    codec: 'h264',
    bitrate: 1_000_000,
    resolution: { width: preset.width, height: preset.height },
    background: a.imageUrl ? { image_url: a.imageUrl } : { color: a.background.toUpperCase() },
  };
  if (preset.crop) {
    const [l, t, r, b] = preset.crop;
    video.crop = { top_left: [l, t], bottom_right: [r, b] };
  }
  const base = { customized: false, video, output_protocol: output };
  if (a.kind === 'photo') {
    const url = /^(https?:|data:)/.test(a.portrait);
    return {
      ...base,
      type: 'photo-avatar',
      ...(url ? { photo_url: a.portrait } : { character: a.portrait }),
      scene: { ...a.scene },
    };
  }
  return { ...base, character: a.character, style: a.style };
}

/** The browser's tools, as `session.update` declares them. */
export const BROWSER_TOOLS = firstSession.tools;

/** Whether the user changed the instructions (the default text stands for "not changed"). */
export function customInstructions(settings: Settings): boolean {
  return settings.instructions.trim() !== '' && settings.instructions !== DEFAULTS.instructions;
}

/**
 * The `session` of the `session.update` the settings stand for. `agent`: the server runs an agent
 * (`/api/agent` answered), whose session (instructions, tools, turns, transcription) already is the
 * session: then only what the user changed from the defaults is sent, with what the page's own
 * transport needs (audio formats, word timings, animation, avatar, voice), so the agent's
 * instructions and tools stay, and with them the prompt the server computed ahead.
 */
/**
 * The longest silence the server's turn detection may wait before it ends a turn: silence
 * alone (`server_vad`), plus the end-of-utterance timeout (`azure_semantic_vad`), or the
 * timeout of an unfinished sentence at this eagerness (`semantic_vad`).
 */
export function longestTurnWaitMs(turn: Settings['turn']): number {
  if (turn.type === 'semantic_vad') return { high: 1000, auto: 2000, medium: 2000, low: 4000 }[turn.eagerness];
  if (turn.type === 'azure_semantic_vad') return turn.silenceMs + 1000;
  return turn.silenceMs;
}

export function sessionConfig(settings: Settings, output: OutputMode = settings.avatar.output, agent = false): Record<string, unknown> {
  const t = settings.turn;
  const outputs = [
    ...(settings.animation.visemes || output === 'canvas' ? ['viseme_id'] : []),
    ...(settings.animation.blendshapes ? ['blendshapes'] : []),
  ];
  const pitch = settings.pitch === 0 ? undefined : `${settings.pitch > 0 ? '+' : ''}${settings.pitch}%`;
  const turnDetection =
    settings.micMode === 'push-to-talk'
      ? null
      : t.type === 'semantic_vad'
        ? { type: t.type, eagerness: t.eagerness, interrupt_response: t.interrupt, remove_filler_words: t.ignoreFillers, create_response: true }
        : {
            type: t.type,
            threshold: t.threshold,
            prefix_padding_ms: t.prefixMs,
            silence_duration_ms: t.silenceMs,
            interrupt_response: t.interrupt,
            remove_filler_words: t.ignoreFillers,
            create_response: true,
          };
  // A model that streams its words while the user speaks (whisper-1 sends them once, at the end).
  const transcription = { model: 'gpt-4o-mini-transcribe', ...(settings.language ? { language: settings.language } : {}) };
  const transport = {
    voice: { name: settings.voice, type: 'azure-standard', rate: settings.rate, ...(pitch ? { pitch } : {}) },
    input_audio_format: 'pcm16',
    output_audio_format: 'pcm16',
    output_audio_timestamp_types: ['word'],
    animation: outputs.length ? { outputs } : null,
    avatar: avatarConfig(settings, output),
  };
  if (agent) {
    const d = DEFAULTS;
    const turnChanged = settings.micMode !== d.micMode || JSON.stringify(t) !== JSON.stringify(d.turn);
    return {
      ...(customInstructions(settings) ? { instructions: settings.instructions } : {}),
      ...transport,
      ...(settings.language !== d.language ? { input_audio_transcription: transcription } : {}),
      ...(turnChanged ? { turn_detection: turnDetection } : {}),
      ...(settings.browserToolsWithAgent ? { tools: BROWSER_TOOLS, tool_choice: 'auto' } : {}),
    };
  }
  return {
    modalities: ['text', 'audio'],
    instructions: settings.instructions,
    ...transport,
    input_audio_transcription: transcription,
    turn_detection: turnDetection,
    tools: settings.browserTools ? BROWSER_TOOLS : [],
    tool_choice: 'auto',
  };
}
