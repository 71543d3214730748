"""A stage's JSON-lines logs (log.jsonl, monitor.jsonl): append while training, read afterwards.

Pure files: no torch, so the results page can read a run's logs without the training stack.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class RunLog:
    """Appends JSON lines; on resume, drops lines written after the checkpoint's step."""

    def __init__(self, path: Path, keep_through_step: int | None, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled
        if not enabled:
            return
        if keep_through_step is None:
            path.unlink(missing_ok=True)
        elif path.is_file():
            kept = [line for line in path.read_text(encoding="utf-8").splitlines()
                    if line and json.loads(line)["step"] <= keep_through_step]
            path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def write(self, entry: dict[str, Any]) -> None:
        if self.enabled:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")


def read_log(path: Path) -> list[dict[str, Any]]:
    """The entries of a log.jsonl or monitor.jsonl ([] when absent)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
