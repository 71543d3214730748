"""Shared fixtures (see tests/memorized.py): tiny bundles trained once per test run."""

from __future__ import annotations

from pathlib import Path

import pytest
from memorized import memorize_bundle

from model.chain import Chain


@pytest.fixture(scope="session")
def memorized_ata_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny A-T-A bundle that answers the memorized dialogues (trained once per test run)."""
    return memorize_bundle(tmp_path_factory.mktemp("memorized-ata"), Chain.ATA)


@pytest.fixture(scope="session")
def memorized_atta_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same dialogues memorized with the explicit A-T-T-A chain."""
    return memorize_bundle(tmp_path_factory.mktemp("memorized-atta"), Chain.ATTA)
