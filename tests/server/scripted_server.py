"""Serve the app with the ScriptedRuntime test double exactly as `icot serve` does (serve_app:
DrainingServer, signal handling in the main thread), for the SIGTERM drain test.

Usage: python tests/server/scripted_server.py PORT DRAIN_TIMEOUT_S CHUNK_DELAY_S
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from scripted_runtime import ScriptedRuntime  # noqa: E402

from model.audio import read_audio  # noqa: E402
from server.app import create_app  # noqa: E402
from server.logs import configure_logging  # noqa: E402
from server.serve import serve_app  # noqa: E402
from server.settings import ServerSettings  # noqa: E402


def speak(text: str) -> object:
    out = Path(f"/tmp/icot-scripted-server-{abs(hash(text))}.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", str(out), text], check=True)
    return read_audio(out, target_rate=16_000)[0]


if __name__ == "__main__":
    port, drain_s, delay_s = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    settings = ServerSettings(port=port, drain_timeout_s=drain_s, log_level="info")
    configure_logging(settings.log_level, settings.log_format)
    runtime = ScriptedRuntime(speak, chunk_delay_s=delay_s)
    serve_app(create_app(settings, runtime), settings)
