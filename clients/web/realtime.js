// A minimal OpenAI Realtime (GA) client over a browser WebSocket: JSON events in and out,
// base64 PCM16 helpers. Beta event names are mapped to GA ones so any compatible server works.

const BETA_TO_GA = {
  "response.audio.delta": "response.output_audio.delta",
  "response.audio.done": "response.output_audio.done",
  "response.audio_transcript.delta": "response.output_audio_transcript.delta",
  "response.audio_transcript.done": "response.output_audio_transcript.done",
  "response.text.delta": "response.output_text.delta",
  "conversation.item.created": "conversation.item.added",
};
const CLOSE_REASONS = {
  1008: "the session broke a server limit",
  1009: "a message was too large",
  1012: "the server is restarting",
  1013: "the server is full or still loading; try again later",
};
const KEY_SUBPROTOCOL = "openai-insecure-api-key.";

export function realtimeUrl(pageUrl) {
  const url = new URL("v1/realtime", pageUrl);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.search = "";
  url.hash = "";
  return url.href;
}

export function toBase64(int16) {
  const bytes = new Uint8Array(int16.buffer, int16.byteOffset, int16.byteLength);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

export function fromBase64(b64) {
  const text = atob(b64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return new Int16Array(bytes.buffer, 0, bytes.length >> 1);
}

export class RealtimeConnection extends EventTarget {
  // Emits one CustomEvent per server event (its GA type; detail = the event) and "closed"
  // (detail = {code, reason, why}).
  constructor(url, secret) {
    super();
    this.url = url;
    this.secret = secret;
    this.counter = 0;
  }

  open() {
    const protocols = ["realtime"];
    if (this.secret) protocols.push(KEY_SUBPROTOCOL + this.secret);
    this.ws = new WebSocket(this.url, protocols);
    return new Promise((resolve, reject) => {
      let opened = false;
      this.ws.onmessage = (m) => {
        const event = JSON.parse(m.data);
        event.type = BETA_TO_GA[event.type] || event.type;
        if (!opened && event.type === "session.created") {
          opened = true;
          resolve(event);
        }
        this.dispatchEvent(new CustomEvent(event.type, { detail: event }));
      };
      this.ws.onclose = (e) => {
        const why = CLOSE_REASONS[e.code] || (opened ? "the connection closed"
          : "could not connect (wrong client secret, origin not allowed, or server down)");
        const detail = { code: e.code, reason: e.reason, why };
        if (!opened) reject(new Error(`${why} (${e.code}${e.reason ? ": " + e.reason : ""})`));
        this.dispatchEvent(new CustomEvent("closed", { detail }));
      };
    });
  }

  send(event) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return null;
    event.event_id = `evt_page_${++this.counter}`;
    this.ws.send(JSON.stringify(event));
    return event.event_id;
  }

  close() { if (this.ws) this.ws.close(1000); }
}
