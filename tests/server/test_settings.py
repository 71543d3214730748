"""Settings: defaults, ICOT_ variables, flags over variables, and refusal of bad values."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

import pytest

from server.settings import ServerSettings, add_arguments, env_name


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults_are_the_documented_limits():
    s = ServerSettings()
    assert (s.bundle, s.host, s.port) == (Path("checkpoints/demo"), "127.0.0.1", 8000)
    assert s.max_message_bytes == 21 << 20  # an append of 15 MiB of audio, base64
    assert (s.max_turn_audio_s, s.max_session_audio_s, s.idle_timeout_s) == (60, 1800, 300)
    assert s.api_key is None


def test_every_field_reads_its_environment_variable():
    env = {"ICOT_BUNDLE": "/b", "ICOT_PORT": "9001", "ICOT_API_KEY": "k",
           "ICOT_MAX_TURN_AUDIO_S": "12.5", "ICOT_MAX_SEQ_LEN": "512", "ICOT_LOG_FORMAT": "text"}
    s = ServerSettings.from_env(env)
    assert (s.bundle, s.port, s.api_key, s.max_turn_audio_s) == (Path("/b"), 9001, "k", 12.5)
    assert (s.max_seq_len, s.log_format) == (512, "text")
    assert all(env_name(f.name).startswith("ICOT_") for f in fields(ServerSettings))


def test_flags_win_over_the_environment_and_unset_flags_do_not():
    base = ServerSettings.from_env({"ICOT_PORT": "9001", "ICOT_HOST": "0.0.0.0"})
    s = base.with_args(_parse(["--port", "9100", "--idle-timeout-s", "5"]))
    assert (s.port, s.host, s.idle_timeout_s) == (9100, "0.0.0.0", 5.0)


def test_every_field_has_a_flag():
    args = _parse([])
    assert {f.name for f in fields(ServerSettings)} <= set(vars(args))


@pytest.mark.parametrize("bad", [
    {"port": 70000}, {"slots": 0}, {"device": "tpu"}, {"api_key": " "},
    {"max_message_bytes": 0}, {"max_turn_audio_s": 100, "max_session_audio_s": 50},
    {"vad_threshold": 1.0}, {"vad_silence_duration_ms": 0}, {"log_level": "loud"},
    {"drain_timeout_s": -1},
])
def test_bad_values_fail_at_start_up(bad):
    with pytest.raises(ValueError):
        ServerSettings(**bad)


def test_a_malformed_variable_names_itself():
    with pytest.raises(ValueError, match="ICOT_PORT"):
        ServerSettings.from_env({"ICOT_PORT": "eighty"})


def test_lists_and_switches_read_from_text_and_a_bad_switch_names_itself():
    s = ServerSettings.from_env({"ICOT_ALLOWED_ORIGINS": "https://a.example, https://b.example",
                                 "ICOT_PAGE_CLIENT_SECRETS": "yes", "ICOT_THREADS": "none"})
    assert s.allowed_origins == ("https://a.example", "https://b.example")
    assert s.page_client_secrets is True and s.threads is None
    assert _parse(["--page-client-secrets", "off"]).page_client_secrets is False
    with pytest.raises(ValueError, match="ICOT_PAGE_CLIENT_SECRETS / --page-client-secrets"):
        ServerSettings.from_env({"ICOT_PAGE_CLIENT_SECRETS": "maybe"})


def test_a_variable_that_fails_validation_names_the_field():
    with pytest.raises(ValueError, match="ICOT_ variables: slots: must be ≥ 1, got 0"):
        ServerSettings.from_env({"ICOT_SLOTS": "0"})
