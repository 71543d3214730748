"""Bad input on `/v1/realtime`, one table row per way a client can get it wrong, against a live
`icot serve` of the demo bundle (`--threads 1`, small limits so they are cheap to reach).

Each row sends its bad message(s) on a fresh session and asserts the exact error code the server
answers with (or, for hard input it must simply cope with, that it answers normally); then a
normal spoken dialogue must succeed right after, on the same session or, when the case closes
it, on a new one. At the end the server is still ready, logged no crash and holds no session,
slot or queued response.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
import pytest
from live_icot import LiveServer, dialogue, fresh_dialogue, open_session, until_error
from realtime_client import Client
from websockets.exceptions import ConnectionClosed

from model.audio import float_to_pcm16

TURN_S, SESSION_S, MESSAGE_BYTES = 20, 200, 1 << 20
RATE16 = 16_000


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with LiveServer.start(log, max_turn_audio_s=TURN_S, max_session_audio_s=SESSION_S,
                          max_message_bytes=MESSAGE_BYTES) as server:
        yield server
        assert server.ready() and server.crashes() == []
        server.wait_idle()
        assert "server_error" not in server.errors_by_code()


Act = Callable[[Client, "Env"], Awaitable[dict | None]]


@dataclass
class Env:
    live: LiveServer
    question: np.ndarray  # (T,) float32 at 16 kHz


@dataclass(frozen=True)
class Case:
    name: str
    act: Act  # sends the bad input; returns the `error` object it caused (None: no error)
    code: str | None
    close: int | None = None  # the close code the case must end the session with


def ev(**event: object) -> str:
    return json.dumps(event)


def b64(pcm: bytes) -> str:
    return base64.b64encode(pcm).decode()


def pcm16k(seconds: float, fill: float = 0.0) -> bytes:
    return float_to_pcm16(np.full(int(seconds * RATE16), fill, dtype=np.float32))


def send(*messages: str | bytes) -> Act:
    """Send raw messages; the first `error` event is the case's answer."""
    async def act(client: Client, env: Env) -> dict | None:
        for message in messages:
            await client.send_raw(message)
        return await until_error(client)
    return act


def send_only(*messages: str | bytes) -> Act:
    """Send raw messages and expect no `error` event (the session may be closed instead)."""
    async def act(client: Client, env: Env) -> None:
        for message in messages:
            await client.send_raw(message)
    return act


def at_16k(*messages: str | bytes) -> Act:
    """The same, in a session whose input is PCM16 at 16 kHz (big audio in fewer bytes)."""
    update = ev(type="session.update", session={"turn_detection": None, "audio": {
        "input": {"format": {"type": "audio/pcm", "rate": RATE16}}}})
    return send(update, *messages)


def update(session: object) -> Act:
    return send(ev(type="session.update", session=session))


def append(audio: object) -> str:
    return ev(type="input_audio_buffer.append", audio=audio)


def item(content: list, role: str = "user", **more: object) -> str:
    return ev(type="conversation.item.create",
              item={"type": "message", "role": role, "content": content, **more})


def audio_part(pcm: bytes) -> list:
    return [{"type": "input_audio", "audio": b64(pcm)}]


async def _committed_user_item(client: Client, env: Env) -> str:
    await client.send(type="input_audio_buffer.append", audio=b64(float_to_pcm16(env.question)))
    await client.send(type="input_audio_buffer.commit")
    return (await client.until("input_audio_buffer.committed"))[-1]["item_id"]


async def _answered(client: Client, env: Env) -> dict:
    """Ask the question (16 kHz session) and wait for the reply; the `response.done` body."""
    await client.send(type="session.update", session={"turn_detection": None, "audio": {
        "input": {"format": {"type": "audio/pcm", "rate": RATE16}}}})
    await client.until("session.updated")
    await _committed_user_item(client, env)
    await client.send(type="response.create")
    return (await client.until("response.done", 60))[-1]["response"]


async def create_twice(client: Client, env: Env) -> dict:
    await _committed_user_item(client, env)
    await client.send(type="response.create")
    await client.send(type="response.create")
    error = await until_error(client)
    await client.until("response.done", 60)  # the first one still completes
    return error


async def truncate_user_item(client: Client, env: Env) -> dict:
    item_id = await _committed_user_item(client, env)
    await client.send(type="conversation.item.truncate", item_id=item_id, content_index=0,
                      audio_end_ms=0)
    return await until_error(client)


async def truncate_past_the_audio(client: Client, env: Env) -> dict:
    """A reply truncated at a time past its audio (the reply is over: kept in history)."""
    response = await _answered(client, env)
    await client.send(type="conversation.item.truncate", item_id=response["output"][0]["id"],
                      content_index=0, audio_end_ms=10_000_000)
    return await until_error(client)


async def truncate_during_reply_past_sent(client: Client, env: Env) -> dict:
    await _committed_user_item(client, env)
    await client.send(type="response.create")
    first = (await client.until("response.output_audio.delta"))[-1]
    await client.send(type="conversation.item.truncate", item_id=first["item_id"],
                      content_index=0, audio_end_ms=10_000_000)
    events = await client.until(lambda e: e["type"] in ("error", "response.done"), 60)
    errors = [e for e in events if e["type"] == "error"]
    if not errors:  # the reply ended first: then the truncate is answered after it
        return await until_error(client)
    await client.until("response.done", 60)
    return errors[0]["error"]


def from_another_session(kind: str) -> Act:
    async def act(client: Client, env: Env) -> dict:
        other = await open_session(env.live)
        try:
            foreign = await _committed_user_item(other, env)
        finally:
            await other.close()
        fields = {"content_index": 0, "audio_end_ms": 0} if kind == "truncate" else {}
        await client.send(type=f"conversation.item.{kind}", item_id=foreign, **fields)
        return await until_error(client)
    return act


async def duplicate_item_id(client: Client, env: Env) -> dict:
    text = [{"type": "input_text", "text": "hello"}]
    await client.send_raw(item(text, id="item_dup"))
    await client.until("conversation.item.done")
    await client.send_raw(item(text, id="item_dup"))
    return await until_error(client)


async def unknown_fields_are_ignored(client: Client, env: Env) -> None:
    await client.send(type="session.update", frobnicate=True,
                      session={"turn_detection": None, "frobnicate": {"x": 1}, "tools": []})
    await client.until("session.updated")
    await client.send(type="input_audio_buffer.append", audio=b64(pcm16k(0.1)), extra=[1, 2])
    await client.send(type="input_audio_buffer.clear", nonsense=None)
    await client.until("input_audio_buffer.cleared")


async def minutes_of_silence_under_server_vad(client: Client, env: Env) -> None:
    """150 s of silence in 5 s appends with server_vad: no turn, no error, idle audio dropped."""
    await client.send(type="session.update", session={
        "turn_detection": {"type": "server_vad"},
        "audio": {"input": {"format": {"type": "audio/pcm", "rate": RATE16}}}})
    await client.until("session.updated")
    chunk = b64(pcm16k(5.0))
    for _ in range(30):
        await client.send(type="input_audio_buffer.append", audio=chunk)
    await client.send(type="conversation.item.retrieve", item_id="sentinel")  # answered in order
    events = await client.until(lambda e: e["type"] == "error", 120)
    assert events[-1]["error"]["code"] == "item_not_found"
    assert not [e for e in events if e["type"].startswith("input_audio_buffer.speech")]


def answered_despite(samples: np.ndarray) -> Act:
    """Hard but valid audio (silence, clipping, noise) is committed and answered: the response
    ends (any status but failed) and no error comes."""
    async def act(client: Client, env: Env) -> None:
        await client.send(type="session.update", session={"turn_detection": None, "audio": {
            "input": {"format": {"type": "audio/pcm", "rate": RATE16}}}})
        await client.until("session.updated")
        await client.send(type="input_audio_buffer.append", audio=b64(float_to_pcm16(samples)))
        await client.send(type="input_audio_buffer.commit")
        await client.send(type="response.create")
        done = (await client.until("response.done", 60))[-1]["response"]
        assert done["status"] in ("completed", "incomplete"), done
    return act


async def session_audio_limit(client: Client, env: Env) -> dict:
    """Items of a whole turn each, until the session's audio budget is spent."""
    await client.send(type="session.update", session={"turn_detection": None, "audio": {
        "input": {"format": {"type": "audio/pcm", "rate": RATE16}}}})
    await client.until("session.updated")
    whole_turn = item(audio_part(pcm16k(TURN_S, 0.01)))
    for _ in range(SESSION_S // TURN_S):
        await client.send_raw(whole_turn)
        await client.until("conversation.item.done")
    await client.send_raw(whole_turn)
    return await until_error(client)


async def turn_over_the_token_budget(client: Client, env: Env) -> dict:
    """Within the turn's seconds (19 s < 20 s) but over the bundle's prompt tokens (848 at 50
    units a second): the response fails with `turn_audio_too_long` in `response.done`."""
    await client.send(type="session.update", session={"turn_detection": None, "audio": {
        "input": {"format": {"type": "audio/pcm", "rate": RATE16}}}})
    await client.until("session.updated")
    speech = np.resize(env.question, 19 * RATE16)
    await client.send_raw(item(audio_part(float_to_pcm16(speech))))
    await client.until("conversation.item.done")
    await client.send(type="response.create")
    done = (await client.until("response.done", 60))[-1]["response"]
    assert done["status"] == "failed"
    return done["status_details"]["error"]


RNG = np.random.default_rng(20)
CLIPPED = np.sign(np.sin(np.arange(2 * RATE16) * 2 * np.pi * 220 / RATE16)).astype(np.float32)
NOISE = RNG.uniform(-1, 1, 2 * RATE16).astype(np.float32)
SILENCE = np.zeros(4 * RATE16, dtype=np.float32)
FORMAT_16K = {"type": "audio/pcm", "rate": RATE16}

CASES = [
    # ---- not a JSON object
    Case("not json", send("{"), "invalid_json"),
    Case("truncated json", send('{"type": "input_audio_buffer.commit"'), "invalid_json"),
    Case("json array", send("[]"), "invalid_json"),
    Case("json string", send('"response.create"'), "invalid_json"),
    Case("json number", send("42"), "invalid_json"),
    Case("json null", send("null"), "invalid_json"),
    Case("empty text frame", send(""), "invalid_json"),
    Case("binary frame", send(b"\x00\x01\x02"), "invalid_json"),
    Case("nesting 50 000 deep", send("[" * 50_000 + "]" * 50_000), "invalid_json"),
    # ---- the type field
    Case("no type", send(ev(event_id="e1")), "missing_field"),
    Case("type null", send(ev(type=None)), "missing_field"),
    Case("type a number", send(ev(type=5)), "unknown_event_type"),
    Case("unknown type", send(ev(type="session.delete")), "unknown_event_type"),
    Case("a server event's type", send(ev(type="response.done")), "unknown_event_type"),
    Case("type in the wrong case", send(ev(type="Response.Create")), "unknown_event_type"),
    Case("event_id too long", send(ev(type="input_audio_buffer.clear", event_id="e" * 200)),
         "invalid_value"),
    Case("event_id a number", send(ev(type="input_audio_buffer.clear", event_id=7)),
         "invalid_value"),
    Case("unknown fields are ignored", unknown_fields_are_ignored, None),
    # ---- input_audio_buffer.append
    Case("append without audio", send(ev(type="input_audio_buffer.append")), "missing_field"),
    Case("append audio a number", send(append(12)), "invalid_value"),
    Case("append audio null", send(append(None)), "invalid_value"),
    Case("append audio a list", send(append([1, 2])), "invalid_value"),
    Case("append invalid base64", send(append("@@@@")), "invalid_base64"),
    Case("append base64 without padding", send(append("QUJ")), "invalid_base64"),
    Case("append odd-length pcm", send(append(b64(b"\x01\x02\x03"))), "invalid_audio"),
    Case("append one byte", send(append(b64(b"\x01"))), "invalid_audio"),
    Case("append over the message limit", send(append("A" * (MESSAGE_BYTES + 4))),
         "message_too_large"),
    Case("append over 4x the limit: cut by the transport",
         send_only(append("A" * (4 * MESSAGE_BYTES))), None, close=1009),
    Case("append longer than a turn at once", at_16k(append(b64(pcm16k(TURN_S + 1)))),
         "turn_audio_too_long"),
    Case("appends add up past a turn", at_16k(*[append(b64(pcm16k(8)))] * 3),
         "turn_audio_too_long"),
    Case("empty append, then commit", send(append(""), ev(type="input_audio_buffer.commit")),
         "input_audio_buffer_commit_empty"),
    Case("commit before any append", send(ev(type="input_audio_buffer.commit")),
         "input_audio_buffer_commit_empty"),
    Case("commit after clear", send(append(b64(pcm16k(0.5))), ev(type="input_audio_buffer.clear"),
                                    ev(type="input_audio_buffer.commit")),
         "input_audio_buffer_commit_empty"),
    # ---- session.update
    Case("update without session", send(ev(type="session.update")), "missing_field"),
    Case("session a string", update("realtime"), "invalid_value"),
    Case("session a list", update([1]), "invalid_value"),
    Case("rate 44100", update({"audio": {"input": {"format": {"type": "audio/pcm",
                                                              "rate": 44_100}}}}),
         "unsupported_audio_format"),
    Case("rate 10^12", update({"audio": {"input": {"format": {"type": "audio/pcm",
                                                              "rate": 10**12}}}}),
         "unsupported_audio_format"),
    Case("negative rate", update({"audio": {"output": {"format": {"type": "audio/pcm",
                                                                  "rate": -24_000}}}}),
         "unsupported_audio_format"),
    Case("rate a word", update({"audio": {"input": {"format": {"rate": "fast"}}}}),
         "invalid_value"),
    Case("format audio/mp3", update({"audio": {"input": {"format": {"type": "audio/mp3"}}}}),
         "unsupported_audio_format"),
    Case("beta format opus", update({"input_audio_format": "opus"}), "unsupported_audio_format"),
    Case("vad threshold 2", update({"turn_detection": {"type": "server_vad", "threshold": 2}}),
         "invalid_value"),
    Case("vad of an unknown type", update({"turn_detection": {"type": "magic_vad"}}),
         "invalid_value"),
    Case("vad silence negative", update({"turn_detection": {"type": "server_vad",
                                                            "silence_duration_ms": -5}}),
         "invalid_value"),
    Case("semantic vad, bad eagerness", update({"turn_detection": {"type": "semantic_vad",
                                                                   "eagerness": "frantic"}}),
         "invalid_value"),
    Case("session type transcription", update({"type": "transcription"}), "unsupported_value"),
    Case("unknown chain", update({"chain": "X-Y-Z"}), "unsupported_value"),
    Case("modality video", update({"output_modalities": ["video"]}), "invalid_value"),
    Case("temperature a word", update({"temperature": "hot"}), "invalid_value"),
    # ---- responses, and events out of order
    Case("cancel with nothing running", send(ev(type="response.cancel")),
         "response_cancel_not_active"),
    Case("cancel an unknown response", send(ev(type="response.cancel", response_id="resp_x")),
         "response_cancel_not_active"),
    Case("create while one runs", create_twice, "conversation_already_has_active_response"),
    Case("out-of-band response", send(ev(type="response.create",
                                         response={"conversation": "none"})),
         "unsupported_value"),
    Case("response modality video", send(ev(type="response.create",
                                            response={"output_modalities": ["video"]})),
         "invalid_value"),
    Case("response metadata a list", send(ev(type="response.create",
                                             response={"metadata": ["a"]})),
         "invalid_value"),
    # ---- items
    Case("truncate an unknown item", send(ev(type="conversation.item.truncate", item_id="item_x",
                                             content_index=0, audio_end_ms=0)),
         "item_not_found"),
    Case("delete an unknown item", send(ev(type="conversation.item.delete", item_id="item_x")),
         "item_not_found"),
    Case("retrieve an unknown item", send(ev(type="conversation.item.retrieve",
                                             item_id="item_x")),
         "item_not_found"),
    Case("truncate without item_id", send(ev(type="conversation.item.truncate",
                                             content_index=0, audio_end_ms=0)),
         "missing_field"),
    Case("truncate at negative ms", send(ev(type="conversation.item.truncate", item_id="item_x",
                                            content_index=0, audio_end_ms=-1)),
         "invalid_value"),
    Case("truncate a user item", truncate_user_item, "item_not_editable"),
    Case("truncate a finished reply past its audio", truncate_past_the_audio,
         "invalid_audio_end_ms"),
    Case("truncate a reply past the audio sent", truncate_during_reply_past_sent,
         "invalid_audio_end_ms"),
    Case("truncate another session's item", from_another_session("truncate"), "item_not_found"),
    Case("delete another session's item", from_another_session("delete"), "item_not_found"),
    Case("retrieve another session's item", from_another_session("retrieve"), "item_not_found"),
    Case("item without role", send(ev(type="conversation.item.create",
                                      item={"type": "message", "content": []})),
         "missing_field"),
    Case("item from the assistant", send(item([{"type": "input_text", "text": "hi"}],
                                              role="assistant")),
         "unsupported_value"),
    Case("item without content", send(item([])), "invalid_value"),
    Case("item with an image", send(item([{"type": "input_image", "image_url": "x"}])),
         "unsupported_value"),
    Case("item audio invalid base64", send(item([{"type": "input_audio", "audio": "%%"}])),
         "invalid_base64"),
    Case("item audio odd length", send(item(audio_part(b"\x01\x02\x03"))), "invalid_audio"),
    Case("item longer than a turn", at_16k(item(audio_part(pcm16k(TURN_S + 1)))),
         "turn_audio_too_long"),
    Case("item id used twice", duplicate_item_id, "invalid_value"),
    Case("item id too long", send(item([{"type": "input_text", "text": "hi"}], id="i" * 65)),
         "invalid_value"),
    Case("item after an unknown item", send(ev(
        type="conversation.item.create", previous_item_id="item_nowhere",
        item={"type": "message", "role": "user",
              "content": [{"type": "input_text", "text": "hi"}]})), "item_not_found"),
    # ---- hard audio: coped with, or refused by its limits
    Case("minutes of silence under server_vad", minutes_of_silence_under_server_vad, None),
    Case("silence committed and answered", answered_despite(SILENCE), None),
    Case("clipped square wave answered", answered_despite(CLIPPED), None),
    Case("full-scale noise answered", answered_despite(NOISE), None),
    Case("over the session's audio", session_audio_limit, "session_audio_limit_exceeded",
         close=1008),
    Case("within the turn's seconds, over its tokens", turn_over_the_token_budget,
         "turn_audio_too_long"),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_bad_input_gets_its_code_and_the_session_goes_on(case: Case, live: LiveServer,
                                                                question: np.ndarray):
    client = await open_session(live)
    try:
        error = await case.act(client, Env(live, question))
        if case.code is None:
            assert error is None
        else:
            assert error is not None and error["code"] == case.code, error
        if case.close is None:
            await dialogue(client, question)  # the same session goes on
            return
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await client.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == case.close
    finally:
        await client.close()
    await fresh_dialogue(live, question)  # the server goes on


def test_the_table_covers_at_least_sixty_cases():
    assert len(CASES) >= 60 and len({case.name for case in CASES}) == len(CASES)


