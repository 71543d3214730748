"""Server events of the Realtime protocol: every event rendered in both dialects and accepted by the
openai SDK's own models; GA names and shapes where they differ from beta's."""

from __future__ import annotations

import base64
import json

import pytest
from openai.types.beta.realtime import RealtimeServerEvent as BetaServerEvent
from openai.types.realtime import RealtimeServerEvent as GaServerEvent
from pydantic import TypeAdapter

from model.turn import TokenTally
from server.errors import ErrorCode, ProtocolError
from server.realtime import server_events as out
from server.realtime.client_events import Transcription, TurnDetection
from server.realtime.dialect import GA_ONLY, Dialect, render
from server.realtime.usage import response_usage, status_details

PCM = (b"\x01\x00\xff\x7f" * 8)  # 16 samples of PCM16
B64 = base64.b64encode(PCM).decode()


def test_error_event_type_tells_client_from_server_faults():
    client = out.ErrorEvent.of(ProtocolError(ErrorCode.INVALID_JSON, "bad", event_id="e"))
    server = out.ErrorEvent.of(ProtocolError(ErrorCode.ENGINE_BUSY, "busy"))
    assert client.error.type == "invalid_request_error" and client.error.event_id == "e"
    assert server.error.type == "server_error"


def _items() -> tuple[out.Item, out.Item]:
    user = out.Item(id="item_u", status="completed", role="user",
                  content=[out.ContentPart(type="input_audio", transcript=None)])
    reply = out.Item(id="item_a", status="in_progress", role="assistant",
                   content=[out.ContentPart(type="audio", transcript="")])
    return user, reply


def every_server_event() -> list[out.ServerEvent]:
    user, reply = _items()
    response = out.Response(id="resp_1", status="in_progress", conversation_id="conv_1",
                          modalities=["audio"])
    done = response.model_copy(update={
        "status": "cancelled", "output": [reply],
        "status_details": out.ResponseStatusDetails(type="cancelled", reason="turn_detected"),
        "metadata": {"client_event_id": "response_create_1"},
        "usage": response_usage(TokenTally(input_tokens=20, input_audio_tokens=14,
                                           cached_tokens=12, cached_audio_tokens=8,
                                           output_tokens=10, output_audio_tokens=7))})
    shutdown = done.model_copy(update={"status_details": status_details(
        "cancelled", "server_shutting_down", None)})
    g711 = out.SessionState(id="sess_2", model="icot-demo", chain="A-T-A",
                            modalities=["text"], input_rate=8000, output_rate=8000,
                            input_format="audio/pcmu", output_format="audio/pcma",
                            turn_detection=None, transcription=Transcription(model="whisper-1"),
                            instructions="be brief", voice="alloy", temperature=0.8,
                            tools=[], tool_choice="auto", max_output_tokens="inf")
    typed = out.Item(id="item_t", status="completed", role="user",
                     content=[out.ContentPart(type="input_text", text="hello")])
    text_reply = out.Item(id="item_x", status="completed", role="assistant",
                          content=[out.ContentPart(type="text", text="hi")])
    session = out.SessionState(id="sess_1", model="icot-demo", chain="A-T-A",
                             modalities=["audio"], input_rate=24000, output_rate=24000,
                             turn_detection=TurnDetection(type="server_vad", threshold=0.5,
                                                            prefix_padding_ms=300,
                                                            silence_duration_ms=500))
    part = {"response_id": "resp_1", "item_id": "item_a"}
    return [
        out.ErrorEvent.of(ProtocolError(ErrorCode.INVALID_BASE64, "bad", param="audio")),
        out.SessionCreated(session=session), out.SessionUpdated(session=session),
        out.SpeechStarted(audio_start_ms=1000, item_id="item_u"),
        out.SpeechStopped(audio_end_ms=2500, item_id="item_u"),
        out.BufferCommitted(item_id="item_u", previous_item_id=None), out.BufferCleared(),
        out.ItemCreated(previous_item_id=None, item=user),
        out.ItemDone(previous_item_id="item_u", item=reply),
        out.ItemTruncated(item_id="item_a", content_index=0, audio_end_ms=800),
        out.ItemDeleted(item_id="item_u"),
        out.InputTranscriptionDelta(item_id="item_u", delta="what is"),
        out.InputTranscriptionCompleted(item_id="item_u", transcript="what is two plus three",
                                      usage=out.TranscriptionUsage(seconds=1.6)),
        out.ResponseCreated(response=response), out.ResponseDone(response=done),
        out.OutputItemAdded(response_id="resp_1", item=reply),
        out.OutputItemDone(response_id="resp_1", item=reply),
        out.ContentPartAdded(**part, part=out.ContentPart(type="audio", transcript="")),
        out.ContentPartDone(**part, part=out.ContentPart(type="audio", transcript="two")),
        out.AudioDelta(**part, delta=B64), out.AudioDone(**part),
        out.OutputAudioTranscriptDelta(**part, delta="two "),
        out.OutputAudioTranscriptDone(**part, transcript="two"),
        # issue 16: G.711 and echoed session fields, reasons outside OpenAI's list, typed and
        # text items, retrieval, a failed transcription, text-only replies
        out.SessionUpdated(session=g711), out.ResponseDone(response=shutdown),
        out.ItemCreated(previous_item_id=None, item=typed),
        out.ItemRetrieved(item=user), out.ItemRetrieved(item=text_reply),
        out.InputTranscriptionFailed(item_id="item_u", error={
            "type": "server_error", "code": "transcription_failed", "message": "no"}),
        out.OutputTextDelta(**part, delta="hi"), out.OutputTextDone(**part, text="hi"),
    ]


GA_ADAPTER = TypeAdapter(GaServerEvent)
BETA_ADAPTER = TypeAdapter(BetaServerEvent)


@pytest.mark.parametrize("event", every_server_event(), ids=lambda e: e.type)
def test_every_server_event_validates_against_the_openai_sdk_in_both_dialects(event):
    ga = json.loads(render(event, Dialect.GA))
    assert GA_ADAPTER.validate_python(ga).type == ga["type"]
    beta_text = render(event, Dialect.BETA)
    if event.type in GA_ONLY:
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
    assert json.loads(render(event, Dialect.GA))["type"] == ga
    assert json.loads(render(event, Dialect.BETA))["type"] == beta


def test_assistant_audio_content_is_output_audio_in_ga_only():
    event = next(e for e in every_server_event() if isinstance(e, out.OutputItemAdded))
    assert json.loads(render(event, Dialect.GA))["item"]["content"][0]["type"] == "output_audio"
    assert json.loads(render(event, Dialect.BETA))["item"]["content"][0]["type"] == "audio"


def test_session_and_response_shapes_per_dialect():
    created = next(e for e in every_server_event() if isinstance(e, out.SessionCreated))
    ga = json.loads(render(created, Dialect.GA))["session"]
    beta = json.loads(render(created, Dialect.BETA))["session"]
    assert ga["type"] == "realtime" and ga["output_modalities"] == ["audio"]
    assert ga["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert ga["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 500
    assert beta["input_audio_format"] == "pcm16" and beta["modalities"] == ["audio"]
    assert beta["turn_detection"]["type"] == "server_vad"
    done = next(e for e in every_server_event() if isinstance(e, out.ResponseDone))
    ga_response = json.loads(render(done, Dialect.GA))["response"]
    assert ga_response["status_details"] == {"type": "cancelled", "reason": "turn_detected",
                                             "error": None}
    assert ga_response["audio"]["output"]["format"]["rate"] == 24000
    assert json.loads(render(done, Dialect.BETA))["response"]["output_audio_format"] == "pcm16"


def test_sixteen_khz_is_named_by_an_explicit_format_object_in_beta():
    state = out.SessionState(id="s", model="m", chain="A-T-A", modalities=["audio"],
                           input_rate=16000, output_rate=24000, turn_detection=None)
    beta = json.loads(render(out.SessionUpdated(session=state), Dialect.BETA))["session"]
    assert beta["input_audio_format"] == {"type": "audio/pcm", "rate": 16000}
    assert beta["turn_detection"] is None
