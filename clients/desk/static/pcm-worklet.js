// Microphone -> 16 kHz 16-bit PCM frames of 100 ms (interleaved when two channels), posted
// to the page, which sends them on the WebSocket. Resamples when the audio context does
// not run at 16 kHz (averaging over each output sample's span: a box low-pass, enough
// for speech recognition, cheap on a low-end PC).
const TARGET_RATE = 16000;
const FRAME = 1600; // samples per channel in 100 ms

class PcmFrames extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.channels = (options.processorOptions && options.processorOptions.channels) || 1;
    this.step = sampleRate / TARGET_RATE; // input samples per output sample
    this.acc = new Float64Array(this.channels);
    this.count = 0;
    this.phase = 0;
    this.frame = new Int16Array(FRAME * this.channels);
    this.filled = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const n = input[0].length;
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < this.channels; c++) {
        const channel = input[Math.min(c, input.length - 1)];
        this.acc[c] += channel[i];
      }
      this.count += 1;
      this.phase += 1;
      if (this.phase >= this.step) {
        this.phase -= this.step;
        for (let c = 0; c < this.channels; c++) {
          const v = Math.max(-1, Math.min(1, this.acc[c] / this.count));
          this.frame[this.filled * this.channels + c] = v < 0 ? v * 0x8000 : v * 0x7fff;
          this.acc[c] = 0;
        }
        this.count = 0;
        this.filled += 1;
        if (this.filled === FRAME) {
          this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
          this.frame = new Int16Array(FRAME * this.channels);
          this.filled = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor("pcm-frames", PcmFrames);
