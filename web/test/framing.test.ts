import { describe, expect, it } from 'vitest';
import { Framer, RATE, base64ToPcm16, floatToPcm16, level, pcm16ToBase64 } from '../src/audio/framing';

const tone = (rate: number, hz: number, seconds: number) =>
  Float32Array.from({ length: Math.round(rate * seconds) }, (_, i) => 0.5 * Math.sin((2 * Math.PI * hz * i) / rate));

describe('audio framing', () => {
  it('clips and scales float samples to PCM16', () => {
    expect(Array.from(floatToPcm16(Float32Array.from([0, 1, -1, 2, -2, 0.5])))).toEqual([0, 32767, -32768, 32767, -32768, 16384]);
  });

  it('round-trips PCM16 through little-endian base64', () => {
    const pcm = Int16Array.from([0, 1, -1, 32767, -32768, 258]);
    const b64 = pcm16ToBase64(pcm);
    expect(atob(b64).charCodeAt(10)).toBe(2); // 258 = 0x0102, low byte first
    expect(Array.from(base64ToPcm16(b64))).toEqual(Array.from(pcm));
  });

  it('cuts 48 kHz input into 24 kHz chunks of the asked length, across uneven batches', () => {
    const framer = new Framer(48000, 40);
    expect(framer.chunkSamples).toBe(960);
    const input = tone(48000, 440, 1);
    const chunks: Int16Array[] = [];
    for (let i = 0; i < input.length; i += 333) chunks.push(...framer.push(input.subarray(i, i + 333)));
    expect(chunks.every((c) => c.length === 960)).toBe(true);
    const total = chunks.length * 960 + (framer.flush()?.length ?? 0);
    expect(Math.abs(total - RATE)).toBeLessThanOrEqual(2);
  });

  it('keeps a tone at its frequency and level when resampling (no seams between batches)', () => {
    for (const rate of [48000, 44100, 16000, 24000]) {
      const framer = new Framer(rate, 20);
      const input = tone(rate, 300, 0.5);
      const out: number[] = [];
      for (let i = 0; i < input.length; i += 128) for (const c of framer.push(input.subarray(i, i + 128))) out.push(...c);
      // Zero crossings of a 300 Hz tone over the output's length: 2 per cycle.
      const seconds = out.length / RATE;
      let crossings = 0;
      for (let i = 1; i < out.length; i++) if ((out[i - 1] < 0) !== (out[i] < 0)) crossings++;
      expect(crossings / seconds / 2).toBeGreaterThan(290);
      expect(crossings / seconds / 2).toBeLessThan(310);
      const peak = Math.max(...out.slice(100).map(Math.abs)) / 32768;
      expect(peak).toBeGreaterThan(0.45);
      expect(peak).toBeLessThan(0.52);
      // Smooth: no sample-to-sample jump bigger than the tone's own steepest step allows.
      const steepest = (0.5 * 2 * Math.PI * 300) / RATE;
      for (let i = 1; i < out.length; i++) expect(Math.abs(out[i] - out[i - 1]) / 32768).toBeLessThan(steepest * 1.5);
    }
  });

  it('refuses impossible rates and chunk lengths', () => {
    expect(() => new Framer(0, 40)).toThrow(/sample rate/);
    expect(() => new Framer(48000, 5)).toThrow(/chunk length/);
  });

  it('measures loudness on a 0–1 scale', () => {
    expect(level(new Float32Array(480))).toBe(0);
    expect(level(Float32Array.from({ length: 480 }, () => 1))).toBeCloseTo(1, 5);
    const quiet = level(tone(24000, 440, 0.02).map((x) => x / 100));
    const loud = level(tone(24000, 440, 0.02));
    expect(loud).toBeGreaterThan(quiet);
  });
});
