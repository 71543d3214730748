"""The microphone mode's playback queue: what the speaker played of each reply, and barge-in."""

from __future__ import annotations

from clients.microphone import Playback

MS = 24  # samples per millisecond at 24 kHz


def pcm(ms: int, value: int = 1000) -> bytes:
    return value.to_bytes(2, "little", signed=True) * (ms * MS)


def test_the_speaker_gets_reply_audio_then_silence():
    playback = Playback()
    playback.add("item_a", pcm(10))
    out = playback.read(20 * MS)
    assert out == pcm(10) + bytes(10 * MS * 2)
    assert not playback.busy


def test_barge_in_reports_what_was_played_of_the_current_reply_and_drops_the_rest():
    playback = Playback()
    playback.add("item_a", pcm(100))
    playback.read(100 * MS)
    playback.add("item_b", pcm(500))  # the next reply counts from zero
    playback.read(120 * MS)
    assert playback.busy
    assert playback.stop() == ("item_b", 120)
    assert not playback.busy and playback.read(MS) == bytes(2 * MS)
