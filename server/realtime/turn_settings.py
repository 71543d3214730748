"""A session's turn detection settings: the wire's `turn_detection` object ↔ a `VadConfig`.

`TurnSettings.updated` applies a `session.update` (unset fields keep their values, `null` means
manual turns) and `wire` renders the settings back for `session.created|updated`. Pure values:
no audio, no session.
"""

from __future__ import annotations

from dataclasses import dataclass

from server.realtime.client_events import TurnDetection
from server.vad import VadConfig


@dataclass(frozen=True)
class TurnSettings:
    """Turn detection: `vad` None means manual commits and `response.create`."""

    vad: VadConfig | None
    create_response: bool = True
    interrupt_response: bool = True

    def updated(self, wire: TurnDetection | None, defaults: VadConfig) -> TurnSettings:
        """These settings after a `turn_detection` update; unset fields keep their values."""
        if wire is None:
            return TurnSettings(vad=None)
        base = self.vad or defaults
        vad = VadConfig(
            threshold=base.threshold if wire.threshold is None else wire.threshold,
            prefix_padding_ms=(base.prefix_padding_ms if wire.prefix_padding_ms is None
                               else wire.prefix_padding_ms),
            silence_duration_ms=(base.silence_duration_ms if wire.silence_duration_ms is None
                                 else wire.silence_duration_ms))
        return TurnSettings(
            vad=vad,
            create_response=(self.create_response if wire.create_response is None
                             else wire.create_response),
            interrupt_response=(self.interrupt_response if wire.interrupt_response is None
                                else wire.interrupt_response))

    def wire(self) -> TurnDetection | None:
        if self.vad is None:
            return None
        return TurnDetection(type="server_vad", threshold=self.vad.threshold,
                             prefix_padding_ms=self.vad.prefix_padding_ms,
                             silence_duration_ms=self.vad.silence_duration_ms,
                             create_response=self.create_response,
                             interrupt_response=self.interrupt_response)
