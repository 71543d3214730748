"""`icot serve` (server/cli.py, unchanged) with a fault switch in the engine, for the engine
failure test.

Usage: python tests/reliability/faulty_serve.py TRIGGER_FILE [icot serve flags]

The loaded model's token embedding gets a torch forward pre-hook that raises while TRIGGER_FILE
exists; the engine calls it in every prefill and decode step (model/llama_forward.py), so
creating the file makes the next engine step raise inside the engine thread, as a real device
or kernel failure would. Nothing of the server is replaced.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.runtime import Runtime
from server import cli


class InjectedEngineFault(RuntimeError):
    pass


def install(trigger: Path) -> None:
    """Make every runtime loaded from now on carry the fault switch."""
    load = Runtime.load.__func__

    def load_with_switch(cls: type[Runtime], bundle_dir, config=None) -> Runtime:  # noqa: ANN001
        runtime = load(cls, bundle_dir, config)

        def fault(module: object, args: object) -> None:
            if trigger.exists():
                raise InjectedEngineFault("injected engine fault")

        runtime.bundle.model.model.embed_tokens.register_forward_pre_hook(fault)
        return runtime

    Runtime.load = classmethod(load_with_switch)


if __name__ == "__main__":
    install(Path(sys.argv[1]))
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    sys.exit(cli.run(parser.parse_args(sys.argv[2:])))
