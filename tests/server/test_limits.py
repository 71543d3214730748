"""Admission slots and per-session audio budgets."""

from __future__ import annotations

import pytest

from server.errors import ErrorCode, ProtocolError
from server.limits import AudioBudget, SlotPool
from server.metrics import Metrics


def test_slot_pool_admits_up_to_capacity_and_frees_on_release():
    pool = SlotPool(2)
    assert pool.try_acquire() and pool.try_acquire()
    assert not pool.try_acquire()
    pool.release()
    assert pool.try_acquire() and pool.in_use == 2
    with pytest.raises(ValueError):
        SlotPool(0)


def test_release_without_acquire_is_a_bug():
    with pytest.raises(RuntimeError):
        SlotPool(1).release()


def test_audio_budget_refuses_what_would_pass_the_limit_and_spends_nothing():
    budget = AudioBudget(10.0)
    budget.spend(9.5)
    with pytest.raises(ProtocolError) as info:
        budget.spend(1.0)
    assert info.value.code is ErrorCode.SESSION_AUDIO_LIMIT
    assert budget.used_s == 9.5
    budget.spend(0.5)


def test_two_apps_keep_separate_metric_registries():
    a, b = Metrics(lambda: 1), Metrics(lambda: 3)
    a.errors.labels(code="invalid_json").inc()
    text_a, text_b = a.render()[0].decode(), b.render()[0].decode()
    assert 'icot_errors_total{code="invalid_json"} 1.0' in text_a
    assert "invalid_json" not in text_b
    assert "icot_engine_slots_in_use 3.0" in text_b
