"""A live `icot serve` of the demo bundle for the framework tests, and espeak-ng speech at 24 kHz.

The server is the real command (`icot serve --bundle checkpoints/demo --threads 1`) in a child
process on a free loopback port; its JSON log goes to a file so a test can assert that the server
logged no warning or error. Speech comes from espeak-ng at 24 kHz, the rate every framework
sends by default.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.load import ServerProcess, free_port
from model.audio import float_to_pcm16, read_audio

REPO = Path(__file__).resolve().parents[2]
DEMO_BUNDLE = REPO / "checkpoints" / "demo"
WIRE_RATE_HZ = 24_000
READY_TIMEOUT_S = 240.0
API_KEY = "framework-test-key"


@dataclass
class LiveServer:
    """A running `icot serve`; `log_path` holds its JSON log lines."""

    port: int
    process: ServerProcess
    log_path: Path

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_records(self) -> list[dict]:
        records = []
        for line in self.log_path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                records.append({"level": "raw", "msg": line})
        return records

    def logged_errors(self) -> list[dict]:
        """Server log records at warning level or above, and tracebacks (the start-up's
        progress bars and library deprecation notices are not the server's)."""
        return [r for r in self.log_records()
                if r.get("level") in ("warning", "error", "critical")
                or (r.get("level") == "raw" and r["msg"].startswith("Traceback"))]


def start_server(log_path: Path, *extra: str) -> LiveServer:
    """`icot serve` of the demo bundle at info level in JSON, ready (/readyz 200) on return."""
    server = ServerProcess(
        ["--bundle", str(DEMO_BUNDLE), "--threads", "1", "--api-key", API_KEY,
         "--log-format", "json", *extra],
        free_port(), env={**os.environ, "PYTHONUNBUFFERED": "1"}, log_path=log_path)
    try:
        server.wait_ready(READY_TIMEOUT_S)
    except (RuntimeError, TimeoutError) as exc:
        server.stop()
        raise RuntimeError(f"{exc}: {log_path.read_text()[-2000:]}") from exc
    return LiveServer(server.port, server, log_path)


def stop_server(live: LiveServer) -> None:
    live.process.stop(timeout_s=20)  # SIGTERM: the graceful drain; SIGKILL after 20 s


def espeak_pcm(text: str, voice: str, wav: Path) -> bytes:
    """espeak-ng speech of `text` as PCM16 mono at 24 kHz (written through `wav`)."""
    subprocess.run(["espeak-ng", "-v", voice, "-s", "160", "-w", str(wav), text], check=True,
                   capture_output=True)
    samples, _ = read_audio(wav, target_rate=WIRE_RATE_HZ)
    return float_to_pcm16(samples)


def silence_pcm(seconds: float) -> bytes:
    return bytes(2 * int(seconds * WIRE_RATE_HZ))


def pcm_seconds(pcm: bytes) -> float:
    return len(pcm) / 2 / WIRE_RATE_HZ


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
