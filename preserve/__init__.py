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

__all__ = [
    "ALGORITHMS",
    "Bag",
    "BagResult",
    "Finding",
    "PayloadEntry",
    "PreserveError",
    "ValidationReport",
    "__version__",
    "copy_and_hash",
    "create_bag",
    "hash_file",
    "open_bag",
    "payload_from_directory",
    "validate_bag",
]
