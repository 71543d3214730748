// The ICoT Voice page: connects to /v1/realtime (OpenAI Realtime, GA names), streams the
// microphone, plays the reply, shows reply text, the user's words and time to first audio.
// Tests read `window.icot` (played samples, turns, captured playback with ?capture=1).

import { Microphone, openAudio, Player } from "./audio.js";
import { fromBase64, RealtimeConnection, realtimeUrl, toBase64 } from "./realtime.js";

const $ = (id) => document.getElementById(id);
const ui = {
  status: $("status"), connect: $("connect"), talk: $("talk"), handsFree: $("hands-free"),
  echo: $("echo"), level: $("level"), log: $("log"), form: $("text-form"), text: $("text"),
  send: $("send"), secretBox: $("secret-box"), secret: $("secret"), summary: $("ttfa-summary"),
};
const STATE_TEXT = {
  idle: "Not connected", connecting: "Connecting…", ready: "Ready: press Talk or type",
  listening: "Listening", thinking: "Thinking", speaking: "Speaking", error: "Error",
};
const capture = new URLSearchParams(location.search).get("capture") === "1";

// What tests (and the curious) can read.
const icot = { state: "idle", turns: [], errors: [], bargeIns: [], truncated: [], levelPeakDb: -100,
  get playedSamples() { return player ? player.played : 0; },
  get receivedSamples() { return player ? player.pushed : 0; },
  playedAudioBase64() { return player ? toBase64(player.capturedPcm16()) : ""; } };
window.icot = icot;

let conn = null;
let ctx = null;
let mic = null;
let player = null;
let talking = false; // push-to-talk: the microphone is being sent
let responding = false; // a response is in progress on the server
let turn = null; // {startedAt, firstAudioAt, item, replyEl, userEl}
const interrupted = new Set(); // reply items stopped by a barge-in
let turnStarters = new Set(); // ids of the events that asked for the latest reply
const userItems = new Map(); // user item id → {el, record, heard}: where its words go
let speechStartMs = null; // audio_start_ms of the speech the server heard last

function setState(state, detail) {
  icot.state = state;
  ui.status.dataset.state = state;
  ui.status.textContent = detail ? `${STATE_TEXT[state]}: ${detail}` : STATE_TEXT[state];
}

function addLine(kind, who, text) {
  const li = document.createElement("li");
  li.className = kind;
  const label = document.createElement("span");
  label.className = "who";
  label.textContent = who;
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  li.append(label, body);
  ui.log.append(li);
  li.scrollIntoView({ block: "nearest" });
  return li;
}

function idleState() { return ui.handsFree.checked ? "listening" : "ready"; }

function newTurn(startedAt) {
  turn = { startedAt, firstAudioAt: null, item: null, replyEl: null, userEl: null, text: "" };
  icot.turns.push({ ttfaMs: null, text: "", transcript: null, status: null });
}

function current() { return icot.turns[icot.turns.length - 1]; }

function sessionUpdate() {
  const turnDetection = ui.handsFree.checked ? { type: "server_vad" } : null;
  conn.send({ type: "session.update", session: { type: "realtime", audio: {
    input: { format: { type: "audio/pcm", rate: 24000 }, turn_detection: turnDetection,
      transcription: { model: "whisper-1" } }, // any name: icot serve uses its own ASR
    output: { format: { type: "audio/pcm", rate: 24000 } } } } });
}

async function credentials() {
  const pasted = ui.secret.value.trim();
  if (pasted) return pasted;
  const answer = await fetch(new URL("web/client-secret", location.href), { method: "POST" });
  if (answer.ok) return (await answer.json()).value; // null: the server needs no key
  ui.secretBox.hidden = false;
  ui.secret.focus();
  throw new Error("this server needs a client secret: paste one and connect again");
}

async function bargeIn() {
  if (!player.busy && !responding) return;
  if (player.itemId) interrupted.add(player.itemId); // its late deltas are not played
  const { itemId, playedMs, droppedSamples } = await player.clear();
  icot.bargeIns.push({ itemId, playedMs, droppedSamples });
  if (itemId) {
    conn.send({ type: "conversation.item.truncate", item_id: itemId, content_index: 0,
      audio_end_ms: playedMs });
  }
  const stopped = ui.log.querySelector(`li[data-item="${itemId}"] .who`);
  if (stopped) stopped.append(" · interrupted");
}

function sendPcm(pcm) {
  if (conn && (ui.handsFree.checked || talking)) {
    conn.send({ type: "input_audio_buffer.append", audio: toBase64(pcm) });
  }
}

function onEvent(type, handler) { conn.addEventListener(type, (e) => handler(e.detail)); }

function wireEvents() {
  onEvent("input_audio_buffer.speech_started", (e) => {
    speechStartMs = e.audio_start_ms;
    bargeIn();
    setState("listening");
  });
  onEvent("input_audio_buffer.speech_stopped", (e) => {
    newTurn(performance.now());
    const spokenS = (e.audio_end_ms - (speechStartMs ?? e.audio_end_ms)) / 1000;
    turn.userEl = addLine("user", "You", `(spoke ${spokenS.toFixed(1)} s)`);
    setState("thinking");
  });
  onEvent("input_audio_buffer.committed", (e) => {
    if (!turn) return;
    turn.userEl = turn.userEl || addLine("user", "You", "(spoke)");
    userItems.set(e.item_id, { el: turn.userEl, record: current(), heard: false });
  });
  // The server transcribes off the reply's critical path: words may come after the reply.
  onEvent("conversation.item.input_audio_transcription.delta", (e) => {
    const user = userItems.get(e.item_id);
    if (!user) return;
    const words = user.el.querySelector(".text");
    if (!user.heard) words.textContent = "";
    user.heard = true;
    words.textContent += e.delta;
  });
  onEvent("conversation.item.input_audio_transcription.completed", (e) => {
    const user = userItems.get(e.item_id);
    if (!user) return;
    user.el.querySelector(".text").textContent = e.transcript.trim();
    user.record.transcript = e.transcript.trim();
  });
  onEvent("response.created", () => {
    responding = true;
    if (!turn) newTurn(performance.now());
  });
  onEvent("response.output_item.added", (e) => { if (turn) turn.item = e.item.id; });
  const onText = (e) => {
    if (!turn) return;
    turn.replyEl = turn.replyEl || addLine("assistant", "Assistant", "");
    turn.text += e.delta;
    turn.replyEl.querySelector(".text").textContent = turn.text.trim();
    current().text = turn.text.trim();
  };
  onEvent("response.output_audio_transcript.delta", onText);
  onEvent("response.output_text.delta", onText);
  onEvent("response.output_audio.delta", (e) => {
    if (!turn || interrupted.has(e.item_id)) return;
    if (turn.firstAudioAt === null) {
      turn.firstAudioAt = performance.now();
      const ms = Math.round(turn.firstAudioAt - turn.startedAt);
      current().ttfaMs = ms;
      turn.replyEl = turn.replyEl || addLine("assistant", "Assistant", "");
      const tag = document.createElement("span");
      tag.className = "ttfa";
      tag.textContent = `· first audio ${ms} ms`;
      turn.replyEl.querySelector(".who").append(tag);
      showSummary();
      setState("speaking");
    }
    turn.replyEl.dataset.item = e.item_id || turn.item;
    player.push(e.item_id || turn.item, fromBase64(e.delta));
  });
  onEvent("response.done", (e) => {
    responding = false;
    current().status = e.response.status;
    player.end();
    if (!player.busy && icot.state !== "listening") setState(idleState());
    turn = null;
  });
  onEvent("conversation.item.truncated", (e) => { icot.truncated.push(e); });
  onEvent("error", (e) => {
    icot.errors.push(e.error);
    addLine("error", "Server error", `${e.error.code}: ${e.error.message}`);
    if (turnStarters.has(e.error.event_id)) { // the turn was refused: no reply will come
      current().status = "failed";
      turn = null;
      setState(idleState());
    }
  });
  conn.addEventListener("closed", (e) => {
    const { code, why } = e.detail;
    stopAudio();
    enable(false);
    if (code === 1000 && icot.state === "idle") return;
    setState(code === 1000 ? "idle" : "error", why);
  });
}

function showSummary() {
  const ttfas = icot.turns.map((t) => t.ttfaMs).filter((v) => v !== null).sort((a, b) => a - b);
  if (ttfas.length) {
    ui.summary.textContent = `Time to first audio: median ${ttfas[ttfas.length >> 1]} ms over ${ttfas.length} turn(s).`;
  }
}

function enable(connected) {
  ui.connect.textContent = connected ? "Disconnect" : "Connect";
  ui.talk.disabled = !connected || ui.handsFree.checked;
  ui.text.disabled = ui.send.disabled = !connected;
}

function stopAudio() {
  if (mic) mic.stop();
  if (ctx) ctx.close();
  mic = ctx = null;
  talking = false;
  responding = false;
  ui.talk.setAttribute("aria-pressed", "false");
  ui.level.value = -60;
}

async function connect() {
  setState("connecting");
  ui.connect.disabled = true;
  try {
    ctx = await openAudio();
    player = new Player(ctx, { capture, onDrained: () => {
      if (!responding && icot.state === "speaking") setState(idleState());
    } });
    const secret = await credentials();
    conn = new RealtimeConnection(realtimeUrl(location.href), secret);
    wireEvents();
    await conn.open();
    sessionUpdate();
    mic = new Microphone(ctx, { onPcm: sendPcm, onLevel: (db) => {
      ui.level.value = db;
      icot.levelPeakDb = Math.max(icot.levelPeakDb, db);
    } });
    await mic.start(ui.echo.checked);
    enable(true);
    setState(idleState());
  } catch (err) {
    stopAudio();
    if (conn) conn.close();
    conn = null;
    enable(false);
    setState("error", err.message || String(err));
  } finally {
    ui.connect.disabled = false;
  }
}

ui.secretBox.addEventListener("submit", (e) => {
  e.preventDefault();
  if (!conn) connect();
});

ui.connect.addEventListener("click", () => {
  if (conn && icot.state !== "error") {
    setState("idle");
    conn.close();
    conn = null;
  } else {
    connect();
  }
});

ui.talk.addEventListener("click", async () => {
  if (!talking) {
    await bargeIn();
    talking = true;
    ui.talk.setAttribute("aria-pressed", "true");
    setState("listening", "press Talk again to send");
  } else {
    talking = false;
    ui.talk.setAttribute("aria-pressed", "false");
    turnStarters = new Set([conn.send({ type: "input_audio_buffer.commit" }),
      conn.send({ type: "response.create" })]);
    newTurn(performance.now());
    setState("thinking");
  }
});

ui.handsFree.addEventListener("change", () => {
  if (conn) {
    talking = false;
    ui.talk.setAttribute("aria-pressed", "false");
    sessionUpdate();
    enable(true);
    setState(idleState());
  }
});

ui.form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = ui.text.value.trim();
  if (!text || !conn) return;
  await bargeIn();
  ui.text.value = "";
  addLine("user", "You (typed)", text);
  turnStarters = new Set([conn.send({ type: "conversation.item.create", item: { type: "message",
    role: "user", content: [{ type: "input_text", text }] } }),
  conn.send({ type: "response.create" })]);
  newTurn(performance.now());
  setState("thinking");
});
