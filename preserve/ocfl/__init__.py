"""A versioned OCFL 1.1 store of bags: each version a complete bag, unchanged files stored once."""

from __future__ import annotations

from preserve.ocfl.ingest import IngestResult, ingest
from preserve.ocfl.layout import FLAT, HASHED, StorageRoot, init_root, open_root

__all__ = ["FLAT", "HASHED", "IngestResult", "StorageRoot", "ingest", "init_root", "open_root"]
