"""`icot serve` process behaviour: the command line, and the SIGTERM drain of a real process."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from realtime_client import Client
from websockets.exceptions import ConnectionClosed

from bench.load import free_port
from server import cli
from server.settings import ServerSettings

SCRIPT = Path(__file__).parent / "scripted_server.py"
ROOT = Path(__file__).parents[2]


def test_serve_parses_every_option_and_the_environment_fills_the_rest(monkeypatch):
    monkeypatch.setenv("ICOT_PORT", "9123")
    monkeypatch.setenv("ICOT_API_KEY", "from-env")
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    args = parser.parse_args(["--bundle", "/tmp/b", "--host", "0.0.0.0",
                              "--slots", "3", "--vad-threshold", "0.6"])
    settings = ServerSettings.from_env().with_args(args)
    assert (str(settings.bundle), settings.host, settings.port) == ("/tmp/b", "0.0.0.0", 9123)
    assert (settings.slots, settings.vad_threshold, settings.api_key) == (3, 0.6, "from-env")


@pytest.fixture
def restore_logging():
    """`run` configures process-wide logging; put pytest's handlers back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_a_missing_bundle_is_a_clear_error_not_a_traceback(tmp_path, capsys, restore_logging):
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    assert cli.run(parser.parse_args(["--bundle", str(tmp_path / "nope")])) == 2
    err = capsys.readouterr().err
    assert "cannot load bundle" in err and "no such bundle directory" in err


def _wait_ready(url: str, process: subprocess.Popen, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read()
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError("server did not become ready")


async def test_sigterm_drains_in_flight_responses_then_closes_with_1012(speak):
    port = free_port()
    url, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/v1/realtime"
    process = subprocess.Popen([sys.executable, str(SCRIPT), str(port), "10", "0.05"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        await asyncio.to_thread(_wait_ready, url, process)
        client = await Client.open(ws_url)
        await client.recv()
        await client.send(type="session.update", session={"turn_detection": None})
        await client.recv()
        await client.append(speak("what is two plus three"))
        await client.send(type="input_audio_buffer.commit")
        await client.send(type="response.create")
        await client.until("response.output_audio.delta")
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.2)
        # Draining: not ready, no new sessions, no new REST requests.
        async with httpx.AsyncClient() as http:
            assert (await http.get(f"{url}/readyz")).status_code == 503
            rest = await http.post(f"{url}/v1/speech-to-speech", content=b"RIFF")
            assert rest.status_code == 503
            assert rest.json()["error"]["code"] == "server_shutting_down"
        late = await Client.open(ws_url)
        with pytest.raises(ConnectionClosed) as refused:
            await late.recv()
        assert refused.value.rcvd.code == 1013
        # The response in flight finishes, then the session is closed with 1012.
        done = (await client.until("response.done"))[-1]["response"]
        assert done["status"] == "completed"
        with pytest.raises(ConnectionClosed) as closed:
            await client.recv()
        assert closed.value.rcvd.code == 1012
        assert await asyncio.to_thread(process.wait, 15) == 0
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
