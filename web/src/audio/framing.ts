// Microphone audio as the protocol wants it: 24 kHz mono PCM16 in chunks of a set length,
// base64-encoded; and the reverse for the audio the server sends.

/** The protocol's sample rate. */
export const RATE = 24000;

/** Float samples (−1…1) as PCM16, clipped. */
export function floatToPcm16(samples: Float32Array): Int16Array {
  const out = new Int16Array(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const x = Math.max(-1, Math.min(1, samples[i]));
    out[i] = x < 0 ? Math.round(x * 0x8000) : Math.round(x * 0x7fff);
  }
  return out;
}

/** PCM16 as float samples (−1…1). */
export function pcm16ToFloat(pcm: Int16Array): Float32Array {
  const out = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = pcm[i] / 0x8000;
  return out;
}

/** PCM16 (little-endian, as the protocol sends it) in base64. */
export function pcm16ToBase64(pcm: Int16Array): string {
  const bytes = new Uint8Array(pcm.length * 2);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < pcm.length; i++) view.setInt16(i * 2, pcm[i], true);
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/** base64 little-endian PCM16 as samples; a stray odd byte is dropped. */
export function base64ToPcm16(b64: string): Int16Array {
  const text = atob(b64);
  const out = new Int16Array(text.length >> 1);
  for (let i = 0; i < out.length; i++) {
    const v = text.charCodeAt(2 * i) | (text.charCodeAt(2 * i + 1) << 8);
    out[i] = v >= 0x8000 ? v - 0x10000 : v;
  }
  return out;
}

/** The loudness of some samples on a 0–1 scale (RMS in dBFS, −60 dB → 0, 0 dB → 1). */
export function level(samples: Float32Array): number {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += samples[i] * samples[i];
  const db = 10 * Math.log10(sum / samples.length + 1e-12);
  return Math.max(0, Math.min(1, (db + 60) / 60));
}

/**
 * Turns audio at the microphone's rate into PCM16 chunks of `chunkMs` at 24 kHz. Resampling is
 * linear interpolation after a moving average as wide as the rate ratio (the low-pass that keeps
 * 48 → 24 kHz free of aliasing), carried across calls so chunk boundaries leave no seams.
 */
export class Framer {
  private readonly step: number;
  private readonly width: number;
  private readonly chunk: number;
  private pos = 0; // read position, in input samples, relative to `hist[0]`
  private hist: number[] = []; // filtered input not yet consumed
  private window: number[] = []; // the moving average's last inputs
  private sum = 0;
  private out: number[] = [];

  constructor(inputRate: number, chunkMs: number) {
    if (!(inputRate > 0)) throw new Error(`invalid input sample rate ${inputRate}`);
    if (!(chunkMs >= 10 && chunkMs <= 1000)) throw new Error(`invalid chunk length ${chunkMs} ms`);
    this.step = inputRate / RATE;
    this.width = Math.max(1, Math.round(this.step));
    this.chunk = Math.round((RATE * chunkMs) / 1000);
  }

  /** Samples per chunk (at 24 kHz). */
  get chunkSamples(): number {
    return this.chunk;
  }

  /** Takes input samples; returns every chunk now complete. */
  push(input: Float32Array): Int16Array[] {
    for (let i = 0; i < input.length; i++) {
      this.window.push(input[i]);
      this.sum += input[i];
      if (this.window.length > this.width) this.sum -= this.window.shift()!;
      this.hist.push(this.sum / this.window.length);
    }
    while (this.pos + 1 < this.hist.length) {
      const i = Math.floor(this.pos);
      const f = this.pos - i;
      this.out.push(this.hist[i] * (1 - f) + this.hist[i + 1] * f);
      this.pos += this.step;
    }
    const used = Math.min(Math.floor(this.pos), this.hist.length - 1);
    if (used > 0) {
      this.hist = this.hist.slice(used);
      this.pos -= used;
    }
    const chunks: Int16Array[] = [];
    while (this.out.length >= this.chunk) {
      chunks.push(floatToPcm16(Float32Array.from(this.out.splice(0, this.chunk))));
    }
    return chunks;
  }

  /** What is left (less than a chunk), or `null`; the framer starts afresh. */
  flush(): Int16Array | null {
    const rest = this.out.splice(0);
    this.hist = [];
    this.window = [];
    this.sum = 0;
    this.pos = 0;
    return rest.length ? floatToPcm16(Float32Array.from(rest)) : null;
  }
}
