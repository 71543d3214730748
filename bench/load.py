"""Concurrent realtime sessions against one server: TTFA, audio real-time factor, errors, RSS.

    icot bench load                                   # 1, 4 and 8 sessions on checkpoints/demo
    icot bench load --sessions 1 4 8 12 --threads 1   # one torch thread, as on a 2-core box
    icot bench load --url ws://host:8000/v1/realtime  # a server already running (no RSS)
    icot bench load --sessions 4 --duration 1800      # soak: 4 users for 30 minutes

Unless `--url` is given, the bench starts `icot serve` (a separate process, on loopback, with
`--slots` the largest session count) and stops it with SIGTERM at the end. For each session count
N, N sessions run at once, starting 0.1 s apart. Each session is a user speaking several turns:
it streams espeak-ng speech at real-time pace (100 ms appends, 24 kHz PCM16, manual turn
detection), commits, asks for a response, reads it to `response.done`, then "listens" until the
reply would have finished playing and pauses before its next turn. Every turn is a different
demo-domain utterance (a repeated one would find its whole prompt in the engine's prefix cache).

Per response: TTFA (commit → first `response.output_audio.delta`), and the real-time factor
(RTF) of the audio after the first chunk: the time the server took to send it over its playing
time. A client that starts playing at the first chunk runs dry when a chunk comes later than the
audio before it lasts; such responses are counted ("ran dry", > 50 ms short). Errors: error
events, sessions refused or closed by the server, responses that did not complete. Server: the
cores the served process kept busy (its CPU time over the wall time), its resident memory before
the load and its peak during it (Linux /proc).
With `--duration S` (a soak; one session count) every user keeps taking turns, cycling through
its utterances, until S seconds have passed; after a warm-up round and again at the end, with
the server idle, the served process's RSS, open file descriptors and session and slot gauges are
read (bench/soak.py) and a summary line says whether they held (RSS growth ≤ 5 %, no fd, session
or slot left over, zero errors); the exit status is 1 when they did not.
Prints one markdown row per session count. The bench reaches the server only through its
sockets and /proc; it imports nothing of server/.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.latency import WIRE_RATE_HZ, _speak
from bench.soak import SoakReport, idle_snapshot, rss_mib

APPEND_MS = 100
START_SPACING_S = 0.1
THINK_S = 0.5  # the user's pause between the end of a reply and their next turn
DRY_TOLERANCE_S = 0.05
RESPONSE_TIMEOUT_S = 120.0
READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ResponseTiming:
    """One response as the client saw it: `chunks` are (arrival s, audio s) of each delta,
    arrival times relative to the commit."""

    chunks: list[tuple[float, float]]

    @property
    def ttfa_s(self) -> float:
        return self.chunks[0][0]

    @property
    def audio_s(self) -> float:
        return sum(duration for _, duration in self.chunks)

    @property
    def rtf(self) -> float | None:
        """Sending time of the audio after the first chunk over its playing time (None: one
        chunk only)."""
        playing = self.audio_s - self.chunks[0][1]
        if playing <= 0:
            return None
        return (self.chunks[-1][0] - self.chunks[0][0]) / playing

    @property
    def dry_s(self) -> float:
        """Longest wait of a player that started at the first chunk: 0 when it never ran dry."""
        start, played, worst = self.chunks[0][0], 0.0, 0.0
        for arrival, duration in self.chunks:
            worst = max(worst, arrival - (start + played))
            played += duration
        return worst


@dataclass
class LevelResult:
    """Everything measured at one session count."""

    sessions: int
    responses: list[ResponseTiming] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rss_idle_mib: float | None = None
    rss_peak_mib: float | None = None
    wall_s: float = 0.0
    cpu_s: float | None = None  # CPU time the served process used meanwhile (all threads)

    @property
    def cores(self) -> float | None:
        """Cores the served process kept busy on average while the sessions ran."""
        return None if self.cpu_s is None or self.wall_s <= 0 else self.cpu_s / self.wall_s


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 4, 8],
                        help="concurrent session counts to measure, in order")
    parser.add_argument("--turns", type=int, default=3, help="turns per session")
    parser.add_argument("--bundle", default="checkpoints/demo", help="bundle to serve")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of the served process (icot serve --threads)")
    parser.add_argument("--device", default="cpu", help="device of the served process")
    parser.add_argument("--url", default=None,
                        help="WebSocket URL of a running server (nothing is started)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the utterance draw")
    parser.add_argument("--voice", default="en-us", help="espeak-ng voice of the user")
    parser.add_argument("--duration", type=float, default=None,
                        help="soak: keep every user talking for this many seconds (one "
                             "session count; reports RSS, fd and slot growth)")


def run(args: argparse.Namespace) -> int:
    if min(args.sessions) < 1 or args.turns < 1:
        raise SystemExit("icot bench load: --sessions and --turns must be ≥ 1")
    if args.duration is not None and (len(args.sessions) != 1 or args.url is not None):
        raise SystemExit("icot bench load --duration: one session count, a server it starts")
    with tempfile.TemporaryDirectory(prefix="icot-load-") as scratch:
        speech = _utterances(sum(args.sessions) * args.turns, args, Path(scratch))
        with contextlib.ExitStack() as stack:
            if args.url is None:
                server = stack.enter_context(ServerProcess.started(
                    args.bundle, slots=max(args.sessions), threads=args.threads,
                    device=args.device))
                url, pid = server.ws_url, server.pid
            else:
                url, pid = args.url, None
            if args.duration is not None:
                report = soak(server, speech, args.sessions[0], args.turns, args.duration)
                print(report.summary())
                return 0 if report.held else 1
            results, offset = [], 0
            for count in args.sessions:
                per_session = [speech[offset + i * args.turns:offset + (i + 1) * args.turns]
                               for i in range(count)]
                offset += count * args.turns
                results.append(asyncio.run(measure_level(url, per_session, pid)))
    print(table(results, args.turns))
    return 0


def _utterances(count: int, args: argparse.Namespace, scratch: Path) -> list[np.ndarray]:
    """`count` spoken demo-domain utterances, distinct as long as the domain has enough."""
    from training.data.domain import sample_turns

    drawn = sample_turns(args.seed, 8 * count)
    distinct = list(dict.fromkeys(turn.user for turn in drawn))
    texts = [distinct[i % len(distinct)] for i in range(count)]
    return [_speak(text, args.voice, scratch / f"u{i}.wav") for i, text in enumerate(texts)]


def soak(server: ServerProcess, speech: list[np.ndarray], sessions: int, turns: int,
         duration_s: float) -> SoakReport:
    """A warm-up round (one turn each), then `sessions` users talking for `duration_s`; the
    served process idle before and after."""
    per_session = [speech[i * turns:(i + 1) * turns] for i in range(sessions)]
    warm = asyncio.run(measure_level(server.ws_url, [t[:1] for t in per_session], server.pid))
    before = idle_snapshot(server.pid, server.url)
    until = time.perf_counter() + duration_s
    result = asyncio.run(measure_level(server.ws_url, per_session, server.pid, until=until))
    return SoakReport(before=before, after=idle_snapshot(server.pid, server.url),
                      duration_s=result.wall_s, responses=len(result.responses),
                      errors=warm.errors + result.errors)


async def measure_level(url: str, per_session: list[list[np.ndarray]],
                        pid: int | None, until: float | None = None) -> LevelResult:
    """Run one session per entry of `per_session` at once; sample the server's RSS meanwhile.
    With `until` (a `time.perf_counter()` value) users cycle through their turns until then."""
    result = LevelResult(len(per_session), rss_idle_mib=rss_mib(pid))
    peak = [result.rss_idle_mib or 0.0]

    async def sample_rss() -> None:
        while True:
            peak[0] = max(peak[0], rss_mib(pid) or 0.0)
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample_rss())
    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    try:
        await asyncio.gather(*(_session(url, turns, i * START_SPACING_S, result, until)
                               for i, turns in enumerate(per_session)))
    finally:
        result.wall_s = time.perf_counter() - started
        cpu_after = cpu_seconds(pid)
        if cpu_before is not None and cpu_after is not None:
            result.cpu_s = cpu_after - cpu_before
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    result.rss_peak_mib = peak[0] if pid is not None else None
    return result


async def _session(url: str, turns: list[np.ndarray], delay_s: float,
                   result: LevelResult, until: float | None = None) -> None:
    """One user: connect, then speak, wait for the reply and listen to it, turn after turn
    (with `until`, cycling through `turns` until that `time.perf_counter()` value)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    await asyncio.sleep(delay_s)
    try:
        async with connect(url, max_size=None) as ws:
            await _expect(ws, "session.created")
            await ws.send(json.dumps({"type": "session.update",
                                      "session": {"turn_detection": None}}))
            await _expect(ws, "session.updated")
            for index in itertools.count():
                if (index >= len(turns) if until is None else time.perf_counter() >= until):
                    break
                timing = await _turn(ws, turns[index % len(turns)])
                if timing is None:
                    result.errors.append("response without audio or not completed")
                    continue
                result.responses.append(timing)
                listened = timing.chunks[0][0] + timing.audio_s - timing.chunks[-1][0]
                await asyncio.sleep(max(0.0, listened) + THINK_S)
    except ConnectionClosed as closed:
        code = closed.rcvd.code if closed.rcvd is not None else "none"
        result.errors.append(f"connection closed by the server ({code})")
    except (OSError, TimeoutError, RuntimeError) as exc:
        result.errors.append(f"{type(exc).__name__}: {exc}")


async def _expect(ws, kind: str) -> dict:
    event = json.loads(await asyncio.wait_for(ws.recv(), RESPONSE_TIMEOUT_S))
    if event["type"] != kind:
        raise RuntimeError(f"expected {kind}, got {event['type']}: {event.get('error')}")
    return event


async def _turn(ws, samples: np.ndarray) -> ResponseTiming | None:
    """Stream `samples` at real-time pace, commit, read the response to its end."""
    from model.audio import float_to_pcm16

    pcm = float_to_pcm16(samples)
    step = 2 * WIRE_RATE_HZ * APPEND_MS // 1000
    begin = time.perf_counter()
    for index, start in enumerate(range(0, len(pcm), step)):
        await asyncio.sleep(max(0.0, begin + index * APPEND_MS / 1000 - time.perf_counter()))
        chunk = base64.b64encode(pcm[start:start + step]).decode()
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
    committed = time.perf_counter()
    await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
    await ws.send(json.dumps({"type": "response.create"}))
    chunks: list[tuple[float, float]] = []
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), RESPONSE_TIMEOUT_S))
        if event["type"] == "error":
            raise RuntimeError(f"server error {event['error'].get('code')}")
        if event["type"] == "response.output_audio.delta":
            audio_s = len(base64.b64decode(event["delta"])) / (2 * WIRE_RATE_HZ)
            chunks.append((time.perf_counter() - committed, audio_s))
        if event["type"] == "response.done":
            completed = event["response"]["status"] == "completed"
            return ResponseTiming(chunks) if chunks and completed else None


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of process `pid` so far (Linux), None without a pid or /proc."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class ServerProcess:
    """`icot serve` in its own process on a free loopback port; `stop` sends SIGTERM (the
    drain) and waits for the exit status."""

    def __init__(self, args: list[str], port: int, env: dict[str, str] | None = None,
                 log_path: Path | None = None) -> None:
        self.port = port
        self._log = open(log_path, "wb") if log_path else subprocess.DEVNULL
        command = [sys.executable, "-m", "icot", "serve", "--host", "127.0.0.1",
                   "--port", str(port), *args]
        self.process = subprocess.Popen(command, stdout=self._log, stderr=self._log,
                                        env=env, cwd=Path(__file__).parents[1])

    @classmethod
    @contextlib.contextmanager
    def started(cls, bundle: str, *, slots: int, threads: int | None = None,
                device: str = "cpu", extra: list[str] | None = None,
                log_path: Path | None = None) -> Iterator[ServerProcess]:
        """Start, wait until /readyz answers 200, yield; stop (drain) on the way out."""
        args = ["--bundle", str(Path(bundle).resolve()), "--slots", str(slots),
                "--device", device, "--log-level", "warning", *(extra or [])]
        if threads is not None:
            args += ["--threads", str(threads)]
        server = cls(args, free_port(), log_path=log_path)
        try:
            server.wait_ready()
            yield server
        finally:
            server.stop()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"icot serve exited with {self.process.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"icot serve on port {self.port} was not ready in {timeout_s} s")

    def terminate(self) -> None:
        """SIGTERM: the server drains, then exits."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout_s: float = 60.0) -> int:
        """Drain and wait; SIGKILL if it does not exit in time. The exit status."""
        self.terminate()
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            return self.process.wait()
        finally:
            if self._log is not subprocess.DEVNULL:
                self._log.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def table(results: list[LevelResult], turns: int) -> str:
    lines = [f"Concurrent realtime sessions, {turns} spoken turns each at real-time pace "
             "(TTFA: commit → first audio, ms; RTF: sending time of the audio after the first "
             "chunk over its playing time)", "",
             "| sessions | responses | TTFA p50 | TTFA p95 | RTF p50 | RTF p95 | ran dry | "
             "errors | server cores busy | server RSS idle → peak (MiB) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        ttfa = [1000 * t.ttfa_s for t in r.responses]
        rtf = [x for x in (t.rtf for t in r.responses) if x is not None]
        dry = sum(t.dry_s > DRY_TOLERANCE_S for t in r.responses)
        ttfa_cells = (f"{np.percentile(ttfa, 50):.0f} | {np.percentile(ttfa, 95):.0f}"
                      if ttfa else "– | –")
        rtf_cells = (f"{np.percentile(rtf, 50):.2f} | {np.percentile(rtf, 95):.2f}"
                     if rtf else "– | –")
        cores = f"{r.cores:.2f}" if r.cores is not None else "–"
        rss = (f"{r.rss_idle_mib:.0f} → {r.rss_peak_mib:.0f}"
               if r.rss_idle_mib is not None and r.rss_peak_mib is not None else "–")
        lines.append(f"| {r.sessions} | {len(r.responses)}/{r.sessions * turns} | {ttfa_cells} | "
                     f"{rtf_cells} | {dry} | {len(r.errors)} | {cores} | {rss} |")
    errors = sorted({e for r in results for e in r.errors})
    if errors:
        lines += ["", "Errors: " + "; ".join(errors)]
    return "\n".join(lines)
