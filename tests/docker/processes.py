"""nginx on loopback with docker/nginx.conf rendered for the test's ports, and spoken turns
sent over a realtime client (tests/server/realtime_client.py)."""

from __future__ import annotations

import base64
import contextlib
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
from realtime_client import Client

from model.audio import float_to_pcm16

ROOT = Path(__file__).parents[2]
NGINX_TEMPLATE = ROOT / "docker" / "nginx.conf"
PLACEHOLDER = re.compile(r"\$\{(ICOT_[A-Z_]+)\}")
WIRE_RATE_HZ = 24_000


def render_nginx_conf(servers: list[str], listen: str) -> str:
    """docker/nginx.conf with its two placeholders filled, as compose's envsubst fills them."""
    values = {"ICOT_UPSTREAM_SERVERS": " ".join(servers), "ICOT_NGINX_LISTEN": listen}
    template = NGINX_TEMPLATE.read_text()
    assert set(PLACEHOLDER.findall(template)) == set(values)
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


class Nginx:
    """Debian's nginx in the foreground with a rendered config under `directory` (its prefix:
    temp paths, pid and logs live there)."""

    def __init__(self, directory: Path, config: str, port: int) -> None:
        self.directory, self.port = directory, port
        (directory / "nginx.conf").write_text(config)
        self.access_log = directory / "access.log"
        self.error_log = directory / "error.log"
        self._out = open(self.access_log, "wb")  # access_log /dev/stdout lands here
        self._err = open(self.error_log, "wb")
        self.process = subprocess.Popen(
            [nginx_binary(), "-p", str(directory), "-c", str(directory / "nginx.conf"),
             "-e", str(self.error_log),
             "-g", f"daemon off; pid {directory / 'nginx.pid'};"],
            stdout=self._out, stderr=self._err)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    def wait_up(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.error_log.read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/nginx-healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise TimeoutError("nginx did not come up: " + self.error_log.read_text())

    def reload(self) -> None:
        """`nginx -s reload` as docs/deploy.md gives it: the same config and pid file."""
        subprocess.run([nginx_binary(), "-s", "reload", "-p", str(self.directory),
                        "-c", str(self.directory / "nginx.conf"),
                        "-g", f"pid {self.directory / 'nginx.pid'};"], check=True,
                       capture_output=True)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._out.close()
        self._err.close()


def nginx_binary() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


async def start_turn(client: Client, samples24k: np.ndarray) -> None:
    """Append `samples24k` (24 kHz float32) in 100 ms appends, commit, ask for a response."""
    pcm = float_to_pcm16(samples24k)
    step = 2 * WIRE_RATE_HZ // 10
    for start in range(0, len(pcm), step):
        await client.send(type="input_audio_buffer.append",
                          audio=base64.b64encode(pcm[start:start + step]).decode())
    await client.send(type="input_audio_buffer.commit")
    await client.send(type="response.create")


async def open_manual_session(url: str) -> Client:
    """A session with manual turn detection (commit decides when a turn ends)."""
    client = await Client.open(url)
    assert (await client.recv())["type"] == "session.created"
    await client.send(type="session.update", session={"turn_detection": None})
    await client.until("session.updated")
    return client
