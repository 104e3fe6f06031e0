"""Fixtures for replication tests (the server fixture and environment live in replication_helpers)."""

from __future__ import annotations

import sys
from pathlib import Path

# the helpers module sits beside this file; conftest files are imported before test modules put
# their folder on sys.path
sys.path.insert(0, str(Path(__file__).parent))

from replication_helpers import aws_env, pcli, s3_faulty, s3_nochecksum, s3_server

__all__ = ["aws_env", "pcli", "s3_faulty", "s3_nochecksum", "s3_server"]
