// The conversation as the page shows it, built from the server's events by a pure reducer:
// the transcript (the user's words and the assistant's, streaming, with word timings), tool
// calls, errors, and per turn the moments on the client clock that the latency panel shows.

/** A server event (or one of the page's own, `client.*`). */
export interface ServerEvent {
  type: string;
  [key: string]: any;
}

/** A word of the assistant's audio and when it is heard, ms into the item's audio. */
export interface Word {
  text: string;
  startMs: number;
  durationMs: number;
}

/** One line of the transcript. */
export interface Entry {
  /** The item's id (errors and notices get their own). */
  id: string;
  kind: 'user' | 'assistant' | 'tool' | 'error' | 'notice';
  text: string;
  /** `streaming` until its last delta; `cancelled` when the response was stopped. */
  status: 'streaming' | 'done' | 'cancelled';
  words: Word[];
  /** A tool call: its name, arguments as they stream, and the answer. */
  tool?: { name: string; callId: string; arguments: string; output?: string };
  /** Where the audio was cut by a barge-in, ms. */
  truncatedAtMs?: number;
}

/** The moments of one turn on the client clock (`performance.now()`, ms). */
export interface TurnTiming {
  /** The user stopped speaking (`speech_stopped`) or sent the text / released the talk key. */
  endOfSpeech?: number;
  /** The user's transcript is complete. */
  transcript?: number;
  /** The reply's first text (its first transcript, text or tool-arguments delta). */
  firstText?: number;
  /** The reply's first audio (a delta, or the avatar's speaking edge when audio is in the video). */
  firstAudio?: number;
  /** The first avatar frame shown after the reply's first audio. */
  firstFrame?: number;
}

/** What the reducer keeps. */
export interface ConversationState {
  entries: Entry[];
  turns: TurnTiming[];
  /** The response in progress. */
  responseId: string | null;
  /** The user is speaking (server VAD). */
  userSpeaking: boolean;
}

/** An empty conversation. */
export const EMPTY: ConversationState = { entries: [], turns: [], responseId: null, userSpeaking: false };

/** What a protocol error means to a person, with the server's own words kept. */
export function humanError(error: { code?: string; message?: string; param?: string } | undefined): string {
  const message = error?.message ?? 'The server reported an error.';
  const param = error?.param ?? '';
  if (param.startsWith('session.avatar')) return `The avatar could not start: ${message}`;
  if (param.startsWith('session.voice')) return `The voice setting was refused: ${message}`;
  if (error?.code === 'unauthorized') return 'The API key is not valid. Check it in the settings.';
  return message;
}

function upsert(entries: Entry[], id: string, kind: Entry['kind'], change: (e: Entry) => Entry): Entry[] {
  const i = entries.findIndex((e) => e.id === id);
  if (i < 0) return [...entries, change({ id, kind, text: '', status: 'streaming', words: [] })];
  const copy = entries.slice();
  copy[i] = change(copy[i]);
  return copy;
}

function mark(state: ConversationState, key: keyof TurnTiming, at: number, overwrite = false): TurnTiming[] {
  const turns = state.turns.slice();
  const last = turns.length ? { ...turns[turns.length - 1] } : {};
  if (overwrite || last[key] === undefined) last[key] = at;
  if (turns.length) turns[turns.length - 1] = last;
  else turns.push(last);
  return turns;
}

/** Starts a new turn's timing (at the end of the user's speech or a typed message). */
function newTurn(state: ConversationState, at: number): TurnTiming[] {
  return [...state.turns, { endOfSpeech: at }].slice(-50);
}

/** The state after event `ev`, seen at `at` (client clock, ms). */
export function reduce(state: ConversationState, ev: ServerEvent, at: number): ConversationState {
  switch (ev.type) {
    case 'input_audio_buffer.speech_started':
      return {
        ...state,
        userSpeaking: true,
        entries: ev.item_id ? upsert(state.entries, ev.item_id, 'user', (e) => e) : state.entries,
      };
    case 'input_audio_buffer.speech_stopped':
      return { ...state, userSpeaking: false, turns: newTurn(state, at) };
    case 'client.turn_sent':
      // A typed message or a released talk key: the turn ends now.
      return { ...state, turns: newTurn(state, at) };
    case 'conversation.item.input_audio_transcription.delta':
      return { ...state, entries: upsert(state.entries, ev.item_id, 'user', (e) => ({ ...e, text: e.text + (ev.delta ?? '') })) };
    case 'conversation.item.input_audio_transcription.completed':
      return {
        ...state,
        turns: mark(state, 'transcript', at),
        entries: upsert(state.entries, ev.item_id, 'user', (e) => ({ ...e, text: (ev.transcript ?? '').trim(), status: 'done' })),
      };
    case 'conversation.item.input_audio_transcription.failed':
      return {
        ...state,
        entries: upsert(state.entries, ev.item_id, 'user', (e) => ({
          ...e,
          text: `(not understood: ${ev.error?.message ?? 'transcription failed'})`,
          status: 'done',
        })),
      };
    case 'conversation.item.created':
    case 'conversation.item.added': {
      const item = ev.item ?? {};
      if (item.role === 'user' && item.type === 'message') {
        const typed = (item.content ?? []).find((c: any) => c.type === 'input_text');
        return {
          ...state,
          entries: upsert(state.entries, item.id, 'user', (e) => (typed ? { ...e, text: typed.text, status: 'done' } : e)),
        };
      }
      // A tool the server runs (an agent's) is a call item, then its output item.
      if (item.type === 'function_call' && item.id) {
        return {
          ...state,
          entries: upsert(state.entries, item.id, 'tool', (e) => ({
            ...e,
            status: 'done',
            tool: { ...e.tool, name: item.name ?? e.tool?.name ?? '', callId: item.call_id ?? e.tool?.callId ?? '', arguments: item.arguments ?? e.tool?.arguments ?? '' },
          })),
        };
      }
      if (item.type === 'function_call_output' && typeof item.output === 'string') {
        return {
          ...state,
          entries: state.entries.map((e) => (e.tool && e.tool.callId === item.call_id ? { ...e, tool: { ...e.tool, output: item.output } } : e)),
        };
      }
      return state;
    }
    case 'response.created':
      return { ...state, responseId: ev.response?.id ?? null };
    case 'response.output_item.added': {
      const item = ev.item ?? {};
      if (item.type === 'function_call') {
        return {
          ...state,
          entries: upsert(state.entries, item.id, 'tool', (e) => ({
            ...e,
            tool: { name: item.name ?? '', callId: item.call_id ?? '', arguments: item.arguments ?? '' },
          })),
        };
      }
      return { ...state, entries: upsert(state.entries, item.id, 'assistant', (e) => e) };
    }
    case 'response.audio_transcript.delta':
    case 'response.output_audio_transcript.delta':
    case 'response.text.delta':
    case 'response.output_text.delta':
      return {
        ...state,
        turns: mark(state, 'firstText', at),
        entries: upsert(state.entries, ev.item_id, 'assistant', (e) => ({ ...e, text: e.text + (ev.delta ?? '') })),
      };
    case 'response.audio_transcript.done':
    case 'response.output_audio_transcript.done':
    case 'response.text.done':
    case 'response.output_text.done': {
      const full = ev.transcript ?? ev.text;
      return {
        ...state,
        entries: upsert(state.entries, ev.item_id, 'assistant', (e) => ({
          ...e,
          text: typeof full === 'string' && e.truncatedAtMs === undefined ? full : e.text,
        })),
      };
    }
    case 'response.audio.delta':
    case 'response.output_audio.delta':
    case 'client.avatar_speaking':
      return { ...state, turns: mark(state, 'firstAudio', at) };
    case 'client.avatar_frame': {
      const last = state.turns[state.turns.length - 1];
      if (!last || last.firstAudio === undefined || last.firstFrame !== undefined || at < last.firstAudio) return state;
      return { ...state, turns: mark(state, 'firstFrame', at) };
    }
    case 'response.audio_timestamp.delta':
      return {
        ...state,
        entries: upsert(state.entries, ev.item_id, 'assistant', (e) => ({
          ...e,
          words: [...e.words, { text: ev.text ?? '', startMs: ev.audio_offset_ms ?? 0, durationMs: ev.audio_duration_ms ?? 0 }],
        })),
      };
    case 'response.function_call_arguments.delta':
      return {
        ...state,
        turns: mark(state, 'firstText', at),
        entries: upsert(state.entries, ev.item_id, 'tool', (e) => ({
          ...e,
          tool: { name: e.tool?.name ?? '', callId: e.tool?.callId ?? ev.call_id ?? '', arguments: (e.tool?.arguments ?? '') + (ev.delta ?? '') },
        })),
      };
    case 'response.function_call_arguments.done':
      return {
        ...state,
        turns: mark(state, 'firstText', at),
        entries: upsert(state.entries, ev.item_id, 'tool', (e) => ({
          ...e,
          status: 'done',
          tool: { name: ev.name ?? e.tool?.name ?? '', callId: ev.call_id ?? e.tool?.callId ?? '', arguments: ev.arguments ?? e.tool?.arguments ?? '' },
        })),
      };
    case 'client.tool_output':
      return {
        ...state,
        entries: state.entries.map((e) => (e.tool && e.tool.callId === ev.call_id ? { ...e, tool: { ...e.tool, output: ev.output } } : e)),
      };
    case 'response.output_item.done': {
      const id = ev.item?.id;
      if (!id) return state;
      // `incomplete`: the response was cancelled (a barge-in, `response.cancel`) or cut short.
      const status = ev.item?.status === 'incomplete' ? 'cancelled' : 'done';
      return { ...state, entries: state.entries.map((e) => (e.id === id && e.status === 'streaming' ? { ...e, status } : e)) };
    }
    case 'response.done': {
      const cancelled = ev.response?.status === 'cancelled';
      const ids = new Set<string>((ev.response?.output ?? []).map((i: any) => i.id));
      return {
        ...state,
        responseId: null,
        entries: state.entries.map((e) =>
          ids.has(e.id) && e.status === 'streaming' ? { ...e, status: cancelled ? 'cancelled' : 'done' } : e,
        ),
      };
    }
    case 'conversation.item.truncated':
      return {
        ...state,
        entries: state.entries.map((e) => {
          if (e.id !== ev.item_id) return e;
          const heard = e.words.filter((w) => w.startMs < ev.audio_end_ms);
          const text = e.words.length ? heard.map((w) => w.text).join(' ') : e.text;
          return { ...e, truncatedAtMs: ev.audio_end_ms, status: 'cancelled', text, words: heard };
        }),
      };
    case 'error':
      return {
        ...state,
        entries: [
          ...state.entries,
          { id: `error-${state.entries.length}-${at}`, kind: 'error', text: humanError(ev.error), status: 'done', words: [] },
        ],
      };
    case 'client.notice':
      return {
        ...state,
        entries: [...state.entries, { id: `notice-${state.entries.length}-${at}`, kind: 'notice', text: ev.text, status: 'done', words: [] }],
      };
    default:
      return state;
  }
}

/** The index of the word being heard at `playedMs` (−1: none yet). */
export function wordAt(words: Word[], playedMs: number): number {
  let found = -1;
  for (let i = 0; i < words.length; i++) if (words[i].startMs <= playedMs) found = i;
  return found;
}

/** A turn's stages as durations from the end of speech, ms (`undefined`: not reached). */
export function stages(t: TurnTiming): { label: string; ms: number | undefined }[] {
  const from = (x: number | undefined) => (x === undefined || t.endOfSpeech === undefined ? undefined : Math.round(x - t.endOfSpeech));
  return [
    { label: 'transcript', ms: from(t.transcript) },
    { label: 'first text', ms: from(t.firstText) },
    { label: 'first audio', ms: from(t.firstAudio) },
    { label: 'first avatar frame', ms: from(t.firstFrame) },
  ];
}
