"""The Realtime wire protocol: client events in both dialects, every bad message mapped to a stable
code, every server event rendered in both dialects and accepted by the openai SDK's own models."""

from __future__ import annotations

import base64
import json

import pytest
from openai.types.beta.realtime import RealtimeServerEvent as BetaServerEvent
from openai.types.realtime import RealtimeServerEvent as GaServerEvent
from pydantic import TypeAdapter

from server.realtime import protocol as p
from server.realtime.protocol import Dialect, ErrorCode, ProtocolError

LIMIT = 1 << 20
PCM = (b"\x01\x00\xff\x7f" * 8)  # 16 samples of PCM16
B64 = base64.b64encode(PCM).decode()


def parse(obj) -> object:
    return p.parse_client_event(obj if isinstance(obj, str) else json.dumps(obj), max_bytes=LIMIT)


def refused(obj, *, max_bytes: int = LIMIT) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        p.parse_client_event(obj if isinstance(obj, str | bytes) else json.dumps(obj),
                             max_bytes=max_bytes)
    return info.value


# ---------------------------------------------------------------- client events


def test_append_decodes_base64_pcm():
    event = parse({"type": "input_audio_buffer.append", "audio": B64, "event_id": "e1"})
    assert isinstance(event, p.InputAudioBufferAppend)
    assert event.audio == PCM and event.event_id == "e1"


@pytest.mark.parametrize("kind, cls", [
    ("input_audio_buffer.commit", p.InputAudioBufferCommit),
    ("input_audio_buffer.clear", p.InputAudioBufferClear),
    ("response.create", p.ResponseCreate),
    ("response.cancel", p.ResponseCancel),
])
def test_events_without_fields(kind, cls):
    assert isinstance(parse({"type": kind}), cls)


def test_item_events():
    truncate = parse({"type": "conversation.item.truncate", "item_id": "item_1",
                      "content_index": 0, "audio_end_ms": 1500})
    assert (truncate.item_id, truncate.audio_end_ms) == ("item_1", 1500)
    assert parse({"type": "conversation.item.delete", "item_id": "item_1"}).item_id == "item_1"
    create = parse({"type": "conversation.item.create", "item": {
        "type": "message", "role": "user",
        "content": [{"type": "input_audio", "audio": B64}]}})
    assert create.item.content[0].audio == PCM


def test_ga_session_update_nests_audio_config():
    event = parse({"type": "session.update", "session": {
        "type": "realtime", "output_modalities": ["audio"], "instructions": "ignored",
        "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000},
                            "turn_detection": {"type": "server_vad", "threshold": 0.6,
                                               "prefix_padding_ms": 200,
                                               "silence_duration_ms": 400}},
                  "output": {"format": {"type": "audio/pcm", "rate": 24000},
                             "voice": "marin"}}}})
    session = event.session
    assert session.input_format().rate == 16000 and session.output_format().rate == 24000
    assert session.turn_detection_given()
    assert session.new_turn_detection().threshold == 0.6
    assert session.requested_modalities() == ["audio"]


def test_beta_session_update_is_flat():
    session = parse({"type": "session.update", "session": {
        "modalities": ["text", "audio"], "input_audio_format": "pcm16", "voice": "alloy",
        "turn_detection": {"type": "server_vad", "silence_duration_ms": 300},
        "tools": [], "temperature": 0.8}}).session
    assert session.input_format().rate == 24000
    assert session.new_turn_detection().silence_duration_ms == 300
    assert session.requested_modalities() == ["text", "audio"]


@pytest.mark.parametrize("session", [
    {"turn_detection": None},
    {"type": "realtime", "audio": {"input": {"turn_detection": None}}},
])
def test_null_turn_detection_selects_manual_mode(session):
    parsed = parse({"type": "session.update", "session": session}).session
    assert parsed.turn_detection_given() and parsed.new_turn_detection() is None


def test_an_update_without_turn_detection_leaves_it_alone():
    parsed = parse({"type": "session.update", "session": {"modalities": ["audio"]}}).session
    assert not parsed.turn_detection_given()


BAD_MESSAGES = [
    ("{not json", ErrorCode.INVALID_JSON, None),
    ("[1, 2]", ErrorCode.INVALID_JSON, None),
    ({"audio": B64}, ErrorCode.MISSING_FIELD, "type"),
    ({"type": "response.explode"}, ErrorCode.UNKNOWN_EVENT, "type"),
    ({"type": 7}, ErrorCode.UNKNOWN_EVENT, "type"),
    ({"type": "input_audio_buffer.append"}, ErrorCode.MISSING_FIELD, "audio"),
    ({"type": "input_audio_buffer.append", "audio": 12}, ErrorCode.INVALID_VALUE, "audio"),
    ({"type": "input_audio_buffer.append", "audio": "@@not base64@@"},
     ErrorCode.INVALID_BASE64, "audio"),
    ({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\x00" * 3).decode()},
     ErrorCode.INVALID_AUDIO, "audio"),
    ({"type": "session.update"}, ErrorCode.MISSING_FIELD, "session"),
    ({"type": "session.update", "session": {"input_audio_format": "g711_ulaw"}},
     ErrorCode.UNSUPPORTED_FORMAT, "session.input_audio_format"),
    ({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
        "format": {"type": "audio/pcmu"}}}}},
     ErrorCode.UNSUPPORTED_FORMAT, "session.audio.input.format.type"),
    ({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {
        "format": {"type": "audio/pcm", "rate": 44100}}}}},
     ErrorCode.UNSUPPORTED_FORMAT, "session.audio.input.format.rate"),
    ({"type": "session.update", "session": {"turn_detection": {"type": "semantic_vad"}}},
     ErrorCode.UNSUPPORTED_VALUE, "session.turn_detection.type"),
    ({"type": "session.update", "session": {"turn_detection": {"type": "server_vad",
                                                               "threshold": 1.5}}},
     ErrorCode.INVALID_VALUE, "session.turn_detection.threshold"),
    ({"type": "session.update", "session": {"type": "transcription"}},
     ErrorCode.UNSUPPORTED_VALUE, "session.type"),
    ({"type": "session.update", "session": {"modalities": ["video"]}},
     ErrorCode.INVALID_VALUE, "session.modalities.0"),
    ({"type": "conversation.item.truncate", "item_id": "x", "content_index": 0},
     ErrorCode.MISSING_FIELD, "audio_end_ms"),
    ({"type": "conversation.item.truncate", "item_id": "x", "content_index": 0,
      "audio_end_ms": -5}, ErrorCode.INVALID_VALUE, "audio_end_ms"),
    ({"type": "conversation.item.truncate", "item_id": "x", "content_index": 0,
      "audio_end_ms": "soon"}, ErrorCode.INVALID_VALUE, "audio_end_ms"),
    ({"type": "conversation.item.delete"}, ErrorCode.MISSING_FIELD, "item_id"),
    ({"type": "conversation.item.create", "item": {"role": "user", "content": []}},
     ErrorCode.INVALID_VALUE, "item.content"),
    ({"type": "conversation.item.create", "item": {"role": "user", "content": [
        {"type": "input_audio", "audio": "%%%"}]}},
     ErrorCode.INVALID_BASE64, "item.content.0.audio"),
]


@pytest.mark.parametrize("message, code, param", BAD_MESSAGES)
def test_every_bad_message_maps_to_a_stable_code(message, code, param):
    error = refused(message)
    assert (error.code, error.param) == (code, param)
    assert error.message


def test_a_bad_message_keeps_its_event_id():
    error = refused({"type": "input_audio_buffer.append", "audio": "@@", "event_id": "ev_7"})
    assert error.event_id == "ev_7"


def test_over_size_messages_are_refused_before_parsing():
    message = json.dumps({"type": "input_audio_buffer.append", "audio": "A" * 2000})
    assert refused(message, max_bytes=1000).code is ErrorCode.MESSAGE_TOO_LARGE
    assert refused("x" * 2000, max_bytes=1000).code is ErrorCode.MESSAGE_TOO_LARGE


def test_error_event_type_tells_client_from_server_faults():
    client = p.ErrorEvent.of(ProtocolError(ErrorCode.INVALID_JSON, "bad", event_id="e"))
    server = p.ErrorEvent.of(ProtocolError(ErrorCode.ENGINE_BUSY, "busy"))
    assert client.error.type == "invalid_request_error" and client.error.event_id == "e"
    assert server.error.type == "server_error"


# ---------------------------------------------------------------- server events


def _items() -> tuple[p.Item, p.Item]:
    user = p.Item(id="item_u", status="completed", role="user",
                  content=[p.ContentPart(type="input_audio", transcript=None)])
    reply = p.Item(id="item_a", status="in_progress", role="assistant",
                   content=[p.ContentPart(type="audio", transcript="")])
    return user, reply


def every_server_event() -> list[p.ServerEvent]:
    user, reply = _items()
    response = p.Response(id="resp_1", status="in_progress", conversation_id="conv_1",
                          modalities=["audio"])
    done = response.model_copy(update={
        "status": "cancelled", "output": [reply],
        "status_details": p.ResponseStatusDetails(type="cancelled", reason="turn_detected"),
        "usage": p.Usage(total_tokens=30, input_tokens=20, output_tokens=10,
                         input_token_details=p.InputTokenDetails(cached_tokens=12))})
    session = p.SessionState(id="sess_1", model="icot-demo", chain="A-T-A",
                             modalities=["audio"], input_rate=24000, output_rate=24000,
                             turn_detection=p.TurnDetection(type="server_vad", threshold=0.5,
                                                            prefix_padding_ms=300,
                                                            silence_duration_ms=500))
    part = {"response_id": "resp_1", "item_id": "item_a"}
    return [
        p.ErrorEvent.of(ProtocolError(ErrorCode.INVALID_BASE64, "bad", param="audio")),
        p.SessionCreated(session=session), p.SessionUpdated(session=session),
        p.SpeechStarted(audio_start_ms=1000, item_id="item_u"),
        p.SpeechStopped(audio_end_ms=2500, item_id="item_u"),
        p.BufferCommitted(item_id="item_u", previous_item_id=None), p.BufferCleared(),
        p.ItemCreated(previous_item_id=None, item=user),
        p.ItemDone(previous_item_id="item_u", item=reply),
        p.ItemTruncated(item_id="item_a", content_index=0, audio_end_ms=800),
        p.ItemDeleted(item_id="item_u"),
        p.InputTranscriptionDelta(item_id="item_u", delta="what is"),
        p.InputTranscriptionCompleted(item_id="item_u", transcript="what is two plus three",
                                      usage=p.TranscriptionUsage(seconds=1.6)),
        p.ResponseCreated(response=response), p.ResponseDone(response=done),
        p.OutputItemAdded(response_id="resp_1", item=reply),
        p.OutputItemDone(response_id="resp_1", item=reply),
        p.ContentPartAdded(**part, part=p.ContentPart(type="audio", transcript="")),
        p.ContentPartDone(**part, part=p.ContentPart(type="audio", transcript="two")),
        p.AudioDelta(**part, delta=B64), p.AudioDone(**part),
        p.TranscriptDelta(**part, delta="two "), p.TranscriptDone(**part, transcript="two"),
    ]


GA_ADAPTER = TypeAdapter(GaServerEvent)
BETA_ADAPTER = TypeAdapter(BetaServerEvent)


@pytest.mark.parametrize("event", every_server_event(), ids=lambda e: e.type)
def test_every_server_event_validates_against_the_openai_sdk_in_both_dialects(event):
    ga = json.loads(p.render(event, Dialect.GA))
    assert GA_ADAPTER.validate_python(ga).type == ga["type"]
    beta_text = p.render(event, Dialect.BETA)
    if event.type in p.GA_ONLY:
        assert beta_text is None
        return
    beta = json.loads(beta_text)
    assert beta["type"] == event.type
    assert BETA_ADAPTER.validate_python(beta).type == event.type


@pytest.mark.parametrize("beta, ga", [
    ("response.audio.delta", "response.output_audio.delta"),
    ("response.audio.done", "response.output_audio.done"),
    ("response.audio_transcript.delta", "response.output_audio_transcript.delta"),
    ("response.audio_transcript.done", "response.output_audio_transcript.done"),
    ("conversation.item.created", "conversation.item.added"),
    ("response.done", "response.done"),
    ("input_audio_buffer.speech_started", "input_audio_buffer.speech_started"),
])
def test_ga_names(beta, ga):
    event = next(e for e in every_server_event() if e.type == beta)
    assert json.loads(p.render(event, Dialect.GA))["type"] == ga
    assert json.loads(p.render(event, Dialect.BETA))["type"] == beta


def test_assistant_audio_content_is_output_audio_in_ga_only():
    event = next(e for e in every_server_event() if isinstance(e, p.OutputItemAdded))
    assert json.loads(p.render(event, Dialect.GA))["item"]["content"][0]["type"] == "output_audio"
    assert json.loads(p.render(event, Dialect.BETA))["item"]["content"][0]["type"] == "audio"


def test_session_and_response_shapes_per_dialect():
    created = next(e for e in every_server_event() if isinstance(e, p.SessionCreated))
    ga = json.loads(p.render(created, Dialect.GA))["session"]
    beta = json.loads(p.render(created, Dialect.BETA))["session"]
    assert ga["type"] == "realtime" and ga["output_modalities"] == ["audio"]
    assert ga["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert ga["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 500
    assert beta["input_audio_format"] == "pcm16" and beta["modalities"] == ["audio"]
    assert beta["turn_detection"]["type"] == "server_vad"
    done = next(e for e in every_server_event() if isinstance(e, p.ResponseDone))
    ga_response = json.loads(p.render(done, Dialect.GA))["response"]
    assert ga_response["status_details"] == {"type": "cancelled", "reason": "turn_detected",
                                             "error": None}
    assert ga_response["audio"]["output"]["format"]["rate"] == 24000
    assert json.loads(p.render(done, Dialect.BETA))["response"]["output_audio_format"] == "pcm16"


def test_sixteen_khz_is_named_by_an_explicit_format_object_in_beta():
    state = p.SessionState(id="s", model="m", chain="A-T-A", modalities=["audio"],
                           input_rate=16000, output_rate=24000, turn_detection=None)
    beta = json.loads(p.render(p.SessionUpdated(session=state), Dialect.BETA))["session"]
    assert beta["input_audio_format"] == {"type": "audio/pcm", "rate": 16000}
    assert beta["turn_detection"] is None
