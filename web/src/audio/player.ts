// Playback of the server's audio through one AudioContext: chunks are scheduled back to back
// behind a small jitter buffer, the position heard of each item is known (for
// `conversation.item.truncate`), and a barge-in silences everything at once.
import { RATE, pcm16ToFloat } from './framing';

/** What the player needs of an AudioContext (a fake one in the tests). */
export interface PlaybackContext {
  readonly currentTime: number;
  readonly destination: AudioNode;
  createBuffer(channels: number, length: number, sampleRate: number): AudioBuffer;
  createBufferSource(): AudioBufferSourceNode;
}

interface Segment {
  itemId: string;
  /** Context time the segment starts playing. */
  start: number;
  /** Where in the item's audio it starts, ms. */
  offsetMs: number;
  durationMs: number;
  source: AudioBufferSourceNode;
}

/** Where a flush stopped an item. */
export interface Stopped {
  itemId: string;
  /** How much of the item's audio was heard, ms. */
  playedMs: number;
}

/**
 * Plays PCM16 chunks at 24 kHz in order. A chunk that arrives after the previous one ran out (a
 * gap) starts `leadMs` from now, so short network jitter does not break up the speech.
 */
export class Player {
  private segments: Segment[] = [];
  private next = 0;
  private queuedMs = new Map<string, number>();
  /** Called when the audio starts and stops being heard. */
  onPlaying: (playing: boolean) => void = () => {};
  private wasPlaying = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly ctx: PlaybackContext,
    private readonly output: AudioNode = ctx.destination,
    private readonly leadMs = 60,
  ) {}

  /** Queues the next chunk of item `itemId`'s audio. */
  enqueue(itemId: string, pcm: Int16Array): void {
    if (pcm.length === 0) return;
    const now = this.ctx.currentTime;
    if (this.next < now + 0.005) this.next = now + this.leadMs / 1000;
    const buffer = this.ctx.createBuffer(1, pcm.length, RATE);
    buffer.copyToChannel(pcm16ToFloat(pcm) as Float32Array<ArrayBuffer>, 0);
    const source = this.ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(this.output);
    source.start(this.next);
    const durationMs = (pcm.length * 1000) / RATE;
    const offsetMs = this.queuedMs.get(itemId) ?? 0;
    this.queuedMs.set(itemId, offsetMs + durationMs);
    this.segments.push({ itemId, start: this.next, offsetMs, durationMs, source });
    this.next += durationMs / 1000;
    this.prune(now);
    this.watch();
  }

  /** Whether audio is being heard or waiting to be. */
  get playing(): boolean {
    return this.next > this.ctx.currentTime;
  }

  /** How much of item `itemId`'s audio has been heard, ms. */
  playedMs(itemId: string): number {
    const now = this.ctx.currentTime;
    let played = 0;
    for (const s of this.segments) {
      if (s.itemId !== itemId || now <= s.start) continue;
      played = Math.max(played, s.offsetMs + Math.min(s.durationMs, (now - s.start) * 1000));
    }
    return Math.floor(played);
  }

  /** The item being heard now, or (between chunks) the next one to be heard; `null`: none. */
  current(): string | null {
    const now = this.ctx.currentTime;
    const s = this.segments.find((seg) => now >= seg.start && now < seg.start + seg.durationMs / 1000);
    if (s) return s.itemId;
    const next = this.segments.filter((seg) => seg.start > now).sort((a, b) => a.start - b.start)[0];
    return next?.itemId ?? null;
  }

  /**
   * Silences everything now; says where the item being heard stopped: the one playing or about to
   * be, or else `arriving` (a reply still being generated, run dry between its chunks) when some of
   * it was heard. `null`: nothing was.
   */
  flush(arriving: string | null = null): Stopped | null {
    const itemId = this.playing ? this.current() : arriving !== null && this.playedMs(arriving) > 0 ? arriving : null;
    const stopped = itemId ? { itemId, playedMs: this.playedMs(itemId) } : null;
    for (const s of this.segments) {
      try {
        s.source.stop();
      } catch {
        // never started: nothing to stop
      }
      s.source.disconnect();
    }
    this.segments = [];
    this.next = 0;
    this.report();
    return stopped;
  }

  private prune(now: number): void {
    // Keep what has not finished, and the last finished segment of each item for playedMs.
    this.segments = this.segments.filter((s, i, all) => {
      const ended = s.start + s.durationMs / 1000 < now;
      return !ended || !all.slice(i + 1).some((later) => later.itemId === s.itemId && later.start + later.durationMs / 1000 < now);
    });
  }

  private watch(): void {
    this.report();
    if (this.timer) clearTimeout(this.timer);
    const left = (this.next - this.ctx.currentTime) * 1000;
    if (left > 0) this.timer = setTimeout(() => this.report(), left + 20);
  }

  private report(): void {
    const playing = this.playing;
    if (playing !== this.wasPlaying) {
      this.wasPlaying = playing;
      this.onPlaying(playing);
    }
  }
}
