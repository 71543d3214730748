"""`icot talk` against a real `icot serve` of the demo bundle: spoken files as a conversation
(the name said in the first turn is recalled in the second), replies saved and heard by Whisper,
a typed turn, a long file's progress and refused audio, and the messages for an unreachable
server, a missing or wrong key, a full server and a machine without an audio device.
"""

from __future__ import annotations

import re

import httpx
import soundfile
from demo_serve import API_KEY, MAX_TURN_AUDIO_S, SLOTS
from websockets.sync.client import connect

from bench.load import free_port
from training.evaluation.intelligibility import normalize, word_error_rate

TTFA_RE = re.compile(r"first audio (\d+) ms")
MAX_REPLY_WER = 0.25  # Whisper mishears the demo codec's voice now and then ("anna" → "hannah")


def test_a_spoken_dialogue_recalls_the_name_and_saves_replies_whisper_hears(
        demo_server, speech_wav, talk, judge, tmp_path):
    out = tmp_path / "replies"
    done = talk("--url", demo_server.ws_url, "--api-key", API_KEY, "--out", str(out),
                "--wav", str(speech_wav("my name is anna")), str(speech_wav("what is my name")))
    assert done.returncode == 0, done.stderr
    assert "assistant: nice to meet you anna\n" in done.stdout
    assert "assistant: your name is anna\n" in done.stdout  # recalled from the first turn
    heard_user = dict(re.findall(r"\[(\d)\] heard: (.*)", done.stdout))  # the server's ASR
    assert {turn: normalize(words) for turn, words in heard_user.items()} == {
        "1": "my name is anna", "2": "what is my name"}
    ttfas = [int(ms) for ms in TTFA_RE.findall(done.stdout)]
    assert len(ttfas) == 2 and all(0 < ms < 5000 for ms in ttfas)
    heard = []
    for number in (1, 2):
        audio, rate = soundfile.read(out / f"reply-{number:02d}.wav", dtype="float32")
        assert rate == 24_000 and audio.size > 0.5 * rate
        heard.append(judge.transcribe(audio, rate))
    wer = word_error_rate(["nice to meet you anna", "your name is anna"], heard)
    assert wer <= MAX_REPLY_WER, heard


def test_a_typed_turn_is_answered_from_the_spoken_conversation(demo_server, speech_wav, talk):
    done = talk("--url", demo_server.ws_url, "--api-key", API_KEY,
                "--wav", str(speech_wav("my name is anna")), "--text", "what is my name")
    assert done.returncode == 0, done.stderr
    assert "[2] you: what is my name (typed)" in done.stdout
    typed_turn = done.stdout.split("[2] you:")[1]
    assert "assistant: your name is anna\n" in typed_turn  # the name came by voice
    assert TTFA_RE.search(typed_turn) and "completed" in typed_turn


def test_a_long_file_shows_progress_and_refused_audio_is_reported(
        demo_server, speech_wav, talk):
    long_file = speech_wav("what is two plus three", tail_s=MAX_TURN_AUDIO_S + 5)
    done = talk("--url", demo_server.ws_url, "--api-key", API_KEY, "--fast", "--wav",
                str(long_file), "--wav", str(speech_wav("what is two plus three")))
    assert re.search(r"sending \S+\.wav:\s+1\.\d / 2\d\.\d s", done.stderr), done.stderr
    assert "server error turn_audio_too_long" in done.stderr
    assert done.returncode == 1  # the first turn got no reply …
    assert "assistant: two plus three is five" in done.stdout  # … and the next one did
    assert "1 of 2 turns got no complete reply" in done.stderr


def test_a_client_secret_works_as_the_key(demo_server, speech_wav, talk):
    secret = httpx.post(f"{demo_server.url}/v1/realtime/client_secrets", timeout=10,
                        headers={"Authorization": f"Bearer {API_KEY}"}).json()["value"]
    done = talk("--url", demo_server.ws_url, "--api-key", secret, "--wav",
                str(speech_wav("what is two plus three")))
    assert done.returncode == 0, done.stderr
    assert "assistant: two plus three is five" in done.stdout


def test_connection_problems_are_explained(demo_server, talk):
    question = ("--text", "hello")
    nobody = talk("--url", f"ws://127.0.0.1:{free_port()}/v1/realtime", *question)
    assert nobody.returncode == 1
    assert "cannot reach a Realtime server" in nobody.stderr
    no_key = talk("--url", demo_server.ws_url, *question, env={"ICOT_API_KEY": ""})
    assert "the server needs an API key (HTTP 401)" in no_key.stderr
    wrong = talk("--url", demo_server.ws_url, "--api-key", "wrong", *question)
    assert (wrong.returncode, wrong.stdout) == (1, "")
    assert "the API key was refused (HTTP 401)" in wrong.stderr
    missing = talk("--url", demo_server.ws_url, "--wav", "/nonexistent.wav")
    assert "cannot read /nonexistent.wav" in missing.stderr


def test_a_full_server_says_try_again_later(demo_server, talk):
    demo_server.wait_idle()
    holders = [connect(demo_server.ws_url, additional_headers={
        "Authorization": f"Bearer {API_KEY}"}) for _ in range(SLOTS)]
    try:
        for holder in holders:
            assert '"session.created"' in holder.recv(timeout=10)
        full = talk("--url", demo_server.ws_url, "--api-key", API_KEY, "--text", "hello")
    finally:
        for holder in holders:
            holder.close()
    assert full.returncode == 1
    assert "the server is full, still loading or shutting down; try again later" in full.stderr
    assert "close 1013" in full.stderr


def test_without_an_audio_device_it_suggests_files(demo_server, talk):
    # CI machines have no sound card (and no PortAudio): the microphone mode must say so
    # before it takes a session, and point at --wav.
    done = talk("--url", demo_server.ws_url, "--api-key", API_KEY)
    assert done.returncode == 1
    assert "no audio device" in done.stderr and "--wav FILE" in done.stderr
    assert "connected" not in done.stdout
