"""Functions for worker processes in the pool tests (imported by module name in the workers)."""

from __future__ import annotations

import time


def sizes(batch: list[str]) -> list[int]:
    """The length of each item."""
    return [len(item) for item in batch]


def block(batch: list[str]) -> list[int]:
    """Wait far longer than any test: a worker busy until it is killed."""
    time.sleep(600)
    return [0 for _ in batch]


def echo(batch: list[str]) -> list[str]:
    """Each item back, unchanged."""
    return list(batch)
