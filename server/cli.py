"""`icot serve`: the server's command line — every setting a flag over its `ICOT_…` variable.

`configure` adds one flag per `ServerSettings` field (server/settings.py); `run` fills the settings
(flags over variables over defaults), loads the bundle and serves it until stopped
(server/serve.py). Only `run` imports the app, the model and torch, so listing the command stays
light. Knows nothing of the other `icot` commands.
"""

from __future__ import annotations

import argparse
import sys

from server.logs import configure_logging
from server.settings import ServerSettings, add_arguments


def configure(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Serve the bundle; a bundle that cannot load prints one line to stderr and returns 2, an
    engine failure while serving returns 1."""
    settings = ServerSettings.from_env().with_args(args)
    configure_logging(settings.log_level, settings.log_format)
    from model.runtime import Runtime, RuntimeConfig
    from server.app import create_app
    from server.serve import serve_app

    if settings.threads is not None:
        import torch

        torch.set_num_threads(settings.threads)
    try:
        runtime = Runtime.load(settings.bundle, RuntimeConfig(
            device=_device(settings.device), max_slots=settings.slots,
            max_seq_len=settings.max_seq_len))
    except (OSError, ValueError) as exc:
        print(f"icot serve: cannot load bundle {settings.bundle}: {exc}", file=sys.stderr)
        return 2
    return serve_app(create_app(settings, runtime), settings)


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
