"""Errors raised by preserve, and the exit code each one maps to.

Every error the library raises on purpose derives from :class:`PreserveError`. Each class carries
a message template and its exit code; the CLI's ``main()`` is the one place that turns an error
into a message on standard error and that code. The tree::

    PreserveError                         exit 70 unless a subclass says otherwise
    ├── UsageError                        2   the command was given options that cannot work
    ├── ProblemsFound                     1   the bag, collection or replica has problems
    │   ├── BagInvalid                    1   validation found errors (carries the report)
    │   ├── CollectionNotReady            1   intake found problems that stop packaging
    │   ├── SourceChanged                 1   a source file changed while it was copied
    │   ├── VerificationFailed            1   a written copy read back differently
    │   ├── NameConflict                  1   two names differ only by Unicode normalization
    │   ├── UnsafePath                    1   a path would escape its root
    │   ├── UnsafeXML                     1   XML with entities, DTDs or other dangers
    │   ├── ProfileViolation              1   a bag breaks its BagIt profile
    │   ├── AuditProblems                 1   an audit found missing, altered or unreadable files
    │   └── ReplicaConflict               1   a different bag already sits under the target's name
    ├── InputError                        3   an input is missing, unreadable or malformed
    │   ├── SourceNotFound                3
    │   ├── SymlinkRefused                3   a symlink in the source without --follow-links
    │   ├── BadTagFile                    3   bagit.txt / bag-info.txt cannot be read at all
    │   ├── BadProfile                    3   a BagIt profile that is not valid JSON / spec
    │   └── BadArchive                    3   a serialized bag that cannot be read safely
    ├── DestinationExists                 4   the destination is already there
    ├── StorageError                      5   the local file system failed (full disk, permissions)
    ├── RemoteError                       6   an S3-compatible store or network failed
    │   ├── ChecksumSettingRejected       6   the store rejected boto3's default checksum
    │   └── ObjectArchived                6   an archive-class object needs a restore request first
    ├── LedgerError                       7   the audit ledger cannot be opened or written
    ├── SchemaError                       8   XML schemas missing or failing their pinned digests
    ├── WorkerDied                        9   the system killed a worker process (out of memory?)
    ├── StoreBusy                         10  another run is writing the same OCFL store object
    └── Interrupted                       130 stopped by a signal; nothing half-written remains

Exit code 0 means success. Click's own usage errors also exit 2. Any exception that is not a
:class:`PreserveError` is a bug: ``main()`` prints a short report and exits 70.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_EXISTS = 4
EXIT_STORAGE = 5
EXIT_REMOTE = 6
EXIT_LEDGER = 7
EXIT_SCHEMA = 8
EXIT_WORKER = 9
EXIT_BUSY = 10
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

#: The documented table of exit codes; README.md carries the same table and a test compares them.
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success: everything checked is valid / verified",
    EXIT_PROBLEMS: "problems found in the bag, collection or replica (details printed)",
    EXIT_USAGE: "usage error: wrong options or arguments",
    EXIT_INPUT: "an input is missing, unreadable or malformed",
    EXIT_EXISTS: "the destination already exists",
    EXIT_STORAGE: "local storage failed (disk full, permission denied, I/O error)",
    EXIT_REMOTE: "remote storage or network failed",
    EXIT_LEDGER: "the audit ledger cannot be opened or written",
    EXIT_SCHEMA: "XML schemas are missing or fail their pinned digests",
    EXIT_WORKER: "a worker process was killed from outside (out of memory?); nothing half-written was left",
    EXIT_BUSY: "another preserve run is writing the same store object; run again when it has finished",
    EXIT_INTERNAL: "internal error (a bug: please report it)",
    EXIT_INTERRUPTED: "interrupted by a signal; nothing half-written was left",
}


class PreserveError(Exception):
    """Root of every error preserve raises on purpose.

    Subclasses set ``template`` (formatted with the keyword arguments given to the constructor)
    and ``exit_code``. A plain message may be passed positionally instead.
    """

    template: ClassVar[str] = "{message}"
    exit_code: ClassVar[int] = EXIT_INTERNAL

    def __init__(self, message: str | None = None, **fields: Any) -> None:
        self.fields = fields
        if message is None:
            # a path given as a Path reads as its text even under !r, never as PosixPath('...')
            words = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in fields.items()}
            try:
                message = self.template.format(**words)
            except (KeyError, IndexError):
                message = self.template
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message


class UsageError(PreserveError):
    exit_code = EXIT_USAGE


class ProblemsFound(PreserveError):
    exit_code = EXIT_PROBLEMS


class BagInvalid(ProblemsFound):
    template = "{path}: the bag is not valid ({count} problem(s))"

    def __init__(self, message: str | None = None, *, report: Any = None, **fields: Any) -> None:
        self.report = report
        super().__init__(message, **fields)


class CollectionNotReady(ProblemsFound):
    template = "{path}: the collection is not ready to package ({count} problem(s))"

    def __init__(self, message: str | None = None, *, report: Any = None, **fields: Any) -> None:
        self.report = report
        super().__init__(message, **fields)


class SourceChanged(ProblemsFound):
    template = "{path}: the file changed while it was being copied ({detail}); copy it again when it is no longer being written"


class VerificationFailed(ProblemsFound):
    template = "{path}: the written copy reads back differently from the source (xxh3-128 expected {expected}, found {found}); the destination disk may be failing"


class NameConflict(ProblemsFound):
    template = "{path}: names differ only by Unicode normalization ({names}); rename one before bagging"


class UnsafePath(ProblemsFound):
    template = "{path}: unsafe path ({reason})"


class UnsafeXML(ProblemsFound):
    template = "{path}: XML refused ({reason})"


class ProfileViolation(ProblemsFound):
    template = "{path}: the bag does not conform to profile {profile} ({count} problem(s))"


class AuditProblems(ProblemsFound):
    template = "the audit found problems in {count} bag(s)"


class ReplicaConflict(ProblemsFound):
    template = "{target}: a different bag named {name!r} is already there ({reason}); choose another prefix (nothing was uploaded)"


class InputError(PreserveError):
    exit_code = EXIT_INPUT


class SourceNotFound(InputError):
    template = "{path}: no such file or directory"


class SymlinkRefused(InputError):
    template = "{path}: is a symbolic link (to {target}); bags hold files, not links: pass --follow-links to copy what it points to"


class BadTagFile(InputError):
    template = "{path}: {reason}"


class BadProfile(InputError):
    template = "{path}: not a usable BagIt profile: {reason}"


class BadArchive(InputError):
    template = "{path}: cannot read the serialized bag safely: {reason}"


class DestinationExists(PreserveError):
    template = "{path}: already exists; choose a new destination (nothing was written)"
    exit_code = EXIT_EXISTS


class StorageError(PreserveError):
    template = "{path}: {reason}"
    exit_code = EXIT_STORAGE


class RemoteError(PreserveError):
    exit_code = EXIT_REMOTE


class ChecksumSettingRejected(RemoteError):
    template = (
        "{target}: the store rejected the request checksum that boto3 sends by default ({detail}); "
        "rerun with --checksum-when required (or set AWS_REQUEST_CHECKSUM_CALCULATION=when_required)"
    )


class ObjectArchived(RemoteError):
    template = "{target}: stored in {storage_class}; it must be restored before it can be read (rerun with --request-restore)"


class LedgerError(PreserveError):
    template = "{path}: {reason}"
    exit_code = EXIT_LEDGER


class SchemaError(PreserveError):
    exit_code = EXIT_SCHEMA


class WorkerDied(PreserveError):
    """A worker process ended without answering: killed by the out-of-memory killer or by hand."""

    template = "worker process {pid} ended without answering ({how}); nothing half-written was left"
    exit_code = EXIT_WORKER


class StoreBusy(PreserveError):
    """A second writer on one OCFL object (or on a storage root's archive intake)."""

    template = "{path}: another preserve run is writing object {object_id} now; run again when it has finished (nothing was written)"
    exit_code = EXIT_BUSY


class Interrupted(PreserveError):
    template = "interrupted; nothing half-written was left at {path}"
    exit_code = EXIT_INTERRUPTED


def plain_reason(exc: BaseException) -> str:
    """Why ``exc`` happened, in words: ``Permission denied`` rather than str(OSError)'s
    ``[Errno 13] Permission denied: '/srv/x'`` (a message names its file itself, once)."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, UnicodeDecodeError):
        return f"not valid {exc.encoding.upper().replace('-SIG', '')} at byte {exc.start}"
    return str(exc)
