"""Synthesize speech with espeak-ng and turn it into 24 kHz mono PCM16 (pure Python resampler)."""
from __future__ import annotations

import array
import functools
import os
import subprocess
import sys
import tempfile
import wave

RATE = 24000
SENTENCE = "Hello brazen, please tell me the weather in Paris today."


def _resample_linear(samples: array.array, src_rate: int, dst_rate: int) -> array.array:
    if src_rate == dst_rate:
        return array.array("h", samples)
    n_out = int(len(samples) * dst_rate / src_rate)
    out = array.array("h", bytes(2 * n_out))
    step = src_rate / dst_rate
    last = len(samples) - 1
    for i in range(n_out):
        pos = i * step
        j = int(pos)
        frac = pos - j
        a = samples[j]
        b = samples[j + 1] if j < last else a
        v = int(round(a + (b - a) * frac))
        out[i] = max(-32768, min(32767, v))
    return out


@functools.lru_cache(maxsize=4)
def speech_pcm16(text: str = SENTENCE) -> bytes:
    """espeak-ng → WAV (22.05 kHz) → 24 kHz mono little-endian PCM16 bytes."""
    with tempfile.TemporaryDirectory() as d:
        wav_path = os.path.join(d, "speech.wav")
        subprocess.run(["espeak-ng", "-s", "160", "-w", wav_path, text], check=True, capture_output=True)
        with wave.open(wav_path, "rb") as w:
            assert w.getsampwidth() == 2, "espeak-ng should write 16-bit WAV"
            ch, rate, frames = w.getnchannels(), w.getframerate(), w.readframes(w.getnframes())
    samples = array.array("h")
    samples.frombytes(frames)
    if sys.byteorder == "big":
        samples.byteswap()
    if ch > 1:
        samples = array.array("h", samples[::ch])
    out = _resample_linear(samples, rate, RATE)
    if sys.byteorder == "big":
        out.byteswap()
    return out.tobytes()


def silence(ms: int) -> bytes:
    return bytes(2 * RATE * ms // 1000)


def chunks(pcm: bytes, ms: int = 100):
    size = 2 * RATE * ms // 1000
    for i in range(0, len(pcm), size):
        yield pcm[i : i + size]


def duration_s(pcm: bytes) -> float:
    return len(pcm) / 2 / RATE
