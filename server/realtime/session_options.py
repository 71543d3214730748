"""A realtime session's configuration, and what one `session.update` makes of it.

`SessionOptions.updated` validates a whole update before anything changes (a refused update
changes nothing) and never refuses an update for a field it can map or ignore: `semantic_vad`
arrives already mapped onto the server VAD (client_events.py), G.711 formats are served, and
`instructions`, `voice`, `tools`, `tool_choice`, `temperature` and `max_output_tokens` are kept
and echoed though the bundle fixes voice and behaviour. `state` renders the options as the
`session` object. Pure values: no audio, no socket.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from server.errors import ErrorCode, ProtocolError
from server.realtime import server_events as out
from server.realtime.client_events import AudioFormat, Modalities, SessionConfig, Transcription
from server.realtime.turn_settings import TurnSettings
from server.vad import VadConfig


def output_modalities(requested: Modalities | None, current: tuple[str, ...],
                      param: str) -> tuple[str, ...]:
    """`("audio",)` (speech with its transcript) whenever audio is asked for, `("text",)` for
    text only; `current` when nothing is asked."""
    if requested is None:
        return current
    if "audio" in requested:
        return ("audio",)
    if "text" in requested:
        return ("text",)
    raise ProtocolError(ErrorCode.INVALID_VALUE, "output modalities must name audio or text",
                        param=param)


@dataclass(frozen=True)
class SessionOptions:
    """Everything a client has configured; `echoed` holds the accepted-and-echoed fields."""

    chain: str
    turns: TurnSettings
    input_format: AudioFormat = field(default_factory=AudioFormat)
    output_format: AudioFormat = field(default_factory=AudioFormat)
    modalities: tuple[str, ...] = ("audio",)
    transcription: Transcription | None = None
    echoed: dict[str, Any] = field(default_factory=dict)

    def updated(self, config: SessionConfig, *, chains: Sequence[str],
                vad_defaults: VadConfig) -> SessionOptions:
        """These options after `config`, or a `ProtocolError` (then nothing changes)."""
        if config.chain is not None and config.chain not in chains:
            raise ProtocolError(ErrorCode.UNSUPPORTED_VALUE,
                                f"chain {config.chain!r} is not available; this bundle offers "
                                + ", ".join(chains), param="session.chain")
        changes: dict[str, Any] = {
            "modalities": output_modalities(config.requested_modalities(), self.modalities,
                                            "session.output_modalities")}
        if config.chain is not None:
            changes["chain"] = config.chain
        if config.turn_detection_given():
            changes["turns"] = self.turns.updated(config.new_turn_detection(), vad_defaults)
        if (fmt := config.input_format()) is not None:
            changes["input_format"] = fmt
        if (fmt := config.output_format()) is not None:
            changes["output_format"] = fmt
        if config.transcription_given():
            changes["transcription"] = config.new_transcription()
        given = {"instructions": config.instructions, "voice": config.requested_voice(),
                 "tools": config.tools, "tool_choice": config.tool_choice,
                 "temperature": config.temperature,
                 "max_output_tokens": config.requested_max_output_tokens()}
        changes["echoed"] = {**self.echoed,
                             **{key: value for key, value in given.items() if value is not None}}
        return replace(self, **changes)

    def state(self, session_id: str, model: str) -> out.SessionState:
        return out.SessionState(
            id=session_id, model=model, chain=self.chain, modalities=list(self.modalities),
            input_rate=self.input_format.rate, output_rate=self.output_format.rate,
            input_format=self.input_format.type, output_format=self.output_format.type,
            turn_detection=self.turns.wire(), transcription=self.transcription, **self.echoed)
