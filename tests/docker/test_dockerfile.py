"""docker/Dockerfile: hadolint finds nothing, and the image is built the way docs/deploy.md says
(base image as a build argument, non-root, entry point, health check, demo bundles inside)."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


def _hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HADOLINT), "--no-color", str(path)], capture_output=True,
                          text=True)


def test_hadolint_finds_nothing_in_the_dockerfile():
    lint = _hadolint(DOCKERFILE)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert lint.stdout == ""


def test_hadolint_does_flag_a_careless_dockerfile(tmp_path):
    # The linter really runs: an unpinned base, a root user and a stale apt cache are reported.
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM debian\nRUN apt-get update && apt-get install -y espeak-ng\n")
    lint = _hadolint(careless)
    assert lint.returncode != 0
    assert {"DL3006", "DL3008", "DL3009"} <= set(re.findall(r"DL\d{4}", lint.stdout))


def test_one_file_serves_cpu_and_gpu_bases_and_runs_unprivileged():
    text = DOCKERFILE.read_text()
    instructions = [line.split()[0] for line in text.splitlines()
                    if line and not line.startswith((" ", "#"))]
    assert instructions[:2] == ["ARG", "FROM"]  # the base is a build argument
    assert re.search(r"^ARG BASE_IMAGE=debian:\S+-slim$", text, re.M)
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", text, re.M)
    assert "nvidia/cuda:" in text  # the GPU build is documented in the file
    assert "espeak-ng" in text
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user == ["10001:10001"]
    assert re.search(r"^HEALTHCHECK .*\n.*/healthz", text, re.M)
    assert re.search(r'^ENTRYPOINT \["icot-entrypoint"\]$', text, re.M)
    assert "COPY docker/entrypoint.sh /usr/local/bin/icot-entrypoint" in text


def test_every_copied_path_exists_and_passes_the_build_context_filter():
    text = DOCKERFILE.read_text()
    sources = [s for line in re.findall(r"^COPY (.+)$", text, re.M)
               for s in line.split()[:-1]]
    assert "checkpoints" in sources  # the demo bundles are inside
    allowed = [line[1:].removesuffix("/**") for line in
               (ROOT / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
               if line.startswith("!")]
    for source in sources:
        assert (ROOT / source).exists(), source
        assert source in allowed, f"{source} is filtered out of the build context"


def test_the_image_copies_every_module_and_package_the_project_installs():
    # The editable install in the image needs the sources of everything pyproject.toml names.
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    needed = {f"{module}.py" for module in setuptools.get("py-modules", [])}
    needed |= {pattern.rstrip("*") for pattern in setuptools["packages"]["find"]["include"]}
    copied = {s for line in re.findall(r"^COPY (.+)$", DOCKERFILE.read_text(), re.M)
              for s in line.split()[:-1]}
    assert needed <= copied, needed - copied


def test_the_requirements_step_lists_the_pinned_dependencies(tmp_path):
    # The image installs [project] dependencies from a list its RUN step writes; run that step's
    # Python here on the real pyproject.toml.
    (snippet,) = re.findall(r'python3 -c "(import tomllib;.+?)" > /tmp/requirements.txt',
                            DOCKERFILE.read_text())
    (tmp_path / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    listed = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path,
                            capture_output=True, text=True, check=True).stdout.split()
    pinned = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert listed == pinned
    assert all("==" in requirement for requirement in listed)
    assert "torch==2.11.0" in listed
