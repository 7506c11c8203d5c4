// The microphone's AudioWorklet: hands the main thread its samples in batches of about 20 ms
// (the render quantum is 128 samples), copied, as Float32Arrays, until told to 'stop'.
class MicTap extends AudioWorkletProcessor {
  constructor() {
    super();
    this.batch = new Float32Array(Math.max(128, Math.round(sampleRate / 50)));
    this.filled = 0;
    this.stopped = false;
    this.port.onmessage = (e) => {
      if (e.data === 'stop') this.stopped = true;
    };
  }

  process(inputs) {
    if (this.stopped) return false; // the microphone was closed: let the node go
    const channel = inputs[0] && inputs[0][0];
    if (channel) {
      let i = 0;
      while (i < channel.length) {
        const n = Math.min(channel.length - i, this.batch.length - this.filled);
        this.batch.set(channel.subarray(i, i + n), this.filled);
        this.filled += n;
        i += n;
        if (this.filled === this.batch.length) {
          this.port.postMessage(this.batch.slice());
          this.filled = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor('brazen-mic', MicTap);
