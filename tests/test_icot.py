"""The `icot` entry point: a light `--help`, every command's options, dispatch to its `run`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import icot

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "numpy", "transformers", "fastapi")


def test_help_lists_every_command_and_imports_no_heavy_module():
    code = ("import sys, icot\n"
            "try:\n    icot.main(['--help'])\nexcept SystemExit as done:\n"
            "    assert done.code == 0\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.splitlines()[-1] == "[]"
    for name in icot.COMMANDS:
        assert name in done.stdout


@pytest.mark.parametrize("name", list(icot.COMMANDS))
def test_each_command_configures_its_own_options(name, capsys):
    with pytest.raises(SystemExit) as done:
        icot.main([name, "--help"])
    assert done.value.code == 0
    usage = capsys.readouterr().out
    assert usage.startswith(f"usage: icot {name}")
    expected = {"serve": "--max-message-bytes", "talk": "--wav", "codec": "roundtrip",
                "bench": "engine",
                "train": "--recipe", "eval": "--bundle"}
    assert expected[name] in usage


def test_a_command_runs_through_its_own_module_and_returns_its_status(capsys):
    assert icot.main(["train", "--recipe", "no-such-recipe"]) == 2
    assert "icot train: no recipe file 'no-such-recipe'" in capsys.readouterr().err


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as done:
        icot.main([])
    assert done.value.code == 2
    assert "required: command" in capsys.readouterr().err
