"""``preserve package --batch``: one AIP per release folder of a label's DDEX batch delivery.

A batch folder holds one sub-folder per release (its ERN message and resources), batch-control
files such as ``BatchComplete_*.xml`` (ignored) and usually a ``collection.toml`` with the deposit
agreement that applies to every release (a release folder may hold its own). Each release is
packaged by :func:`~preserve.package.package_collection` into ``DEST_DIR/<ICPN>`` (or its release
reference, or the folder's name); a release already packaged there is skipped, and one release
failing does not stop the others.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from preserve.errors import CollectionNotReady, InputError, PreserveError, SourceNotFound, UnsafeXML
from preserve.intake.collection import is_litter
from preserve.intake.ddex.detect import candidates, refusal
from preserve.intake.ddex.parse import read_message
from preserve.intake.sheet import SHEET_NAMES
from preserve.package import package_collection


@dataclass(frozen=True)
class ReleaseOutcome:
    folder: str                                        # the release folder's name in the batch
    status: Literal["packaged", "skipped", "failed"]
    bag: Path | None = None
    reason: str = ""                                   # why skipped or failed, in plain words
    problems: tuple[str, ...] = ()                     # the check's problems, when that is why


@dataclass
class BatchResult:
    outcomes: list[ReleaseOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[ReleaseOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


def release_folders(batch: Path) -> tuple[list[Path], list[Path]]:
    """(release folders, other folders) of ``batch``, in name order; hidden folders and OS litter left out.

    A release folder holds an XML message or a sheet at its top; another folder (the batch's
    agreements, say) is not a release.
    """
    releases: list[Path] = []
    others: list[Path] = []
    for p in sorted(batch.iterdir()):
        if not p.is_dir() or p.is_symlink() or p.name.startswith(".") or is_litter(p.name):
            continue
        try:
            names = [c.name for c in p.iterdir() if c.is_file()]
        except OSError:
            names = ["(unreadable)"]    # the check names the OS error
        is_release = any(n.lower().endswith(".xml") or n in SHEET_NAMES or n == "(unreadable)" for n in names)
        (releases if is_release else others).append(p)
    return releases, others


def aip_name(folder: Path) -> str:
    """The AIP's name: the main release's ICPN (UPC/EAN), else its reference, else the folder's name."""
    try:
        found = candidates(folder, [p.name for p in folder.iterdir() if p.is_file()])
    except OSError:
        found = []
    if len(found) == 1 and refusal(*found[0]) is None and found[0][1].version:
        rel, root = found[0]
        try:
            release = read_message(str(folder / rel), source=rel, version=root.version or "").main_release
        except UnsafeXML:
            release = None      # the check refuses it, naming why
        name = (release.icpn or release.reference) if release else None
        if name and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            return name
    return folder.name


def package_batch(batch: str | os.PathLike[str], dest_dir: str | os.PathLike[str], *,
                  on_start: Callable[[str, Path], None] | None = None,
                  on_outcome: Callable[[ReleaseOutcome], None] | None = None,
                  **options: Any) -> BatchResult:
    """Package every release folder of ``batch`` into ``dest_dir``; ``options`` go to package_collection.

    ``on_start(folder, dest)`` is told as a release starts, ``on_outcome`` as it ends. Raises only
    for a batch that is not a folder; each release's failure is an outcome.
    """
    batch, dest_dir = Path(batch), Path(dest_dir)
    if not batch.exists():
        raise SourceNotFound(path=str(batch))
    if not batch.is_dir():
        raise InputError(f"{batch}: is not a folder; --batch takes the batch folder holding one folder per release")
    folders, others = release_folders(batch)
    if not folders:
        raise InputError(f"{batch}: holds no release folders (a sub-folder with a DDEX message); a batch has one "
                         "sub-folder per release")
    dest_dir.mkdir(parents=True, exist_ok=True)
    result = BatchResult()
    for other in others:
        result.outcomes.append(ReleaseOutcome(other.name, "skipped", None, "holds no DDEX message or sheet, so it is "
                                                                           "not a release folder"))
        if on_outcome is not None:
            on_outcome(result.outcomes[-1])
    taken: dict[str, str] = {}
    for folder in folders:
        name = aip_name(folder)
        if name in taken:
            name = f"{name}-{folder.name}"      # two folders of one release: never one bag over another
        taken[name] = folder.name
        dest = dest_dir / name
        if dest.exists() or any(dest_dir.glob(f"{name}.tar*")) or (dest_dir / f"{name}.zip").exists():
            outcome = ReleaseOutcome(folder.name, "skipped", dest, "already packaged there")
        else:
            if on_start is not None:
                on_start(folder.name, dest)
            outcome = _package_one(batch, folder, dest, options)
        result.outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    return result


def _package_one(batch: Path, folder: Path, dest: Path, options: dict[str, Any]) -> ReleaseOutcome:
    try:
        packaged = package_collection(folder, dest, inherit_from=batch, **options)
    except CollectionNotReady as exc:
        report = exc.report
        problems = tuple(p.message for p in report.problems) if report is not None else ()
        return ReleaseOutcome(folder.name, "failed", None, f"{len(problems)} problem(s) found by the check", problems)
    except PreserveError as exc:
        return ReleaseOutcome(folder.name, "failed", None, str(exc))
    return ReleaseOutcome(folder.name, "packaged", packaged.bag.path)
