"""A batch's ``collection.toml`` applying to a release folder that has none of its own.

Labels deliver a batch: one folder per release, and the deposit agreement once, for all of them,
in the batch folder. When a release folder holds no ``collection.toml``, the batch's applies; its
``[defaults]`` agreement is then a path in the batch folder. Both files go into every release's
package under ``data/submission/batch/``, so each AIP carries the agreement that cleared it.
A release folder checked or packaged on its own finds its batch the same way (:func:`batch_parent`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from preserve.intake.collection import CONFIG_NAME, CollectionConfig, inside, load_config
from preserve.intake.ddex.detect import candidates
from preserve.intake.sheet import SHEET_NAMES
from preserve.model import SubmissionFile

#: where the batch's own files go, under data/submission/
BATCH_FOLDER = "batch/"


@dataclass
class Inherited:
    """The batch folder whose configuration a release folder uses, and the files it contributed."""

    folder: Path
    files: dict[str, str] = field(default_factory=dict)     # batch-relative path -> submission role

    def agreement_ok(self, path: str) -> str | None:
        """None when ``path`` is a regular file inside the batch folder (then it is packaged), else why not."""
        rel = path.replace("\\", "/").removeprefix("./")
        if not inside(self.folder, rel):
            return "points outside the batch folder; the batch's agreement must be delivered inside it"
        target = self.folder / rel
        if target.is_symlink():
            return "is a symbolic link; deliver the file itself"
        if not target.is_file():
            return f"does not exist in the batch folder {self.folder}"
        self.files.setdefault(rel, "rights-document")
        return None

    def bagged(self, rel: str) -> str:
        """The path under data/submission/ of a batch file."""
        return BATCH_FOLDER + rel.replace("\\", "/").removeprefix("./")

    def submission_files(self) -> list[SubmissionFile]:
        out = []
        for rel, role in sorted(self.files.items()):
            path = self.folder.resolve() / rel
            try:
                size = os.stat(path, follow_symlinks=False).st_size
            except OSError:
                size = 0
            out.append(SubmissionFile(str(path), "data/submission/" + self.bagged(rel), role, size))  # type: ignore[arg-type]
        return out


def batch_parent(root: Path) -> Path | None:
    """The batch folder of a DDEX release folder checked on its own: its parent, when ``root`` has no
    collection.toml and no sheet of its own but a DDEX message, and the parent has a collection.toml."""
    parent = root.resolve().parent
    if (root / CONFIG_NAME).exists() or not (parent / CONFIG_NAME).is_file():
        return None
    if any((root / name).exists() for name in SHEET_NAMES):
        return None
    try:
        names = [p.name for p in root.iterdir() if p.is_file() and not p.is_symlink()]
    except OSError:
        return None
    return parent if candidates(root, names) else None


def config_for(root: Path, inherit_from: str | os.PathLike[str] | None) -> tuple[CollectionConfig, Inherited | None]:
    """``root``'s collection.toml, else (with ``inherit_from``) the batch folder's."""
    cfg = load_config(root)
    if cfg.present or inherit_from is None or not (Path(inherit_from) / CONFIG_NAME).is_file():
        return cfg, None
    inherited = Inherited(Path(inherit_from))
    inherited.files[CONFIG_NAME] = "collection-config"
    cfg = load_config(inherited.folder)
    cfg.problems = [p.replace(CONFIG_NAME, f"{inherited.folder}/{CONFIG_NAME}", 1) for p in cfg.problems]
    return cfg, inherited
