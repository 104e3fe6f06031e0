"""PREMIS 3 and METS 1.12.1 sidecars: written into a staged bag, checked in a finished one.

:func:`write_sidecars` is what packaging passes to ``create_bag(extra_tags=...)``: it builds one
:class:`~preserve.sidecars.plan.Plan` from the collection and the staged bag, then streams
``metadata/mets.xml`` and ``metadata/premis.xml`` from it. :func:`check_sidecars` is what
``preserve validate`` adds for a bag that has them.
"""

from __future__ import annotations

from preserve.bag.writer import TAG_DIR, StagedBag
from preserve.model import Collection, PackagingContext
from preserve.sidecars.check import check_sidecars
from preserve.sidecars.mets import write_mets
from preserve.sidecars.plan import build_plan
from preserve.sidecars.premis import write_premis

METS_FILE = f"{TAG_DIR}/mets.xml"
PREMIS_FILE = f"{TAG_DIR}/premis.xml"

__all__ = ["METS_FILE", "PREMIS_FILE", "check_sidecars", "write_sidecars"]


def write_sidecars(staged: StagedBag, collection: Collection, context: PackagingContext) -> None:
    """Write ``metadata/mets.xml`` and ``metadata/premis.xml`` into the staged bag.

    METS is written first: by the time its package amdSec is written every model string has been
    seen, so the ingestion event in both documents reports the same escaped characters.
    """
    plan = build_plan(staged, collection, context)
    (staged.path / TAG_DIR).mkdir(exist_ok=True)
    write_mets(staged.path / METS_FILE, plan)
    write_premis(staged.path / PREMIS_FILE, plan)
