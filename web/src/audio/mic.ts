// The microphone: getUserMedia with echo cancellation and noise suppression, an AudioWorklet
// that taps its samples, and a Framer that turns them into 24 kHz PCM16 chunks.
import workletUrl from './mic-worklet.js?url';
import { Framer, level } from './framing';

/** A microphone that is open. */
export interface Mic {
  /** Stops the microphone and releases the device. */
  close(): void;
  /** The device's track (for a WebRTC offer's host candidates). */
  stream: MediaStream;
}

/** Why the microphone could not be opened, in words a user can act on. */
export function micError(e: unknown): string {
  const name = e instanceof DOMException ? e.name : '';
  if (name === 'NotAllowedError' || name === 'SecurityError') {
    return 'Microphone access was denied. Allow the microphone for this site in the browser (the icon in the address bar), or type your messages instead.';
  }
  if (name === 'NotFoundError' || name === 'OverconstrainedError') {
    return 'No microphone was found. Plug one in, or type your messages instead.';
  }
  if (name === 'NotReadableError') return 'The microphone is in use by another application.';
  if (typeof navigator !== 'undefined' && !navigator.mediaDevices) {
    return 'This page is not in a secure context, so the browser offers no microphone: open it over https:// or from localhost.';
  }
  return `The microphone could not be opened: ${e instanceof Error ? e.message : String(e)}`;
}

/**
 * Opens the microphone into `ctx`. Every complete chunk of `chunkMs` goes to `onChunk`, the
 * loudness of each batch (0–1) to `onLevel`.
 */
export async function openMic(
  ctx: AudioContext,
  chunkMs: number,
  onChunk: (pcm: Int16Array) => void,
  onLevel: (level: number) => void,
): Promise<Mic> {
  if (!navigator.mediaDevices?.getUserMedia) throw new DOMException('no mediaDevices', 'SecurityError');
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
  });
  let source: MediaStreamAudioSourceNode;
  let tap: AudioWorkletNode;
  try {
    await ctx.audioWorklet.addModule(workletUrl);
    source = ctx.createMediaStreamSource(stream);
    tap = new AudioWorkletNode(ctx, 'brazen-mic', { numberOfInputs: 1, numberOfOutputs: 0 });
  } catch (e) {
    stream.getTracks().forEach((t) => t.stop());
    throw e;
  }
  const framer = new Framer(ctx.sampleRate, chunkMs);
  tap.port.onmessage = (e: MessageEvent<Float32Array>) => {
    onLevel(level(e.data));
    for (const chunk of framer.push(e.data)) onChunk(chunk);
  };
  source.connect(tap);
  return {
    stream,
    close() {
      source.disconnect();
      tap.port.onmessage = null;
      tap.port.postMessage('stop');
      stream.getTracks().forEach((t) => t.stop());
    },
  };
}
