"""A live `icot serve` of the demo bundle for the reliability suites, and what they read back.

`LiveServer.start(**limits)` runs the real command in its own process (bench/load.py's
`ServerProcess`: loopback port, `--threads 1`, log to a file); the suites drive it over its
sockets only and read its health back from `/metrics`, `/readyz`, `/proc/<pid>` and its log.
`dialogue` and `rest_question` are the "normal use succeeds right after" checks every case ends
with.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from realtime_client import Client, pcm_b64

from bench.load import ServerProcess
from model.audio import wav_bytes

ROOT = Path(__file__).parents[2]
DEMO = ROOT / "checkpoints" / "demo"
QUESTION = "what is two plus three"
WIRE_RATE_HZ = 24_000


@dataclass
class LiveServer:
    process: ServerProcess
    log_path: Path

    @classmethod
    @contextlib.contextmanager
    def start(cls, log_path: Path, *, slots: int = 4, **settings: object) -> Iterator[LiveServer]:
        """`icot serve checkpoints/demo --threads 1` with `settings` as flags; stopped (SIGTERM
        drain) afterwards, which must exit 0."""
        extra = [f"--{name.replace('_', '-')}={value}" for name, value in settings.items()]
        with ServerProcess.started(str(DEMO), slots=slots, threads=1, extra=extra,
                                   log_path=log_path) as process:
            live = cls(process, log_path)
            yield live
            assert live.process.stop() == 0, live.log_tail()

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def ws_url(self) -> str:
        return self.process.ws_url

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.process.poll() is None

    def metrics(self) -> dict[str, float]:
        """Every unlabelled sample and labelled sample of /metrics, by its full name."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
        return values

    def gauge(self, name: str) -> float:
        return self.metrics()[name]

    def errors_by_code(self) -> dict[str, float]:
        found = {}
        for name, value in self.metrics().items():
            match = re.fullmatch(r'icot_errors_total\{code="([a-z_]+)"\}', name)
            if match:
                found[match.group(1)] = value
        return found

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def ready(self) -> bool:
        return httpx.get(f"{self.url}/readyz", timeout=10).status_code == 200

    def wait_idle(self, timeout_s: float = 10.0) -> None:
        """Until no session is open and no engine slot or queued response is left."""
        deadline = time.monotonic() + timeout_s
        while True:
            m = self.metrics()
            idle = (m["icot_active_sessions"], m["icot_engine_slots_in_use"],
                    m["icot_queue_depth"])
            if idle == (0, 0, 0):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"sessions, slots, queue still {idle}")
            time.sleep(0.05)

    def log_lines(self) -> list[dict]:
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                lines.append(json.loads(raw))
        return lines

    def crashes(self) -> list[str]:
        """Log lines at error level or with a traceback: what a crash leaves behind."""
        text = self.log_path.read_text(errors="replace")
        bad = [line for line in text.splitlines()
               if '"level": "error"' in line or '"level": "critical"' in line
               or "Traceback" in line]
        return bad

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


async def open_session(live: LiveServer, *, manual: bool = True) -> Client:
    """A session past `session.created` (and, with `manual`, turn detection off)."""
    client = await Client.open(live.ws_url)
    await client.until("session.created")
    if manual:
        await client.send(type="session.update", session={"turn_detection": None})
        await client.until("session.updated")
    return client


async def dialogue(client: Client, question: np.ndarray) -> dict:
    """A normal spoken turn on `client`'s session: buffer cleared, PCM16 at 24 kHz, manual
    commit; the reply must complete with audio and no `error` event may come. The response."""
    await client.send(type="input_audio_buffer.clear")
    await client.until("input_audio_buffer.cleared")
    await client.send(type="session.update", session={
        "turn_detection": None, "output_modalities": ["audio"],
        "audio": {"input": {"format": {"type": "audio/pcm", "rate": WIRE_RATE_HZ}}}})
    await client.until("session.updated")
    await client.send(type="input_audio_buffer.append", audio=pcm_b64(question, WIRE_RATE_HZ))
    await client.send(type="input_audio_buffer.commit")
    await client.send(type="response.create")
    events = await client.until("response.done", timeout_s=60)
    response = events[-1]["response"]
    assert response["status"] == "completed", response
    assert any(e["type"] == "response.output_audio.delta" for e in events)
    return response


async def fresh_dialogue(live: LiveServer, question: np.ndarray) -> None:
    """A new session holds a normal dialogue (the server goes on)."""
    client = await open_session(live)
    try:
        await dialogue(client, question)
    finally:
        await client.close()


def rest_question(live: LiveServer, question: np.ndarray) -> None:
    """A normal REST question is answered with speech (the server goes on)."""
    answer = httpx.post(f"{live.url}/v1/speech-to-speech", content=wav_bytes(question, 16_000),
                        timeout=60)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "audio/wav" and len(answer.content) > 10_000


async def until_error(client: Client, timeout_s: float = 30.0) -> dict:
    """The next `error` event (other events before it are skipped); its `error` object."""
    events = await client.until(lambda e: e["type"] == "error", timeout_s)
    return events[-1]["error"]


def run(coro):  # noqa: ANN001, ANN201 - a sync test's way into one coroutine
    return asyncio.run(coro)
