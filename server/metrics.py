"""Prometheus metrics of one app: latency, throughput, load, errors and audio volume.

Each app owns a `CollectorRegistry`, so tests can run several apps in one process. Metric names
carry their unit. Nothing here measures anything itself; the session and REST code report.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

TTFA_BUCKETS_S = (0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0)
TOKENS_PER_S_BUCKETS = (5, 10, 25, 50, 75, 100, 150, 200, 300, 500, 1000, 2000)


class Metrics:
    """The app's metrics; `engine_slots_in_use` reads the runtime when scraped."""

    def __init__(self, engine_slots_in_use: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.ttfa_seconds = Histogram(
            "icot_ttfa_seconds", "Time to first audio: end of user turn (commit) to first "
            "audio chunk sent", ["endpoint"], buckets=TTFA_BUCKETS_S, registry=r)
        self.decode_tokens_per_second = Histogram(
            "icot_decode_tokens_per_second", "Generated tokens per second of decoding, per "
            "response", buckets=TOKENS_PER_S_BUCKETS, registry=r)
        self.active_sessions = Gauge(
            "icot_active_sessions", "Open realtime sessions", registry=r)
        self.queue_depth = Gauge(
            "icot_queue_depth", "Responses started and still waiting for their first output",
            registry=r)
        self.engine_slots = Gauge(
            "icot_engine_slots_in_use", "Engine slots generating now", registry=r)
        self.engine_slots.set_function(engine_slots_in_use)
        self.errors = Counter(
            "icot_errors_total", "Errors sent to clients, by code", ["code"], registry=r)
        self.responses = Counter(
            "icot_responses_total", "Finished responses, by status", ["status"], registry=r)
        self.audio_in_seconds = Counter(
            "icot_audio_in_seconds_total", "User audio received", registry=r)
        self.audio_out_seconds = Counter(
            "icot_audio_out_seconds_total", "Reply audio sent", registry=r)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
