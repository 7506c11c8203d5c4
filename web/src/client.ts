// The Realtime WebSocket: sends and receives JSON events, and keeps a log of both directions
// for the developer panel with the audio and video payloads elided.
import type { ServerEvent } from './conversation';

/** One line of the event log. */
export interface LogLine {
  /** Running number. */
  n: number;
  dir: 'in' | 'out';
  /** Client clock, ms. */
  at: number;
  type: string;
  /** The event as JSON, payloads elided. */
  json: string;
}

const PAYLOAD_KEYS = new Set(['audio', 'delta', 'client_sdp', 'server_sdp']);
const PAYLOAD_TYPES = /(audio|video)\.delta$|^input_audio_buffer\.append$|^session\.avatar\./;

/** The event as the log shows it: base64 payloads replaced by their size. */
export function elide(ev: ServerEvent): string {
  const payloads = PAYLOAD_TYPES.test(ev.type);
  return JSON.stringify(ev, (key, value) =>
    payloads && PAYLOAD_KEYS.has(key) && typeof value === 'string' && value.length > 64
      ? `<${Math.floor((value.length * 3) / 4)} bytes>`
      : value,
  );
}

/** Why the connection failed, in words, given what `/health` says (`null`: unreachable). */
export function connectError(endpoint: string, health: { auth?: boolean } | null, hasKey: boolean): string {
  if (!health) return `The server at ${endpoint} cannot be reached. Is brazen running there (brazen serve), and is the endpoint in the settings right?`;
  if (health.auth) {
    return hasKey
      ? 'The server refused the API key. Check the key in the settings.'
      : 'The server needs an API key. Enter it in the settings.';
  }
  return `The server at ${endpoint} refused the connection (it may be at its session limit); try again.`;
}

/** A connected Realtime WebSocket. */
export class RealtimeClient {
  private ws: WebSocket;
  private n = 0;
  /** Every event received. */
  onEvent: (ev: ServerEvent) => void = () => {};
  /** Every log line (both directions). */
  onLog: (line: LogLine) => void = () => {};
  /** The socket closed (`clean`: we closed it). */
  onClose: (code: number, reason: string) => void = () => {};

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.onmessage = (m) => {
      let ev: ServerEvent;
      try {
        ev = JSON.parse(typeof m.data === 'string' ? m.data : '');
      } catch {
        return;
      }
      if (!ev || typeof ev.type !== 'string') return;
      this.log('in', ev);
      this.onEvent(ev);
    };
    ws.onclose = (e) => this.onClose(e.code, e.reason);
  }

  /**
   * Opens the socket, presenting `secret` (a client secret or key) as the
   * `openai-insecure-api-key.` subprotocol browsers use; rejects if it does not open.
   */
  static open(url: string, secret: string | null = null, timeoutMs = 10000): Promise<RealtimeClient> {
    return new Promise((resolve, reject) => {
      const ws = secret ? new WebSocket(url, ['realtime', `openai-insecure-api-key.${secret}`]) : new WebSocket(url);
      const timer = setTimeout(() => {
        ws.close();
        reject(new Error('timeout'));
      }, timeoutMs);
      ws.onopen = () => {
        clearTimeout(timer);
        resolve(new RealtimeClient(ws));
      };
      ws.onerror = () => {
        clearTimeout(timer);
        reject(new Error('refused'));
      };
    });
  }

  /** Sends one event. */
  send(ev: ServerEvent): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.log('out', ev);
    this.ws.send(JSON.stringify(ev));
  }

  /** Closes the socket. */
  close(): void {
    this.ws.onclose = null;
    this.ws.close(1000);
  }

  private log(dir: 'in' | 'out', ev: ServerEvent): void {
    this.onLog({ n: ++this.n, dir, at: performance.now(), type: ev.type, json: elide(ev) });
  }
}
