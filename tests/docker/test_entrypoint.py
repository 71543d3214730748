"""docker/entrypoint.sh outside a container: `icot serve` from ICOT_* variables, flags passed on,
other commands run as given, the API key read from a file, SIGTERM reaching the server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.load import free_port

ROOT = Path(__file__).parents[2]
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"


def _env(**variables: str) -> dict[str, str]:
    """This environment without ICOT_* variables, the venv's `icot` on PATH, plus `variables`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICOT_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env | variables


def _run(*args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ENTRYPOINT), *args], env=_env(**variables), capture_output=True,
                          text=True, timeout=30)


def test_other_commands_run_as_given_with_the_container_defaults():
    shown = _run("sh", "-c", 'echo "$ICOT_HOST|${ICOT_API_KEY:-unset}"')
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == "0.0.0.0|unset\n"  # every interface by default in a container
    kept = _run("sh", "-c", 'echo "$ICOT_HOST"', ICOT_HOST="127.0.0.1")
    assert kept.stdout == "127.0.0.1\n"


def test_the_api_key_comes_from_a_secret_file(tmp_path):
    secret = tmp_path / "api-key"
    secret.write_text("s3cret\n")
    shown = _run("sh", "-c", 'echo "[$ICOT_API_KEY]"', ICOT_API_KEY_FILE=str(secret))
    assert shown.stdout == "[s3cret]\n"
    given = _run("sh", "-c", 'echo "[$ICOT_API_KEY]"', ICOT_API_KEY_FILE=str(secret),
                 ICOT_API_KEY="direct")
    assert given.stdout == "[direct]\n"  # a key set directly wins
    missing = _run("sh", "-c", "echo never", ICOT_API_KEY_FILE=str(tmp_path / "nope"))
    assert missing.returncode == 2 and missing.stdout == ""
    assert "ICOT_API_KEY_FILE" in missing.stderr


def test_no_arguments_serve_the_bundle_the_environment_names(tmp_path):
    port = free_port()
    secret = tmp_path / "api-key"
    secret.write_text("k3y")
    log = open(tmp_path / "serve.log", "wb")
    # Flags go to `icot serve` (--slots 3); everything else comes from ICOT_* variables.
    process = subprocess.Popen(
        [str(ENTRYPOINT), "--slots", "3"], cwd=tmp_path, stdout=log, stderr=log,
        env=_env(ICOT_BUNDLE=str(ROOT / "checkpoints" / "demo"), ICOT_HOST="127.0.0.1",
                 ICOT_PORT=str(port), ICOT_THREADS="1", ICOT_API_KEY_FILE=str(secret)))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "not ready in 90 s"
            time.sleep(0.1)
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        assert httpx.get(f"{url}/readyz").json()["slots"] == 3
        # The key from the file is in force.
        assert httpx.post(f"{url}/v1/speech-to-speech", content=b"RIFF").status_code == 401
        authorized = httpx.post(f"{url}/v1/speech-to-speech", content=b"RIFF",
                                headers={"Authorization": "Bearer k3y"})
        assert authorized.status_code == 400  # past auth; the body is not audio
        # exec: the script's process is the server, so SIGTERM drains it and it exits 0.
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()
