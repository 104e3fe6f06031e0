"""Shared by the command modules: progress bars and lines, option parsing, printing findings.

Whatever a command prints for people goes through :func:`for_people` (see :mod:`preserve.textsafe`)
value by value, so nothing a bag holds can drive the terminal; :func:`to_json` gives the exact
strings to scripts.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from preserve.textsafe import for_people

__all__ = ["DEFAULT_PROGRESS_INTERVAL", "ProgressBar", "echo_err", "for_people", "human_bytes", "next_steps", "parse_info", "parse_interval",
           "parse_period", "parse_size", "progress_interval_option", "to_json", "warn"]

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


#: Seconds between progress lines when standard error is not a terminal (cron, systemd, nohup).
DEFAULT_PROGRESS_INTERVAL = 30.0
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*$")


def parse_interval(text: str) -> float:
    """``--progress-interval``: a plain number of seconds ('30', '0.5'), or a period such as '2m'."""
    m = _SECONDS.match(text)
    seconds = float(m.group(1)) if m else parse_period(text)
    if seconds <= 0:
        raise click.BadParameter(f"{text!r}: give a number of seconds above 0, such as 30")
    return seconds


def _interval_callback(ctx: click.Context, param: click.Parameter, value: str | None) -> float:
    return DEFAULT_PROGRESS_INTERVAL if value is None else parse_interval(value)


#: The ``--progress-interval`` option every command with a progress bar takes.
progress_interval_option = click.option(
    "--progress-interval", "progress_interval", metavar="SECONDS", callback=_interval_callback,
    help=f"Without a terminal, a progress line every SECONDS (default {DEFAULT_PROGRESS_INTERVAL:g}).")


def human_bytes(n: float) -> str:
    """1234567 -> '1.2 MB' (powers of 1000, as disks and networks are sold)."""
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{int(n)} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _clock_text(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ProgressBar:
    """A thread-safe progress callback on standard error, phase by phase.

    On a terminal it draws a click progress bar per phase (bytes, percent, ETA). Without one
    (cron, systemd, nohup, ssh without -t) it writes one plain line every ``interval`` seconds,
    with the phase, percent, bytes done and total, rate and ETA, which journald and log files keep
    as they are. ``enabled=False`` (``-q``) shows nothing either way.

    Called as ``bar(nbytes, nfiles)`` by the library (or ``bar(nbytes)``, as the stores report
    bytes sent and received); :meth:`phase` starts the next phase. A
    phase begun with ``counted=False`` is one the library does not report bytes for: it is named,
    with its size and the time it has run, never with a percent it cannot know.
    """

    def __init__(self, total_bytes: int, label: str, enabled: bool = True, *,
                 interval: float = DEFAULT_PROGRESS_INTERVAL, clock: Callable[[], float] = time.monotonic) -> None:
        self._stream = sys.stderr
        tty = self._stream.isatty()
        self.enabled = enabled and tty
        self.lines = enabled and not tty
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._bar: Any = None
        self._shown = False
        self.total = total_bytes
        self.done = 0
        self.label = label
        self.phase_name = ""
        self.counted = True
        self._started = clock()

    def __call__(self, nbytes: int, nfiles: int = 0) -> None:
        if nbytes:
            with self._lock:
                self.done += nbytes
                if self._bar is not None:
                    self._bar.update(nbytes, self.done)

    def set_total(self, total_bytes: int, files: int = 0) -> None:
        with self._lock:
            self.total = total_bytes
            if self._bar is not None:
                self._bar.length = max(total_bytes, 1)

    def phase(self, name: str, total_bytes: int = 0, *, counted: bool = True) -> None:
        """Start the phase ``name`` of ``total_bytes``; the bytes done start again from 0.

        The phase already running only learns its total (the check knows it once it has listed the files).
        """
        if name == self.phase_name and counted == self.counted:
            self.set_total(total_bytes)
            return
        with self._lock:
            self.phase_name, self.total, self.done, self.counted = name, total_bytes, 0, counted
            self._started = self._clock()
            if self._shown and self.enabled:
                self._close_bar()
                self._open_bar()

    def line(self) -> str:
        """The plain progress line for now: phase, percent, bytes done/total, rate, ETA."""
        with self._lock:
            done, total, counted = self.done, self.total, self.counted
            elapsed = max(self._clock() - self._started, 1e-9)
            head = f"{self.label}: {self.phase_name}" if self.phase_name else self.label
        if not counted:
            size = f" {human_bytes(total)}," if total else ""
            return f"{head}:{size} running for {_clock_text(elapsed)}"
        rate = done / elapsed
        if total <= 0:
            return f"{head}: {human_bytes(done)} done, {human_bytes(rate)}/s"
        percent = min(100.0, 100.0 * done / total)
        eta = _clock_text((total - done) / rate) if rate > 0 and done < total else ("0:00" if done >= total else "unknown")
        return (f"{head}: {percent:.0f}%, {human_bytes(done)} of {human_bytes(total)}, "
                f"{human_bytes(rate)}/s, ETA {eta}")

    def _open_bar(self) -> None:
        label = f"{self.label}: {self.phase_name}" if self.phase_name else self.label
        if not self.counted:
            size = f" ({human_bytes(self.total)})" if self.total else ""
            click.echo(f"{label}{size}...", err=True)
            return
        bar = click.progressbar(length=max(self.total, 1), label=label, file=self._stream, show_eta=True,
                                show_percent=True, item_show_func=self._bytes_text)
        self._bar = bar.__enter__()

    def _close_bar(self) -> None:
        bar, self._bar = self._bar, None
        if bar is not None:
            bar.__exit__(None, None, None)

    def _bytes_text(self, done: int | None) -> str | None:
        return None if done is None else f"{human_bytes(done)} of {human_bytes(self.total)}"

    @contextlib.contextmanager
    def shown(self) -> Iterator[ProgressBar]:
        if self.enabled:
            with self._lock:
                self._shown = True
                self._open_bar()
            try:
                yield self
            finally:
                with self._lock:
                    self._shown = False
                    self._close_bar()
            return
        if not self.lines:
            yield self
            return
        stop = threading.Event()

        def report() -> None:
            while not stop.wait(self.interval):
                with contextlib.suppress(OSError, ValueError):  # a closed or broken stderr ends nothing
                    self._stream.write(f"preserve: {for_people(self.line())}\n")
                    self._stream.flush()

        # a daemon: a thread still waiting must never keep an interrupted run from exiting
        thread = threading.Thread(target=report, name="progress-lines", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()


def next_steps(bag: Path, *, show: bool = True) -> None:
    """The commands that usually follow a new bag, on standard error (standard output keeps the result).

    ``show`` is for bags with METS sidecars (``preserve package`` writes them, ``preserve bag`` not).
    """
    quoted = shlex.quote(str(bag))
    if bag.is_file():  # an archive: checked as it is, opened by unpack
        steps = f"preserve validate {quoted}; preserve unpack {quoted} FOLDER"
    else:
        shown = f"preserve show {quoted}; " if show else ""
        steps = f"preserve validate {quoted}; {shown}preserve replicate {quoted} TARGET; preserve audit {quoted}"
    click.echo(f"next: {for_people(steps)}", err=True)


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


# -- one meaning per flag ------------------------------------------------------------------------
# Every command takes its shared options from here, so a flag is spelled, abbreviated and
# explained the same way wherever it appears (tests/cli/test_flags.py walks the whole group).

__all__ += ["Command", "Group", "PhaseClock", "emit_json", "exit_meaning", "json_option", "profile_option",
            "quiet_option", "verbose_option", "workers_option"]

#: What -q means in every command: only problems and the final verdict line.
QUIET_HELP = "Only problems and the verdict: no progress, tables, notes, warnings, next steps."

#: The one -q/--quiet.
quiet_option = click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)

#: The one --verbose, on commands that have more detail to give (per-file lines, timings).
verbose_option = click.option("-v", "--verbose", is_flag=True,
                              help="More detail: the time each phase took (and per-file lines where there are any).")

#: The one --json: exactly one JSON document on standard output, whatever the outcome.
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print the result as one JSON document on standard output, and nothing else.")


_F = TypeVar("_F", bound=Callable[..., Any])


def workers_option(help: str = "Files read in parallel (default: the number of cores).",
                   **kw: Any) -> Callable[[_F], _F]:
    """The one -w/--workers; commands differ only in what runs in parallel and the default."""
    kw.setdefault("type", click.IntRange(1, 64))
    kw.setdefault("metavar", "N")
    return click.option("-w", "--workers", help=help, **kw)


def profile_option(help: str, **kw: Any) -> Callable[[_F], _F]:
    """The one -p/--profile: always a BagIt profile (a shipped name, a JSON file or an identifier)."""
    kw.setdefault("metavar", "PROFILE")
    return click.option("-p", "--profile", "profile", help=help, **kw)


def exit_meaning(code: int) -> str:
    """The documented meaning of an exit code, short: 'problems found in the bag, collection or replica'."""
    from preserve.errors import EXIT_CODES

    text = EXIT_CODES.get(code, "")
    return re.split(r"[:;(]", text, maxsplit=1)[0].strip() or f"exit code {code}"


_JSON_SENT = "preserve.json-sent"


def emit_json(doc: dict[str, Any], *, path: str | Path | None, exit_code: int = 0,
              warnings: list[Any] | None = None, problems: list[Any] | None = None) -> None:
    """Print a command's one JSON document: its result with the path, warnings, problems and the exit code.

    Every ``--json`` result goes through here, so each carries the same keys: ``path``,
    ``exit`` and ``meaning`` (the exit code the run ends with, and what it means), ``warnings``
    and ``problems`` (lists), then the command's own fields.
    """
    head: dict[str, Any] = {"path": None if path is None else str(path), "exit": exit_code,
                            "meaning": exit_meaning(exit_code)}
    body = {k: v for k, v in doc.items() if k not in head}
    body["warnings"] = list(warnings if warnings is not None else body.get("warnings") or [])
    body["problems"] = list(problems if problems is not None else body.get("problems") or [])
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.find_root().meta[_JSON_SENT] = True
    click.echo(to_json({**head, **body}))


#: --help sections, in order, and the options each holds (by parameter name); the others are the
#: command's own and come first, under "Options".
HELP_SECTIONS: dict[str, tuple[str, ...]] = {
    "Profile": ("profile", "no_profile"),
    "Ledger": ("ledger_path", "network_ok"),
    "S3 and preserve.toml": ("config_path", "endpoint_url", "s3_region", "aws_profile", "path_style", "checksum_when",
                             "retries"),
    "Upload": ("storage_class", "retain_until", "lock_mode", "multipart_threshold", "part_size", "bandwidth"),
    "Progress": ("workers", "progress_interval"),
    "Output": ("as_json", "quiet", "verbose", "output", "help"),
}
_SECTION_OF = {name: title for title, names in HELP_SECTIONS.items() for name in names}


def _first_argument(ctx: click.Context) -> str | None:
    """The command's first argument as given (the bag, collection or archive its result is about),
    or the ledger for the commands that take none."""
    for param in ctx.command.params:
        if isinstance(param, click.Argument) and param.name:
            value = ctx.params.get(param.name)
            if isinstance(value, tuple):
                value = value[0] if value else None
            return None if value is None else str(value)
    ledger = ctx.params.get("ledger_path")
    return None if ledger is None else str(ledger)


class Command(click.Command):
    """A command whose --help lists its options in sections, and whose --json always answers.

    With ``--json``, a run that stops on an error it reports (a refusal, a usage error found
    while running) still prints its one JSON document, with the path, the message as its
    problem, and the exit code; the message also goes to standard error as always.
    """

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
            if record is not None:
                name = "help" if "--help" in param.opts else param.name or ""
                rows.setdefault(_SECTION_OF.get(name, "Options"), []).append(record)
        for title in ("Options", *HELP_SECTIONS):
            if rows.get(title):
                with formatter.section(title):
                    formatter.write_dl(rows[title])

    def invoke(self, ctx: click.Context) -> Any:
        from preserve.errors import PreserveError

        try:
            return super().invoke(ctx)
        except (PreserveError, click.ClickException) as exc:
            if ctx.params.get("as_json") and not ctx.find_root().meta.get(_JSON_SENT):
                message = exc.format_message() if isinstance(exc, click.ClickException) else str(exc)
                emit_json({}, path=_first_argument(ctx), exit_code=exc.exit_code, problems=[message])
            raise


class Group(click.Group):
    """A command group whose subcommands are :class:`Command` s."""

    command_class = Command


class PhaseClock:
    """How long each phase of a run took, for ``--verbose`` (standard error; never with --json)."""

    def __init__(self, enabled: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.enabled = enabled
        self._clock = clock
        self._started = clock()
        self._phases: list[tuple[str, float]] = []
        self._current: tuple[str, float] | None = None

    def phase(self, name: str) -> None:
        """``name`` starts now (a phase named again while it runs goes on)."""
        now = self._clock()
        if self._current is not None and self._current[0] == name:
            return
        self._close(now)
        self._current = (name, now)

    def _close(self, now: float) -> None:
        if self._current is not None:
            self._phases.append((self._current[0], now - self._current[1]))
            self._current = None

    def timings(self) -> list[tuple[str, float]]:
        """Each phase with its seconds, the running one up to now, and the total last."""
        now = self._clock()
        self._close(now)
        return [*self._phases, ("total", now - self._started)]

    def report(self) -> None:
        if self.enabled:
            text = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self.timings())
            click.echo(f"timings: {text}", err=True)
