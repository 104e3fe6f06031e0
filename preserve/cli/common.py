"""Helpers shared by the command modules: progress bars, option parsing, printing findings.

Whatever a command prints for people goes through :func:`for_people` (see :mod:`preserve.textsafe`)
value by value, so nothing a bag holds can drive the terminal; :func:`to_json` gives the exact
strings to scripts.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
import threading
from collections.abc import Iterator
from typing import Any

import click

from preserve.textsafe import for_people

__all__ = ["ProgressBar", "echo_err", "for_people", "parse_info", "parse_period", "parse_size", "to_json", "warn"]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(i?B?)?\s*$", re.IGNORECASE)
_PERIOD = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdwy])\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'500G', '200M', '1.5GiB', '1024' -> bytes (K/M/G/T are powers of 1000, KiB... of 1024)."""
    m = _SIZE.match(text)
    if not m:
        raise click.BadParameter(f"{text!r} is not a size such as 200M or 500G")
    number, unit, binary = float(m.group(1)), m.group(2).upper(), (m.group(3) or "").lower().startswith("i")
    power = " KMGTP".index(unit) if unit else 0
    return int(number * (1024 if binary else 1000) ** power)


def parse_period(text: str) -> float:
    """'2h', '30d', '90m', '1y' -> seconds."""
    m = _PERIOD.match(text)
    if not m:
        raise click.BadParameter(f"{text!r} is not a period such as 90m, 2h, 30d or 1y")
    scale = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 365 * 86400}[m.group(2).lower()]
    return float(m.group(1)) * scale


def parse_info(values: tuple[str, ...]) -> list[tuple[str, str]]:
    """``--info KEY=VALUE`` items; a label bag-info.txt cannot hold is a usage error, before any work."""
    from preserve.bag.tagfiles import label_problem

    out = []
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--info")
        problem = label_problem(key.strip())
        if problem:
            raise click.BadParameter(f"{item!r}: the label {key.strip()!r} is not valid ({problem})", param_hint="--info")
        out.append((key.strip(), value.strip()))
    return out


class ProgressBar:
    """A thread-safe progress callback drawing a click progress bar on standard error."""

    def __init__(self, total_bytes: int, label: str, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._lock = threading.Lock()
        self._bar: Any = None
        self.total = total_bytes
        self.label = label

    def __call__(self, nbytes: int, nfiles: int) -> None:
        if self._bar is not None and nbytes:
            with self._lock:
                self._bar.update(nbytes)

    def set_total(self, total_bytes: int, files: int = 0) -> None:
        self.total = total_bytes
        if self._bar is not None:
            self._bar.length = max(total_bytes, 1)

    @contextlib.contextmanager
    def shown(self) -> Iterator[ProgressBar]:
        if not self.enabled:
            yield self
            return
        bar: Any
        with click.progressbar(length=max(self.total, 1), label=self.label, file=sys.stderr,
                               show_eta=True, show_percent=True) as bar:
            self._bar = bar
            try:
                yield self
            finally:
                self._bar = None


def echo_err(message: str) -> None:
    """A message on standard error; its lines are the program's, the values in them are escaped."""
    click.echo(for_people(message, lines=True), err=True)


def warn(message: str) -> None:
    click.echo(click.style("warning: ", fg="yellow") + for_people(message, lines=True), err=True)


# json.dumps escapes C0 controls itself; these it writes raw with ensure_ascii=False. Written as
# \uXXXX they decode to the very same strings, and a terminal showing the JSON sees no CSI or override.
_RAW_IN_JSON = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def to_json(value: Any) -> str:
    """``value`` as indented JSON for standard output: exact strings, nothing a terminal obeys."""
    return _RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(value, indent=2, ensure_ascii=False))
