// espeak-ng -> WAV -> 24 kHz mono PCM16 (own linear resampler, no dependencies).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const RATE = 24000;
export const SENTENCE = 'Hello brazen, please tell me the weather in Paris today.';

function parseWav(buf) {
  if (buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') throw new Error('not a WAV file');
  let off = 12; let fmt = null; let data = null;
  while (off + 8 <= buf.length) {
    const id = buf.toString('ascii', off, off + 4);
    let size = buf.readUInt32LE(off + 4);
    const body = off + 8;
    if (id === 'data' && (size === 0 || size === 0xffffffff || body + size > buf.length)) size = buf.length - body; // streamed WAV
    if (id === 'fmt ') fmt = { channels: buf.readUInt16LE(body + 2), rate: buf.readUInt32LE(body + 4), bits: buf.readUInt16LE(body + 14) };
    if (id === 'data') { data = buf.subarray(body, body + size); break; }
    off = body + size + (size & 1);
  }
  if (!fmt || !data || fmt.bits !== 16) throw new Error('expected a 16-bit PCM WAV');
  const n = Math.floor(data.length / 2 / fmt.channels);
  const mono = new Int16Array(n);
  for (let i = 0; i < n; i++) mono[i] = data.readInt16LE(i * 2 * fmt.channels);
  return { rate: fmt.rate, samples: mono };
}

export function resampleLinear(samples, srcRate, dstRate) {
  if (srcRate === dstRate) return Int16Array.from(samples);
  const nOut = Math.floor(samples.length * dstRate / srcRate);
  const out = new Int16Array(nOut);
  const step = srcRate / dstRate;
  for (let i = 0; i < nOut; i++) {
    const pos = i * step; const j = Math.floor(pos); const frac = pos - j;
    const a = samples[j]; const b = j + 1 < samples.length ? samples[j + 1] : a;
    out[i] = Math.max(-32768, Math.min(32767, Math.round(a + (b - a) * frac)));
  }
  return out;
}

const cache = new Map();
/** Speech as 24 kHz mono little-endian PCM16 bytes. */
export function speechPcm16(text = SENTENCE) {
  if (cache.has(text)) return cache.get(text);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brazen-espeak-'));
  const wavPath = path.join(dir, 'speech.wav');
  try {
    execFileSync('espeak-ng', ['-s', '160', '-w', wavPath, text], { stdio: 'ignore' });
    const { rate, samples } = parseWav(fs.readFileSync(wavPath));
    const out = resampleLinear(samples, rate, RATE);
    const bytes = Buffer.alloc(out.length * 2);
    for (let i = 0; i < out.length; i++) bytes.writeInt16LE(out[i], i * 2);
    cache.set(text, bytes);
    return bytes;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export const silence = (ms) => Buffer.alloc(2 * RATE * ms / 1000);
export function* chunks(pcm, ms = 100) {
  const size = 2 * RATE * ms / 1000;
  for (let i = 0; i < pcm.length; i += size) yield pcm.subarray(i, i + size);
}
export const durationS = (pcm) => pcm.length / 2 / RATE;
