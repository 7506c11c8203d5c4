// The avatar over the WebSocket: `response.video.delta` carries one fragmented MP4 stream
// (H.264 + AAC), appended in order to a MediaSource the <video> plays.

/** The stream's type, as brazen (and the Voice Live samples) give it to MediaSource. */
export const MSE_MIME = 'video/mp4; codecs="avc1.42E01E, mp4a.40.2"';

/** Plays the fMP4 stream in a <video>. */
export class MsePlayer {
  private buffer: SourceBuffer | null = null;
  private pending: Uint8Array[] = [];
  private readonly source = new MediaSource();
  private readonly url: string;
  /** Called once when the stream cannot be played (later deltas are then dropped). */
  onError: (why: string) => void = () => {};
  private failed = false;

  constructor(private readonly video: HTMLVideoElement) {
    if (!MediaSource.isTypeSupported(MSE_MIME)) throw new Error(`this browser cannot play ${MSE_MIME}`);
    this.url = URL.createObjectURL(this.source);
    video.srcObject = null;
    video.src = this.url;
    this.source.addEventListener(
      'sourceopen',
      () => {
        this.buffer = this.source.addSourceBuffer(MSE_MIME);
        this.buffer.mode = 'segments';
        this.buffer.addEventListener('updateend', () => this.pump());
        this.buffer.addEventListener('error', () => this.fail('the video stream could not be decoded'));
        this.pump();
      },
      { once: true },
    );
  }

  /** Appends one `response.video.delta` (base64). */
  append(b64: string): void {
    if (this.failed) return;
    const text = atob(b64);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    this.pending.push(bytes);
    this.pump();
  }

  /** Stops playing and frees the stream. */
  close(): void {
    this.pending = [];
    this.video.removeAttribute('src');
    this.video.load();
    URL.revokeObjectURL(this.url);
  }

  private pump(): void {
    const b = this.buffer;
    if (!b || b.updating || this.pending.length === 0) return;
    try {
      // Keep about 30 s behind the play head; older video is never shown again.
      const t = this.video.currentTime;
      if (b.buffered.length && t - b.buffered.start(0) > 60) {
        b.remove(0, t - 30);
        return;
      }
      b.appendBuffer(this.pending.shift()! as Uint8Array<ArrayBuffer>);
      // Live: stay near the newest frame if playback fell behind (a background tab).
      if (b.buffered.length && b.buffered.end(b.buffered.length - 1) - t > 1.5) {
        this.video.currentTime = b.buffered.end(b.buffered.length - 1) - 0.2;
      }
    } catch (e) {
      this.fail(`the video stream stopped: ${e instanceof Error ? e.message : e}`);
    }
  }

  private fail(why: string): void {
    if (this.failed) return;
    this.failed = true;
    this.pending = [];
    this.onError(why);
  }
}
