"""Intake of a producer's audio collection: sheet, rights gate, producer checksums, audio analysis.

:func:`check_collection` is the entry point; :mod:`preserve.package` builds on it.
"""

from __future__ import annotations

from preserve.intake.check import CheckReport, Problem, check_collection

__all__ = ["CheckReport", "Problem", "check_collection"]
