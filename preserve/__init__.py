"""preserve: BagIt preservation packages for rights-cleared audio collections.

The public API is re-exported here; everything else is private to the package.
"""

from __future__ import annotations

__version__ = "0.1.0"

from preserve.bag.reader import Bag, open_bag
from preserve.bag.validate import Finding, ValidationReport, validate_bag
from preserve.bag.writer import BagResult, PayloadEntry, create_bag, payload_from_directory
from preserve.errors import PreserveError
from preserve.fixity import ALGORITHMS, copy_and_hash, hash_file

# Heavier entry points load on first use (PEP 562): `import preserve` (and so every command)
# does not pay for numpy, boto3 or lxml schemas it will not use.
_LAZY: dict[str, str] = {
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
