"""docker/nginx.conf for real: Debian's nginx on loopback in front of two `icot serve` processes
on the demo bundle. Sessions go through it over WebSocket; REST requests a full replica refuses
(503) are retried on the other; one replica is drained (SIGTERM) and stops: its response in flight
finishes, its session is closed with 1012, and new sessions and requests go to the other."""

from __future__ import annotations

import asyncio
import re
import subprocess

import httpx
import pytest
from processes import Nginx, nginx_binary, open_manual_session, render_nginx_conf, start_turn
from realtime_client import Client
from websockets.exceptions import ConnectionClosed

from bench.load import ServerProcess, free_port
from model.audio import wav_bytes

DEMO = "checkpoints/demo"
UPSTREAM_OPTIONS = "max_fails=2 fail_timeout=5s"


def _upstream_lines(ports: list[int]) -> list[str]:
    return [f"server 127.0.0.1:{port} {UPSTREAM_OPTIONS};" for port in ports]


def test_the_rendered_config_passes_nginx_t(tmp_path):
    config = render_nginx_conf(_upstream_lines([18001, 18002]), f"127.0.0.1:{free_port()}")
    (tmp_path / "nginx.conf").write_text(config)
    check = subprocess.run([nginx_binary(), "-t", "-p", str(tmp_path), "-c",
                            str(tmp_path / "nginx.conf"), "-e", str(tmp_path / "error.log"),
                            "-g", f"pid {tmp_path / 'nginx.pid'};"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert "syntax is ok" in check.stderr


def test_with_no_replica_left_nginx_answers_503_with_retry_after_and_survives_a_reload(
        tmp_path):
    port = free_port()
    nginx = Nginx(tmp_path, render_nginx_conf(_upstream_lines([free_port(), free_port()]),
                                              f"127.0.0.1:{port}"), port)
    try:
        nginx.wait_up()
        for _ in range(2):  # before and after a reload
            answer = httpx.post(f"{nginx.url}/v1/speech-to-speech", content=b"RIFF")
            assert answer.status_code == 503
            assert answer.headers["Retry-After"] == "1"
            assert answer.json()["error"]["code"] == "engine_busy"
            nginx.reload()
            nginx.wait_up()
    finally:
        nginx.stop()
    assert "[emerg]" not in nginx.error_log.read_text()


def _active_sessions(replica: ServerProcess) -> float:
    body = httpx.get(f"{replica.url}/metrics", timeout=5).text
    return float(re.search(r"^icot_active_sessions (\S+)$", body, re.M).group(1))


async def _open_retrying_on_1013(url: str, attempts: int = 40) -> Client:
    """A session, reconnecting after each 1013 (try again later) with a short pause."""
    for _ in range(attempts):
        try:
            return await open_manual_session(url)
        except ConnectionClosed as refused:
            assert refused.rcvd is not None and refused.rcvd.code == 1013
            await asyncio.sleep(0.25)
    raise AssertionError(f"no session after {attempts} attempts")


async def _finish_turn(client: Client) -> dict:
    events = await client.until("response.done", timeout_s=60)
    assert any(e["type"] == "response.output_audio.delta" for e in events)
    return events[-1]["response"]


@pytest.fixture
def replicas(tmp_path):
    """Two demo replicas (one torch thread, 3 slots each) started side by side."""
    servers = [ServerProcess(["--bundle", DEMO, "--threads", "1", "--slots", "3",
                              "--drain-timeout-s", "20", "--log-level", "warning"],
                             free_port(), log_path=tmp_path / f"replica{i}.log")
               for i in range(2)]
    try:
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()


async def _two_rest_answers(http: httpx.AsyncClient, url: str, body: bytes) -> None:
    """Two questions at once through nginx: both answered with speech."""
    answers = await asyncio.gather(*(
        http.post(f"{url}/v1/speech-to-speech", content=body,
                  headers={"Content-Type": "audio/wav"}) for _ in range(2)))
    assert [a.status_code for a in answers] == [200, 200]
    assert all(a.content[:4] == b"RIFF" for a in answers)


async def test_sessions_survive_draining_one_replica_behind_nginx(tmp_path, replicas, speak24k):
    port = free_port()
    nginx = Nginx(tmp_path, render_nginx_conf(_upstream_lines([r.port for r in replicas]),
                                              f"127.0.0.1:{port}"), port)
    body = wav_bytes(speak24k("what is two plus three"), 24_000)
    try:
        await asyncio.to_thread(nginx.wait_up)
        # Least connections: two sessions through nginx land on different replicas.
        first = await open_manual_session(nginx.ws_url)
        (drained,) = [r for r in replicas if _active_sessions(r) == 1]
        (survivor,) = [r for r in replicas if r is not drained]
        second = await open_manual_session(nginx.ws_url)
        assert [_active_sessions(r) for r in (drained, survivor)] == [1, 1]

        async with httpx.AsyncClient(timeout=60) as http:
            # One replica full (two more sessions opened on it directly, past nginx): nginx
            # still splits the two questions between the replicas, and the one the full replica
            # refuses with 503 goes to the other.
            direct = [await open_manual_session(drained.ws_url) for _ in range(2)]
            await _two_rest_answers(http, nginx.url, body)
            for client in direct:
                await client.close()

            # A response in flight on the replica that drains.
            await start_turn(first, speak24k("count from one to five"))
            await first.until("response.output_audio.delta", timeout_s=60)
            drained.terminate()
            # While it drains and once it is gone, questions are answered by the survivor.
            await _two_rest_answers(http, nginx.url, body)
        # A new session: a draining replica may take the upgrade and close it with 1013; the
        # client reconnects, as the protocol asks, and lands on the survivor.
        during = await _open_retrying_on_1013(nginx.ws_url)
        assert _active_sessions(survivor) == 2
        # The response in flight finished, then the drained replica closed the session with
        # 1012 through nginx, and exited cleanly.
        assert (await _finish_turn(first))["status"] == "completed"
        with pytest.raises(ConnectionClosed) as closed:
            await first.recv(timeout_s=30)
        assert closed.value.rcvd.code == 1012
        assert await asyncio.to_thread(drained.process.wait, 30) == 0

        # New sessions go to the survivor; the sessions already there carry on.
        late = await open_manual_session(nginx.ws_url)
        assert _active_sessions(survivor) == 3
        for client, question in ((late, "what color is the sky"), (second, "good morning"),
                                 (during, "what is my name")):
            await start_turn(client, speak24k(question))
            assert (await _finish_turn(client))["status"] == "completed"
            await client.close()
    finally:
        nginx.stop()
    log = nginx.access_log.read_text()
    # A question met the full replica's 503 and was passed on; after the drain, the stopped
    # replica's refused connection (502) or the draining one's 503 was passed on too.
    retried = re.findall(r'POST /v1/speech-to-speech HTTP/1\.1" 200 upstream=\S+, \S+ '
                         r"upstream_status=(50[23]), 200", log)
    assert "503" in retried[:1] and len(retried) >= 2, log
