"""Shared fixtures (see tests/memorized.py): tiny bundles trained once per test run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from memorized import memorize_bundle, one_torch_thread

from model.chain import Chain


@pytest.fixture(name="one_torch_thread", scope="module")
def one_torch_thread_fixture() -> Iterator[None]:
    """Use with `pytestmark = pytest.mark.usefixtures("one_torch_thread")` in modules of tiny
    models (see memorized.one_torch_thread)."""
    with one_torch_thread():
        yield


@pytest.fixture(scope="session")
def memorized_ata_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny A-T-A bundle that answers the memorized dialogues (trained once per test run)."""
    return memorize_bundle(tmp_path_factory.mktemp("memorized-ata"), Chain.ATA)


@pytest.fixture(scope="session")
def memorized_atta_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same dialogues memorized with the explicit A-T-T-A chain."""
    return memorize_bundle(tmp_path_factory.mktemp("memorized-atta"), Chain.ATTA)
