"""Speech codecs: the contract (base.py), streaming decoding (streaming.py) and the registry.

A bundle names its codec by kind (`bundle.json` → `codec.kind`); `load_codec` maps the kind to
the implementing class and loads its directory.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from model.codecs.base import SpeechCodec, StreamingSpec
from model.codecs.streaming import StreamingDecoder

CODEC_CLASSES: dict[str, str] = {
    "speechtokenizer": "model.codecs.speechtokenizer:SpeechTokenizerCodec",
    "units": "model.codecs.units:UnitCodec",
    "whisper-units": "model.codecs.heard_units:HeardUnitCodec",
}


def codec_class(kind: str) -> type[SpeechCodec]:
    """The class registered for `kind`; a clear error names the known kinds."""
    if kind not in CODEC_CLASSES:
        raise ValueError(f"unknown codec kind {kind!r}; known kinds: {', '.join(CODEC_CLASSES)}")
    module_name, class_name = CODEC_CLASSES[kind].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def load_codec(kind: str, directory: str | Path) -> SpeechCodec:
    """Load the codec of `kind` from `directory`."""
    return codec_class(kind).load(Path(directory))


__all__ = ["SpeechCodec", "StreamingDecoder", "StreamingSpec", "codec_class", "load_codec"]
