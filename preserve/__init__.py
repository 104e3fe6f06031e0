"""preserve: BagIt preservation packages for rights-cleared audio collections.

The public API is re-exported here; everything else is private to the package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:  # type checkers see the real names; at run time they load on first use
    from preserve.bag.reader import Bag, open_bag
    from preserve.bag.validate import Finding, ValidationReport, validate_bag
    from preserve.bag.writer import BagResult, PayloadEntry, create_bag, payload_from_directory
    from preserve.errors import PreserveError
    from preserve.fixity import ALGORITHMS, copy_and_hash, hash_file

# Every entry point loads on first use (PEP 562): `import preserve` (and so the start of every
# command, before its signal handling is in place) costs nothing, and no command pays for numpy,
# boto3 or lxml schemas it will not use.
_LAZY: dict[str, str] = {
    "Bag": "preserve.bag.reader",
    "open_bag": "preserve.bag.reader",
    "Finding": "preserve.bag.validate",
    "ValidationReport": "preserve.bag.validate",
    "validate_bag": "preserve.bag.validate",
    "BagResult": "preserve.bag.writer",
    "PayloadEntry": "preserve.bag.writer",
    "create_bag": "preserve.bag.writer",
    "payload_from_directory": "preserve.bag.writer",
    "PreserveError": "preserve.errors",
    "ALGORITHMS": "preserve.fixity",
    "copy_and_hash": "preserve.fixity",
    "hash_file": "preserve.fixity",
    "check_collection": "preserve.intake.check",
    "package_collection": "preserve.package",
    "write_sidecars": "preserve.sidecars",
    "check_sidecars": "preserve.sidecars",
    "load_profile": "preserve.profiles",
    "validate_profile": "preserve.profiles",
    "plan_creation": "preserve.profiles",
    "validate_archive": "preserve.serialize",
    "unpack": "preserve.serialize.unpacking",
    "audit_bag": "preserve.audit.runner",
    "Ledger": "preserve.audit.ledger",
    "open_store": "preserve.stores",
    "replicate_bag": "preserve.replication.replicate",
    "restore_bag": "preserve.replication.restore",
    "repair_bag": "preserve.replication.repair",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'preserve' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ALGORITHMS",
    "Bag",
    "BagResult",
    "Finding",
    "Ledger",
    "PayloadEntry",
    "PreserveError",
    "ValidationReport",
    "__version__",
    "audit_bag",
    "check_collection",
    "check_sidecars",
    "copy_and_hash",
    "create_bag",
    "hash_file",
    "load_profile",
    "open_bag",
    "open_store",
    "package_collection",
    "payload_from_directory",
    "plan_creation",
    "repair_bag",
    "replicate_bag",
    "restore_bag",
    "unpack",
    "validate_archive",
    "validate_bag",
    "validate_profile",
    "write_sidecars",
]
