// Playback worklet: 24 kHz PCM16 reply chunks → the AudioContext's rate, with a jitter buffer.
// Playback starts once JITTER_S of audio is queued (or the reply has ended) and pauses to
// refill on an underrun. Messages in: push {pcm: Int16Array}, end (the reply is complete),
// clear (barge-in: drop everything queued), capture {on}. Out: played {samples, audio?}
// (24 kHz samples played so far; with capture on, the samples just played), cleared {samples,
// dropped},
// drained (nothing left to play after an end).

const WIRE_RATE_HZ = 24000;
const JITTER_S = 0.06;
const REPORT_EVERY_BLOCKS = 8; // ≈ 21 ms at 48 kHz

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = WIRE_RATE_HZ / sampleRate; // 24 kHz samples per output sample
    this.buf = new Float32Array(WIRE_RATE_HZ * 4);
    this.len = 0; // samples in buf
    this.read = 0; // fractional read position in buf
    this.played = 0; // 24 kHz samples consumed since the page loaded
    this.playing = false;
    this.ended = false;
    this.capture = false;
    this.captured = [];
    this.blocks = 0;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(msg) {
    if (msg.type === "push") {
      this.append(msg.pcm);
      this.ended = false;
    } else if (msg.type === "end") {
      this.ended = true;
    } else if (msg.type === "clear") {
      const dropped = Math.max(0, this.len - Math.floor(this.read));
      this.len = 0;
      this.read = 0;
      this.playing = false;
      this.ended = false;
      this.port.postMessage({ type: "cleared", samples: this.played, dropped });
    } else if (msg.type === "capture") {
      this.capture = msg.on;
    }
  }

  append(pcm) {
    const keep = Math.floor(this.read);
    if (this.len - keep + pcm.length > this.buf.length) {
      const bigger = new Float32Array(Math.max(this.buf.length * 2, this.len - keep + pcm.length));
      bigger.set(this.buf.subarray(keep, this.len));
      this.buf = bigger;
    } else {
      this.buf.copyWithin(0, keep, this.len);
    }
    this.len -= keep;
    this.read -= keep;
    for (let i = 0; i < pcm.length; i++) this.buf[this.len + i] = pcm[i] / 32768;
    this.len += pcm.length;
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    const queued = this.len - this.read;
    if (!this.playing && (queued >= JITTER_S * WIRE_RATE_HZ || (this.ended && queued > 0))) {
      this.playing = true;
    }
    const before = Math.floor(this.read);
    for (let i = 0; i < out.length; i++) {
      const j = Math.floor(this.read);
      if (!this.playing || j + 1 >= this.len) {
        out[i] = 0;
        continue;
      }
      const frac = this.read - j;
      out[i] = this.buf[j] * (1 - frac) + this.buf[j + 1] * frac;
      this.read += this.step;
    }
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);
    const consumed = Math.floor(this.read) - before;
    if (consumed > 0 && this.capture) this.captured.push(this.buf.slice(before, before + consumed));
    this.played += consumed;
    if (this.playing && Math.floor(this.read) + 1 >= this.len) {
      if (this.ended) {
        this.played += this.len - Math.floor(this.read); // the last sample has no neighbour
        this.len = 0;
        this.read = 0;
        this.ended = false;
        this.flush();
        this.port.postMessage({ type: "drained" });
      }
      this.playing = false; // underrun: wait for the jitter buffer to refill
    }
    if (++this.blocks % REPORT_EVERY_BLOCKS === 0) this.flush();
    return true;
  }

  flush() {
    const msg = { type: "played", samples: this.played };
    if (this.captured.length) {
      msg.audio = this.captured;
      this.captured = [];
    }
    this.port.postMessage(msg);
  }
}

registerProcessor("icot-playback", PlaybackProcessor);
