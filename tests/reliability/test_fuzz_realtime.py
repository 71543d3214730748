"""Property-based fuzzing of the `/v1/realtime` event stream against a live `icot serve` of the
demo bundle: hypothesis draws sessions of 20–30 events each, valid ones (session updates,
appends of random audio, commits, responses, items) mixed with broken ones (wrong types, junk
fields, random JSON, random text, random bytes). After each session a sentinel event must still
be answered in order, with no `server_error` on the way. After every session, the server must
hold no session, engine slot or queued response (its /metrics), no more file descriptors than
before (/proc/<pid>/fd), and its log must show no crash.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from live_icot import LiveServer, fresh_dialogue, open_session
from websockets.exceptions import ConnectionClosed

SESSIONS, MIN_EVENTS, MAX_EVENTS = 90, 20, 30
SENTINEL = "fuzz_sentinel"
TYPES = ["session.update", "input_audio_buffer.append", "input_audio_buffer.commit",
         "input_audio_buffer.clear", "response.create", "response.cancel",
         "conversation.item.create", "conversation.item.truncate", "conversation.item.delete",
         "conversation.item.retrieve"]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with LiveServer.start(log, max_turn_audio_s=10, max_message_bytes=1 << 18) as server:
        yield server


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63),
                         st.floats(allow_nan=False), st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12)
item_ids = st.sampled_from(["item_a", "item_b", "", "x" * 70, "resp_1"])
audio = st.binary(max_size=4000).map(lambda raw: base64.b64encode(raw).decode())
formats = st.one_of(
    st.builds(lambda rate: {"type": "audio/pcm", "rate": rate}, st.sampled_from([16_000, 24_000,
                                                                                 8_000])),
    st.sampled_from([{"type": "audio/pcmu"}, {"type": "audio/pcma"}, {"type": "audio/opus"}]))
turn_detection = st.one_of(st.none(), st.fixed_dictionaries(
    {"type": st.sampled_from(["server_vad", "semantic_vad", "none"])},
    optional={"threshold": st.floats(0, 1.5), "silence_duration_ms": st.integers(-10, 3000),
              "interrupt_response": st.booleans(), "create_response": st.booleans()}))
session = st.fixed_dictionaries({}, optional={
    "turn_detection": turn_detection,
    "output_modalities": st.sampled_from([["audio"], ["text"], ["audio", "text"], ["video"]]),
    "audio": st.fixed_dictionaries({}, optional={
        "input": st.fixed_dictionaries({}, optional={"format": formats}),
        "output": st.fixed_dictionaries({}, optional={"format": formats})}),
    "instructions": st.text(max_size=30), "voice": st.text(max_size=8)})
content = st.one_of(
    st.builds(lambda a: [{"type": "input_audio", "audio": a}], audio),
    st.builds(lambda t: [{"type": "input_text", "text": t}], st.text(max_size=30)),
    st.lists(st.dictionaries(st.sampled_from(["type", "audio", "text"]), json_scalars),
             max_size=2))
valid_events = st.one_of(
    st.builds(lambda s: {"type": "session.update", "session": s}, session),
    st.builds(lambda a: {"type": "input_audio_buffer.append", "audio": a}, audio),
    st.just({"type": "input_audio_buffer.commit"}),
    st.just({"type": "input_audio_buffer.clear"}),
    st.builds(lambda m: {"type": "response.create", "response": {"output_modalities": m}},
              st.sampled_from([["audio"], ["text"]])),
    st.just({"type": "response.create"}),
    st.just({"type": "response.cancel"}),
    st.builds(lambda c, role, i: {"type": "conversation.item.create",
                                  "item": {"type": "message", "role": role, "content": c,
                                           "id": i}},
              content, st.sampled_from(["user", "system", "assistant", "tool"]), item_ids),
    st.builds(lambda i, ms: {"type": "conversation.item.truncate", "item_id": i,
                             "content_index": 0, "audio_end_ms": ms},
              item_ids, st.integers(-5, 10_000)),
    st.builds(lambda i: {"type": "conversation.item.delete", "item_id": i}, item_ids),
    st.builds(lambda i: {"type": "conversation.item.retrieve", "item_id": i}, item_ids),
)
broken_events = st.one_of(
    st.builds(lambda kind, junk: {"type": kind, **junk}, st.sampled_from(TYPES),
              st.dictionaries(st.sampled_from(["audio", "session", "item", "item_id",
                                               "response", "event_id", "audio_end_ms"]),
                              json_values, max_size=3)),
    st.builds(lambda kind: {"type": kind}, json_scalars),
    st.dictionaries(st.text(max_size=8), json_values, max_size=4),
)
messages = st.one_of(
    valid_events.map(json.dumps), valid_events.map(json.dumps), broken_events.map(json.dumps),
    json_values.map(json.dumps), st.text(max_size=60), st.binary(max_size=60))

sent = {"events": 0, "sessions": 0}


async def _fuzz_one_session(live: LiveServer, stream: list[str | bytes]) -> None:
    client = await open_session(live, manual=False)
    try:
        for message in stream:
            await client.send_raw(message)
        sent["events"] += len(stream)
        await client.send(type="conversation.item.retrieve", item_id=SENTINEL)
        deadline = time.monotonic() + 60
        while True:
            event = await client.recv(max(0.01, deadline - time.monotonic()))
            if event["type"] == "error":
                assert event["error"]["code"] != "server_error", event
                if SENTINEL in event["error"]["message"]:
                    break
    except ConnectionClosed as closed:  # only the session audio limit may end a session
        assert closed.rcvd is not None and closed.rcvd.code == 1008, closed
    finally:
        await client.close()
    sent["sessions"] += 1


def test_fuzzed_event_streams_crash_nothing_and_leak_nothing(live: LiveServer,
                                                             question: np.ndarray):
    asyncio.run(fresh_dialogue(live, question))  # warm: the first session's lazy loads
    live.wait_idle()
    fds_before = live.open_fds()

    @settings(max_examples=SESSIONS, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(messages, min_size=MIN_EVENTS, max_size=MAX_EVENTS))
    def one_session(stream: list[str | bytes]) -> None:
        asyncio.run(_fuzz_one_session(live, stream))

    one_session()
    assert sent["events"] >= 2000 and sent["sessions"] >= SESSIONS
    assert live.alive() and live.ready()
    live.wait_idle()
    deadline = time.monotonic() + 10
    while live.open_fds() > fds_before and time.monotonic() < deadline:
        time.sleep(0.1)  # closed sockets leave the table a moment after the peer
    assert live.open_fds() <= fds_before
    assert live.crashes() == [], live.log_tail()
    assert "server_error" not in live.errors_by_code()
    asyncio.run(fresh_dialogue(live, question))
