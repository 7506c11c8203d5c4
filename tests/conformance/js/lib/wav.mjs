// A WAV file of espeak-ng speech followed by silence, for Chromium's fake microphone
// (`--use-file-for-fake-audio-capture`, which plays the file in a loop).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RATE, speechPcm16 } from './audio.mjs';

/**
 * Writes `leadMs` of silence, `text` spoken, then `silenceMs` of silence as a 24 kHz mono 16-bit
 * WAV; returns its path and how long the speech is.
 */
export function speechWav(text, silenceMs, leadMs = 0) {
  const speech = speechPcm16(text);
  const silence = (ms) => Buffer.alloc(Math.round((RATE * ms) / 1000) * 2);
  const data = Buffer.concat([silence(leadMs), speech, silence(silenceMs)]);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0);
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVE', 8);
  header.write('fmt ', 12);
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(RATE, 24);
  header.writeUInt32LE(RATE * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36);
  header.writeUInt32LE(data.length, 40);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'brazen-wav-'));
  // Chromium reads the file for as long as the test runs; it goes when the test process ends.
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'question.wav');
  fs.writeFileSync(file, Buffer.concat([header, data]));
  return { file, speechMs: (speech.length / 2 / RATE) * 1000 };
}
