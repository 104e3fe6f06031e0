"""The digest algorithms preserve computes, by the names BagIt manifests use.

Apart from :mod:`preserve.fixity` (which re-exports it), so that work that only needs the names,
such as a fast validation that hashes nothing, starts without loading the hashing engine.
"""

from __future__ import annotations

#: Algorithms preserve can compute, by the names BagIt manifests use (``manifest-<name>.txt``).
ALGORITHMS: tuple[str, ...] = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512", "blake2b", "xxh3-128")
