// Audio in and out for the page: the microphone through the capture worklet (24 kHz PCM16
// chunks and a level), and the reply through the playback worklet (jitter buffer, barge-in).
// Knows nothing of the protocol.

export const WIRE_RATE_HZ = 24000;

export async function openAudio() {
  const ctx = new AudioContext({ latencyHint: "interactive" });
  await ctx.resume();
  const here = new URL(".", import.meta.url);
  await ctx.audioWorklet.addModule(new URL("capture-worklet.js", here));
  await ctx.audioWorklet.addModule(new URL("playback-worklet.js", here));
  return ctx;
}

export class Microphone {
  // onPcm(Int16Array) for every 40 ms chunk; onLevel(dBFS) about every 50 ms.
  constructor(ctx, { onPcm, onLevel }) {
    this.ctx = ctx;
    this.onPcm = onPcm;
    this.onLevel = onLevel;
  }

  async start(echoCancellation) {
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation, noiseSuppression: echoCancellation,
        autoGainControl: echoCancellation },
    });
    this.source = this.ctx.createMediaStreamSource(this.stream);
    this.node = new AudioWorkletNode(this.ctx, "icot-capture", { numberOfOutputs: 0 });
    this.node.port.onmessage = (e) => {
      if (e.data.type === "pcm") this.onPcm(e.data.pcm);
      else if (e.data.type === "level") this.onLevel(e.data.dbfs);
    };
    this.source.connect(this.node);
  }

  stop() {
    if (this.source) this.source.disconnect();
    if (this.stream) this.stream.getTracks().forEach((t) => t.stop());
    this.source = this.stream = null;
  }
}

export class Player {
  // Counts 24 kHz samples played (`played`), per reply item for truncation; with `capture`
  // it keeps every sample it played (tests hand them to a speech recognizer).
  constructor(ctx, { capture = false, onDrained = () => {} } = {}) {
    this.node = new AudioWorkletNode(ctx, "icot-playback", { outputChannelCount: [1] });
    this.node.connect(ctx.destination);
    this.played = 0;
    this.pushed = 0;
    this.itemStart = 0; // samples pushed before the current reply item's first chunk
    this.itemId = null;
    this.captured = [];
    this.onDrained = onDrained;
    this.pendingClear = null;
    this.node.port.onmessage = (e) => this.onMessage(e.data);
    this.node.port.postMessage({ type: "capture", on: capture });
  }

  onMessage(msg) {
    if (msg.type === "played") {
      this.played = msg.samples;
      if (msg.audio) this.captured.push(...msg.audio);
    } else if (msg.type === "cleared") {
      this.played = msg.samples;
      this.pushed -= msg.dropped;
      if (this.pendingClear) this.pendingClear(msg);
      this.pendingClear = null;
    } else if (msg.type === "drained") {
      this.onDrained();
    }
  }

  push(itemId, pcm) {
    if (itemId !== this.itemId) {
      this.itemId = itemId;
      this.itemStart = this.pushed;
    }
    this.pushed += pcm.length;
    this.node.port.postMessage({ type: "push", pcm }, [pcm.buffer]);
  }

  end() { this.node.port.postMessage({ type: "end" }); }

  get busy() { return this.pushed > this.played; }

  // Barge-in: drop what is queued; resolves to {itemId, playedMs, droppedSamples}: the reply
  // being played, how much of it was heard, how many samples were never played.
  clear() {
    const itemId = this.itemId;
    const itemStart = this.itemStart;
    return new Promise((resolve) => {
      this.pendingClear = ({ samples, dropped }) => resolve({
        itemId, playedMs: Math.floor((Math.max(0, samples - itemStart) * 1000) / WIRE_RATE_HZ),
        droppedSamples: dropped,
      });
      this.node.port.postMessage({ type: "clear" });
    });
  }

  capturedPcm16() {
    let n = 0;
    for (const c of this.captured) n += c.length;
    const out = new Int16Array(n);
    let at = 0;
    for (const c of this.captured) {
      for (let i = 0; i < c.length; i++) out[at + i] = Math.max(-32768, Math.min(32767, Math.round(c[i] * 32767)));
      at += c.length;
    }
    return out;
  }
}
