// Microphone capture worklet: the AudioContext's rate → 24 kHz PCM16 chunks, plus a level.
// Low-pass (two cascaded biquads below 12 kHz) then linear interpolation; posts 40 ms chunks
// (Int16Array, transferred) and the block level in dBFS about every 50 ms.

const WIRE_RATE_HZ = 24000;
const CHUNK_SAMPLES = 960; // 40 ms at 24 kHz
const CUTOFF_HZ = 10000;
const LEVEL_EVERY_S = 0.05;

function lowpassCoefficients(rate) {
  // RBJ cookbook low-pass, Q = 1/sqrt(2)
  const w = (2 * Math.PI * Math.min(CUTOFF_HZ, 0.45 * rate)) / rate;
  const alpha = Math.sin(w) / (2 * Math.SQRT1_2);
  const cos = Math.cos(w);
  const a0 = 1 + alpha;
  return {
    b0: (1 - cos) / 2 / a0, b1: (1 - cos) / a0, b2: (1 - cos) / 2 / a0,
    a1: (-2 * cos) / a0, a2: (1 - alpha) / a0,
  };
}

class Biquad {
  constructor(c) { this.c = c; this.x1 = this.x2 = this.y1 = this.y2 = 0; }
  step(x) {
    const c = this.c;
    const y = c.b0 * x + c.b1 * this.x1 + c.b2 * this.x2 - c.a1 * this.y1 - c.a2 * this.y2;
    this.x2 = this.x1; this.x1 = x; this.y2 = this.y1; this.y1 = y;
    return y;
  }
}

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / WIRE_RATE_HZ; // input samples per output sample
    const c = lowpassCoefficients(sampleRate);
    this.filters = this.step > 1 ? [new Biquad(c), new Biquad(c)] : [];
    this.pending = new Float32Array(0); // filtered input not consumed yet
    this.t = 0; // read position into `pending`, in input samples
    this.out = new Int16Array(CHUNK_SAMPLES);
    this.n = 0;
    this.energy = 0;
    this.counted = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    const x = new Float32Array(this.pending.length + channel.length);
    x.set(this.pending);
    for (let i = 0; i < channel.length; i++) {
      let v = channel[i];
      for (const f of this.filters) v = f.step(v);
      x[this.pending.length + i] = v;
      this.energy += channel[i] * channel[i];
    }
    while (this.t + 1 < x.length) {
      const i = Math.floor(this.t);
      const frac = this.t - i;
      const v = x[i] * (1 - frac) + x[i + 1] * frac;
      this.out[this.n++] = Math.max(-32768, Math.min(32767, Math.round(v * 32767)));
      if (this.n === CHUNK_SAMPLES) {
        this.port.postMessage({ type: "pcm", pcm: this.out }, [this.out.buffer]);
        this.out = new Int16Array(CHUNK_SAMPLES);
        this.n = 0;
      }
      this.t += this.step;
    }
    const used = Math.floor(this.t);
    this.pending = x.slice(used);
    this.t -= used;
    this.counted += channel.length;
    if (this.counted >= LEVEL_EVERY_S * sampleRate) {
      const rms = Math.sqrt(this.energy / this.counted);
      this.port.postMessage({ type: "level", dbfs: 20 * Math.log10(Math.max(rms, 1e-5)) });
      this.energy = 0;
      this.counted = 0;
    }
    return true;
  }
}

registerProcessor("icot-capture", CaptureProcessor);
