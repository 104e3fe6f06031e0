"""Serialized bags (tar, tar.gz, zip): writing, streaming validation, safe unpacking.

- :func:`finalizer` gives :func:`preserve.bag.writer.create_bag` a hook that writes the staged bag
  as one archive, atomically, with a deterministic member order;
- :func:`validate_archive` validates an archive as a stream, with the same findings as for the
  unpacked folder, and no extraction;
- :func:`unpack` extracts safely into staging, validates, then renames into place.
"""

from __future__ import annotations

from preserve.serialize.archive import (
    FORMATS,
    Member,
    archive_format,
    archive_path,
    bag_name,
    content_size,
    finalizer,
    iter_members,
    member_order,
    top_folder,
    write_archive,
)
from preserve.serialize.stream import (
    ArchiveFacts,
    archive_fatal_findings,
    archive_profile_findings,
    scan_archive,
    validate_archive,
)
from preserve.serialize.unpacking import unpack

__all__ = [
    "FORMATS",
    "ArchiveFacts",
    "Member",
    "archive_fatal_findings",
    "archive_format",
    "archive_path",
    "archive_profile_findings",
    "bag_name",
    "content_size",
    "finalizer",
    "iter_members",
    "member_order",
    "scan_archive",
    "top_folder",
    "unpack",
    "validate_archive",
    "write_archive",
]
