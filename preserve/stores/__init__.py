"""Replica stores: one small interface (:mod:`preserve.stores.base`), an S3-compatible bucket and
a file-system directory behind it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from preserve.stores.base import ObjectInfo, PartPlan, PutOptions, PutResult, Store

if TYPE_CHECKING:
    from preserve.stores.s3 import S3Settings

__all__ = ["ObjectInfo", "PartPlan", "PutOptions", "PutResult", "Store", "is_s3_url", "open_store"]


def is_s3_url(target: str) -> bool:
    """True for ``s3://bucket/prefix`` targets."""
    return target.startswith("s3://")


def open_store(target: str, settings: S3Settings | None = None) -> Store:
    """The store behind a target: ``s3://bucket/prefix`` or a directory path (``file://`` allowed).

    boto3 is imported only when an S3 target is used.
    """
    if is_s3_url(target):
        from preserve.stores.s3 import S3Store

        return S3Store(target, settings)
    from preserve.stores.filesystem import FilesystemStore

    return FilesystemStore(target)
