"""Server configuration: one typed dataclass, filled from CLI flags over `ICOT_…` variables.

Every field of `ServerSettings` is an `icot serve` flag (`--max-message-bytes`) and an environment
variable (`ICOT_MAX_MESSAGE_BYTES`); a flag wins over the variable, the variable over the default.
The text of each is read as the field's type by the config loader's `parse_text`
(model/config_loader.py); the frozen dataclass validates itself, so a bad value fails at start-up
with the option's name. Nothing here loads a model or opens a socket.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from model.config_loader import FieldError, field_types, from_data, parse_text, require
from server.cors import check_origin

ENV_PREFIX = "ICOT_"
LOG_FORMATS = ("json", "text")
LOG_LEVELS = ("debug", "info", "warning", "error")
DEVICES = ("auto", "cpu", "cuda")


def _option(default: Any, help_text: str) -> Any:
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class ServerSettings:
    """Everything `icot serve` can be told; defaults are the limits named in docs/reliability.md."""

    bundle: Path = _option(Path("checkpoints/demo"), "bundle directory to serve")
    host: str = _option("127.0.0.1", "address to listen on")
    port: int = _option(8000, "TCP port to listen on (0 picks a free port)")
    device: str = _option("auto", "torch device for the engine: auto, cpu or cuda")
    slots: int = _option(4, "engine slots = concurrent sessions and REST requests admitted")
    threads: int | None = _option(None, "torch intra-op threads (default: torch's choice; 1 is "
                                        "best on a small shared CPU)")
    max_seq_len: int | None = _option(None, "engine KV-cache length per slot (bundle default)")
    api_key: str | None = _option(None, "require this API key (bearer or subprotocol)")
    allowed_origins: tuple[str, ...] = _option((), "browser origins besides the server's own "
                                               "that may use it (comma-separated "
                                               "scheme://host[:port], or *)")
    page_client_secrets: bool = _option(False, "with an API key: mint a short-lived client "
                                              "secret for every load of the page at / "
                                              "(docs/clients.md)")
    max_message_bytes: int = _option(21 << 20, "largest WebSocket message accepted (21 MiB: "
                                     "an append of 15 MiB of audio in base64)")
    max_upload_bytes: int = _option(32 << 20, "largest REST request body accepted")
    max_turn_audio_s: float = _option(60.0, "longest user turn (audio seconds)")
    max_session_audio_s: float = _option(1800.0, "most audio one session may send (seconds)")
    idle_timeout_s: float = _option(300.0, "close a session silent for this long (seconds)")
    drain_timeout_s: float = _option(30.0, "on SIGTERM, how long in-flight responses may finish")
    retry_after_s: int = _option(1, "Retry-After seconds sent with HTTP 503")
    vad_threshold: float = _option(0.5, "default server_vad speech probability threshold")
    vad_prefix_padding_ms: int = _option(300, "default audio kept before detected speech (ms)")
    vad_silence_duration_ms: int = _option(500, "default silence that ends a turn (ms)")
    transcription_model: str = _option("tiny.en", "input transcription ASR: tiny.en (the "
                                       "packaged Whisper weights) or a faster-whisper model dir")
    transcription_device: str = _option("cpu", "device for input transcription: cpu or cuda")
    log_level: str = _option("info", "log level: debug, info, warning or error")
    log_format: str = _option("json", "log format: json (one object a line) or text")

    def __post_init__(self) -> None:
        object.__setattr__(self, "bundle", Path(self.bundle))
        require(0 <= self.port <= 65535, "port", f"must be in 0..65535, got {self.port}")
        require(self.device in DEVICES, "device",
                f"must be one of {', '.join(DEVICES)}, got {self.device!r}")
        require(self.slots >= 1, "slots", f"must be ≥ 1, got {self.slots}")
        for name in ("threads", "max_seq_len"):
            value = getattr(self, name)
            require(value is None or value >= 1, name, f"must be ≥ 1, got {value}")
        require(self.api_key is None or bool(self.api_key.strip()), "api_key",
                "must not be empty; leave it unset to turn auth off")
        for origin in self.allowed_origins:
            check_origin(origin)
        positive = ("max_message_bytes", "max_upload_bytes", "max_turn_audio_s",
                    "max_session_audio_s", "idle_timeout_s", "retry_after_s")
        for name in positive:
            require(getattr(self, name) > 0, name, f"must be > 0, got {getattr(self, name)}")
        require(self.drain_timeout_s >= 0, "drain_timeout_s",
                f"must be ≥ 0, got {self.drain_timeout_s}")
        require(self.max_turn_audio_s <= self.max_session_audio_s, "max_turn_audio_s",
                "must not exceed max_session_audio_s")
        require(0.0 < self.vad_threshold < 1.0, "vad_threshold",
                f"must be in (0, 1), got {self.vad_threshold}")
        require(self.vad_prefix_padding_ms >= 0, "vad_prefix_padding_ms", "must be ≥ 0")
        require(self.vad_silence_duration_ms > 0, "vad_silence_duration_ms", "must be > 0")
        require(self.transcription_device in ("cpu", "cuda"), "transcription_device",
                f"must be cpu or cuda, got {self.transcription_device!r}")
        require(self.log_level in LOG_LEVELS, "log_level",
                f"must be one of {', '.join(LOG_LEVELS)}")
        require(self.log_format in LOG_FORMATS, "log_format",
                f"must be one of {', '.join(LOG_FORMATS)}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerSettings:
        """Defaults overridden by every `ICOT_<FIELD>` variable that is set."""
        environ = os.environ if environ is None else environ
        values = {}
        for name, kind in field_types(cls).items():
            raw = environ.get(env_name(name))
            if raw is not None:
                values[name] = _parse(name, kind, raw)
        return from_data(cls, values, source="ICOT_ variables")

    def with_args(self, args: argparse.Namespace) -> ServerSettings:
        """These settings with every flag the user gave on the command line applied."""
        given = {
            f.name: getattr(args, f.name)
            for f in fields(self)
            if getattr(args, f.name, None) is not None
        }
        return replace(self, **given)


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per settings field; unset flags stay None so the environment can fill them."""
    kinds = field_types(ServerSettings)
    for f in fields(ServerSettings):
        default = f.default if f.default is not MISSING else None
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            type=lambda raw, name=f.name, kind=kinds[f.name]: _parse(name, kind, raw),
            default=None,
            help=f"{f.metadata['help']} (env {env_name(f.name)}; default {default})",
        )


def _parse(name: str, kind: Any, raw: str) -> Any:
    """Read the text of a flag or variable as the field's type; a bad text names both."""
    try:
        return parse_text(kind, raw, name)
    except FieldError as exc:
        raise ValueError(f"{env_name(name)} / --{name.replace('_', '-')}: {exc.message}") from None
