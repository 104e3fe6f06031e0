"""Serialized bags: the formats, writing them, and reading their members safely.

Writing (:func:`finalizer`): one top-level directory named like the bag (RFC 8493 section 4),
members in a deterministic order (the bag's own tag files first, ``bagit.txt`` leading, then tag
folders, then ``data/``, each folder sorted by name; owners zeroed), written to a hidden file
beside the destination, fsynced, read back from storage and compared member by member with the
staged bag, then linked into place, so the destination appears whole or not at all and an
existing file is never replaced.

Reading (:func:`iter_members`) refuses what could write outside a destination or smuggle content:
absolute names, ``..``, links, devices, duplicate names, members outside the one top-level folder.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import secrets
import shutil
import stat
import tarfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from lzma import LZMAError
from pathlib import Path
from typing import IO, Any
from zlib import crc32 as zlib_crc32
from zlib import error as zlib_error

from preserve.bag.paths import decode_manifest_path, unsafe_reason
from preserve.bag.tagfiles import split_lines
from preserve.bag.writer import archive_partial_path
from preserve.errors import BadArchive, DestinationExists, StorageError, VerificationFailed
from preserve.fixity import drop_cache, fsync_path, hash_file, hash_stream
from preserve.serialize.zipmethods import Readable, open_member, unreadable_method

#: Serialization formats preserve writes and reads, with their file name endings.
FORMATS: dict[str, tuple[str, ...]] = {"tar": (".tar",), "tar.gz": (".tar.gz", ".tgz"), "zip": (".zip",)}
CHUNK = 1024 * 1024
SPOOLED = re.compile(r"^(bagit\.txt|bag-info\.txt|package-info\.txt|fetch\.txt|(tag)?manifest-[A-Za-z0-9-]+\.txt)$")
MANIFEST = re.compile(r"^(tag)?manifest-([A-Za-z0-9-]+)\.txt$")
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def archive_format(path: str | os.PathLike[str]) -> str | None:
    """'tar', 'tar.gz' or 'zip' by the file's first bytes (then its name), None when neither."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            head = f.read(512)
    except OSError:
        head = b""
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head.startswith(b"\x1f\x8b"):
        return "tar.gz"
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    name = p.name.lower()
    for fmt, endings in FORMATS.items():
        if any(name.endswith(e) for e in endings):
            return fmt
    return None


def archive_path(dest: str | os.PathLike[str], fmt: str) -> Path:
    """``dest`` with the format's file name ending added when it lacks it."""
    p = Path(dest)
    if any(p.name.lower().endswith(e) for e in FORMATS[fmt]):
        return p
    return p.with_name(p.name + FORMATS[fmt][0])


def bag_name(archive: str | os.PathLike[str]) -> str:
    """The bag's name: the archive's file name without its ending."""
    name = Path(archive).name
    for endings in FORMATS.values():
        for e in sorted(endings, key=len, reverse=True):
            if name.lower().endswith(e) and len(name) > len(e):
                return name[: -len(e)]
    return name


def content_size(path: str | os.PathLike[str]) -> int:
    """Bytes of member content, for a progress total: from the central directory for zip, the
    file's size for tar (headers add little), 0 (unknown) for tar.gz, whose size is only known by
    decompressing it: its compressed size would leave a bar far past its end."""
    p = Path(path)
    fmt = archive_format(p)
    try:
        if fmt == "zip":
            with zipfile.ZipFile(p) as zf:
                return sum(zi.file_size for zi in zf.infolist())
        if fmt == "tar":
            return p.stat().st_size
    except (OSError, zipfile.BadZipFile):
        pass
    return 0


# -- writing -----------------------------------------------------------------------------------

def _walk_sorted(root: Path, rel: str) -> Iterator[tuple[str, bool]]:
    """(relative path, is folder) below ``root/rel``, depth first, each folder sorted by name."""
    with os.scandir(root / rel) as it:
        entries = sorted(it, key=lambda e: e.name)
    for e in entries:
        child = f"{rel}/{e.name}"
        if e.is_dir(follow_symlinks=False):
            yield child, True
            yield from _walk_sorted(root, child)
        elif e.is_file(follow_symlinks=False):
            yield child, False
        else:
            raise BadArchive(path=str(root / child), reason="the staged bag holds something that is not a file or folder")


def member_order(staging: Path) -> Iterator[tuple[str, bool]]:
    """The deterministic member order: bagit.txt, other top-level tag files, tag folders, data/."""
    with os.scandir(staging) as it:
        top = sorted(it, key=lambda e: e.name)
    files = [e.name for e in top if e.is_file(follow_symlinks=False)]
    folders = [e.name for e in top if e.is_dir(follow_symlinks=False) and e.name != "data"]
    for name in sorted(files, key=lambda n: (n != "bagit.txt", n)):
        yield name, False
    for name in folders:
        yield name, True
        yield from _walk_sorted(staging, name)
    if (staging / "data").is_dir():
        yield "data", True
        yield from _walk_sorted(staging, "data")


def _write_tar(staging: Path, out: IO[bytes], name: str, compress: bool) -> None:
    gz = gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) if compress else None
    target: IO[bytes] = gz if gz is not None else out  # type: ignore[assignment]
    with tarfile.open(fileobj=target, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        top = tarfile.TarInfo(name)
        top.type, top.mode, top.mtime = tarfile.DIRTYPE, 0o755, int(staging.stat().st_mtime)
        tar.addfile(top)
        for rel, is_dir in member_order(staging):
            st = os.stat(staging / rel, follow_symlinks=False)
            info = tarfile.TarInfo(f"{name}/{rel}")
            info.mtime = int(st.st_mtime)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if is_dir:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
                continue
            info.mode, info.size = 0o644, st.st_size
            with open(staging / rel, "rb") as f:
                tar.addfile(info, f)
    if gz is not None:
        gz.close()


def _zip_time(mtime: float) -> tuple[int, int, int, int, int, int]:
    t = time.gmtime(mtime)
    return max((t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec - t.tm_sec % 2), _ZIP_EPOCH)


def _write_zip(staging: Path, out: IO[bytes], name: str) -> None:
    with zipfile.ZipFile(out, "w", allowZip64=True) as zf:
        top = zipfile.ZipInfo(f"{name}/", _zip_time(staging.stat().st_mtime))
        top.external_attr = (0o40755 << 16) | 0x10
        zf.writestr(top, b"")
        for rel, is_dir in member_order(staging):
            st = os.stat(staging / rel, follow_symlinks=False)
            info = zipfile.ZipInfo(f"{name}/{rel}" + ("/" if is_dir else ""), _zip_time(st.st_mtime))
            info.create_system = 3  # Unix, so the mode bits below are read as such
            if is_dir:
                info.external_attr = (0o40755 << 16) | 0x10
                zf.writestr(info, b"")
                continue
            info.external_attr = 0o100644 << 16
            # Audio rarely shrinks under deflate and costs CPU; tag files (XML, manifests) do shrink.
            info.compress_type = zipfile.ZIP_STORED if rel.startswith("data/") else zipfile.ZIP_DEFLATED
            info.file_size = st.st_size
            with open(staging / rel, "rb") as src, zf.open(info, "w", force_zip64=st.st_size > 0x7FFFFFFF) as dst:
                shutil.copyfileobj(src, dst, CHUNK)


XXH3_LISTING = "metadata/xxh3-128.txt"


def _staged_digests(staging: Path) -> dict[str, str]:
    """The xxh3-128 digests the bag writer took of the payload while copying (and verified)."""
    out: dict[str, str] = {}
    try:
        text = (staging / XXH3_LISTING).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return out
    for line in split_lines(text):
        digest, sep, rel = line.partition("  ")
        if sep:
            out[decode_manifest_path(rel)] = digest.lower()
    return out


def _read_back(tmp: Path, staging: Path, name: str, fmt: str, dest: Path) -> None:
    """Read the written archive back from storage and compare every member with the staged bag.

    fsync says the bytes were handed to the device, not that they read back the same; a member
    that differs, is missing or is extra raises :class:`VerificationFailed`.
    """
    def failed(detail: str) -> VerificationFailed:
        return VerificationFailed(f"{dest}: the written {fmt} file reads back differently from the staged bag ({detail}); "
                                  "the destination disk may be failing; nothing was written", path=str(dest), detail=detail)

    known = _staged_digests(staging)
    expected = {rel: is_dir for rel, is_dir in member_order(staging)}
    with open(tmp, "rb") as f:
        drop_cache(f.fileno())
    try:
        for m in iter_members(tmp):
            if m.problem is not None:
                raise failed(f"member {m.name!r} {m.problem}")
            if m.top != name:
                raise failed(f"member {m.name!r} is not in the top-level folder {name!r}")
            if not m.rel:
                continue
            if m.rel not in expected:
                raise failed(f"member {m.name!r} is not in the staged bag")
            if expected.pop(m.rel) != (m.kind == "dir"):
                raise failed(f"member {m.name!r} is a {m.kind} in the archive, not in the staged bag")
            if m.kind == "dir":
                continue
            digest = hash_stream(m.chunks(), ("xxh3-128",))[0]["xxh3-128"]
            if digest == known.get(m.rel):
                continue
            # not listed, or the folder was changed after bagging: what counts is what was archived
            want = hash_file(staging / m.rel, ("xxh3-128",))["xxh3-128"]
            if digest != want:
                raise failed(f"member {m.name!r}: xxh3-128 expected {want}, found {digest}")
    except BadArchive as exc:
        raise failed(str(exc.fields.get("reason", exc))) from exc
    if expected:
        missing = sorted(expected)
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise failed(f"{missing[0]}{more} missing from the archive")


def write_archive(staging: str | os.PathLike[str], dest: str | os.PathLike[str], fmt: str, *,
                  verify: bool = True) -> Path:
    """Serialize the bag folder ``staging`` into ``dest`` (atomically; ``dest`` must not exist).

    ``verify`` reads the written file back from storage and compares each member with
    ``staging`` before ``dest`` appears (see :func:`_read_back`). The partial file is written
    at :func:`preserve.bag.writer.archive_partial_path` of ``staging`` when ``staging`` is beside
    ``dest`` (as :func:`preserve.bag.writer.create_bag` stages, journaling that path), else
    beside ``dest``; it is removed when this call fails.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown serialization {fmt!r}; choose tar, tar.gz or zip")
    staging, dest = Path(staging), Path(os.path.abspath(dest))
    name = bag_name(dest)
    if os.path.lexists(dest):
        raise DestinationExists(path=str(dest))
    # beside the staging, where create_bag's journal names it before the archive is begun: a
    # killed run's partial archive (hundreds of MB) is removed by the next run on DEST
    tmp = archive_partial_path(staging)
    if staging.parent != dest.parent:  # os.link below needs one file system: stay beside DEST
        tmp = dest.parent / f".{dest.name}.preserve-partial-{secrets.token_hex(4)}"
    try:
        with open(tmp, "xb") as out:
            if fmt == "zip":
                _write_zip(staging, out, name)
            else:
                _write_tar(staging, out, name, compress=fmt == "tar.gz")
            out.flush()
            os.fsync(out.fileno())
        if verify:
            _read_back(tmp, staging, name, fmt, dest)
        try:
            os.link(tmp, dest)  # unlike rename, never replaces a file that appeared meanwhile
        except FileExistsError:
            raise DestinationExists(path=str(dest)) from None
        except OSError:
            if os.path.lexists(dest):
                raise DestinationExists(path=str(dest)) from None
            os.rename(tmp, dest)  # file systems without hard links
        fsync_path(dest.parent)
    except OSError as exc:
        raise StorageError(path=str(dest), reason=f"{exc.strerror or exc} while writing the {fmt} file") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return dest


def finalizer(fmt: str, *, verify: bool = True) -> Callable[[Path, Path], None]:
    """A ``finalize`` hook for :func:`preserve.bag.writer.create_bag`: serialize the staged bag
    into ``dest`` (a file named like the bag plus the format's ending; read back unless
    ``verify`` is false), then remove the staging.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown serialization {fmt!r}; choose tar, tar.gz or zip")

    def finalize(staging: Path, dest: Path) -> None:
        write_archive(staging, dest, fmt, verify=verify)
        shutil.rmtree(staging, ignore_errors=True)

    return finalize


# -- reading -----------------------------------------------------------------------------------

@dataclass
class Member:
    """One archive member. ``rel`` is bag-relative ('' for the top folder); ``problem`` says why it
    must not be used (then nothing else about it is trusted); ``unreadable`` why its content
    cannot be read though the member is safe (a zip compression method preserve does not read):
    :meth:`chunks` then raises :class:`BadArchive` saying so."""

    name: str
    kind: str  # file, dir, symlink, hardlink, device, fifo, other
    size: int
    mtime: float
    rel: str = ""
    problem: str | None = None
    archive: str = ""
    top: str = ""
    unreadable: str | None = None
    _open: Callable[[], Readable] | None = None

    def chunks(self) -> Iterator[bytes]:
        """The member's bytes, streamed (only while the iteration stands on this member).

        Never more than ``size``: a zip entry whose data inflates past the size its headers
        declare (a zip bomb, or damage) raises :class:`BadArchive` before the excess is yielded;
        no more than about CHUNK of it is ever in memory, whatever its compression ratio.
        """
        if self.unreadable is not None:
            raise BadArchive(path=self.archive, reason=f"member {self.name!r} {self.unreadable}")
        if self._open is None:
            return
        total = 0
        try:
            with contextlib.closing(self._open()) as f:
                while chunk := f.read(CHUNK):
                    total += len(chunk)
                    if total > self.size:
                        raise BadArchive(path=self.archive, reason=f"member {self.name!r} inflates past the {self.size} "
                                         "bytes its header declares (a zip bomb, or damaged data); nothing more of it was read")
                    yield chunk
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib_error, LZMAError, OSError) as exc:
            reason = f"damaged archive data in member {self.name!r} ({exc})"
            raise BadArchive(path=self.archive, reason=reason) from exc
        except NotImplementedError as exc:  # zipfile, for zip features it lacks (flag bit 5: patched data)
            reason = f"member {self.name!r} uses a zip feature preserve cannot read ({exc})"
            raise BadArchive(path=self.archive, reason=reason) from exc


def _tar_kind(ti: tarfile.TarInfo) -> str:
    if ti.isreg():
        return "file"
    if ti.isdir():
        return "dir"
    if ti.issym():
        return "symlink"
    if ti.islnk():
        return "hardlink"
    if ti.ischr() or ti.isblk():
        return "device"
    if ti.isfifo():
        return "fifo"
    return "other"


def _tar_opener(tf: tarfile.TarFile, ti: tarfile.TarInfo) -> Callable[[], IO[bytes]]:
    def open_member() -> IO[bytes]:
        f = tf.extractfile(ti)
        if f is None:  # not a regular file after all
            raise tarfile.TarError(f"{ti.name}: no data")
        return f

    return open_member


def _raw_tar(path: Path, compressed: bool) -> Iterator[Member]:
    with contextlib.ExitStack() as stack:
        src: Any = stack.enter_context(open(path, "rb"))
        if compressed:
            # gzip.GzipFile checks the CRC-32 and length at the end; tarfile's own gzip reader does not.
            src = stack.enter_context(gzip.GzipFile(fileobj=src, mode="rb"))
        try:
            tf = stack.enter_context(tarfile.open(fileobj=src, mode="r:"))
        except (tarfile.TarError, OSError, EOFError, zlib_error) as exc:
            raise BadArchive(path=str(path), reason=f"not a readable tar file ({exc})") from exc
        last = "the start"
        while True:
            try:
                ti = tf.next()
            except (tarfile.TarError, OSError, EOFError, zlib_error) as exc:
                raise BadArchive(path=str(path), reason=f"damaged tar data after {last} ({exc})") from exc
            if ti is None:
                break
            tf.members.clear()  # type: ignore[attr-defined]  # tarfile keeps every header it has read; a stream pass needs none
            kind = _tar_kind(ti)
            member = Member(ti.name, kind, ti.size if kind == "file" else 0, float(ti.mtime),
                            _open=_tar_opener(tf, ti) if kind == "file" else None)
            if kind in ("symlink", "hardlink"):
                member.problem = f"is a {'symbolic' if kind == 'symlink' else 'hard'} link (to {ti.linkname!r}); bags hold files, not links"
            last = repr(ti.name)
            yield member
        # tarfile also stops, silently, at a header it cannot parse: only zero padding may follow
        # the end, and reading to the end makes gzip check its CRC.
        try:
            while chunk := tf.fileobj.read(CHUNK):
                if chunk.count(0) != len(chunk):
                    raise BadArchive(path=str(path), reason=f"damaged tar data: unreadable data after {last}")
        except (OSError, EOFError, zlib_error, tarfile.TarError) as exc:
            raise BadArchive(path=str(path), reason=f"damaged tar data after {last} ({exc})") from exc


def _zip_opener(zf: zipfile.ZipFile, zi: zipfile.ZipInfo) -> Callable[[], Readable]:
    # The data may run past the header's size, so that Member.chunks sees a lie and refuses the
    # member instead of using a truncated copy; bzip2 and LZMA are decompressed a chunk at a time.
    # The CRC-32 is not checked: the manifests' digests are the real check, and a damaged member
    # must become an "altered" finding like a damaged file in a folder.
    def opener() -> Readable:
        return open_member(zf, zi)

    return opener


_UNICODE_PATH = 0x7075  # Info-ZIP Unicode Path extra field: version 1, CRC-32 of the header name, UTF-8 name


def _unicode_path_extra(extra: bytes, raw: bytes) -> str | None:
    """The name an Info-ZIP Unicode Path extra field gives, when it is for ``raw`` (the header name).

    The field carries the CRC-32 of the name it was written for: a tool that renamed the entry
    without updating the field leaves a stale one, which must then be ignored (APPNOTE 4.6.9).
    """
    i = 0
    while i + 4 <= len(extra):
        tag, size = int.from_bytes(extra[i:i + 2], "little"), int.from_bytes(extra[i + 2:i + 4], "little")
        body = extra[i + 4:i + 4 + size]
        i += 4 + size
        if tag != _UNICODE_PATH or len(body) < 5 or body[0] != 1:
            continue
        if int.from_bytes(body[1:5], "little") != zlib_crc32(raw):
            return None
        try:
            return body[5:].decode("utf-8")
        except UnicodeDecodeError:
            return None
    return None


def zip_name(zi: zipfile.ZipInfo) -> str:
    """A zip entry's name as the tool that wrote it meant it.

    With general-purpose bit 11 set the name is UTF-8 and zipfile decoded it so. Without it,
    zipfile decodes CP437, the format's historical default; but Info-ZIP's zip on Unix stores the
    locale's bytes (UTF-8) with the bit unset, sometimes adding a Unicode Path extra field. So:
    that field when it matches the header name, else the bytes as UTF-8 when they are valid
    UTF-8, and CP437 only when they are not.
    """
    if zi.flag_bits & 0x800:
        return zi.filename
    # zipfile decoded the header bytes with CP437, which maps every byte: encoding gives them back
    raw = zi.orig_filename.encode("cp437")
    name = _unicode_path_extra(zi.extra, raw)
    if name is None:
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            return zi.filename
    # as zipfile does for the names it decodes: a NUL ends the name
    return name.split("\x00", 1)[0]


def _raw_zip(path: Path) -> Iterator[Member]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BadArchive(path=str(path), reason=f"not a readable zip file ({exc})") from exc
    with zf:
        # Central-directory order is the writer's order; reading by offset keeps the disk sequential.
        for zi in sorted(zf.infolist(), key=lambda z: z.header_offset):
            mode = zi.external_attr >> 16 if zi.create_system == 3 else 0
            if zi.is_dir():
                kind = "dir"
            elif stat.S_ISLNK(mode):
                kind = "symlink"
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                kind = "device"
            elif stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                kind = "fifo"
            else:
                kind = "file"
            unreadable = unreadable_method(zi) if kind == "file" else None
            opener = _zip_opener(zf, zi) if kind == "file" and unreadable is None else None
            member = Member(zip_name(zi), kind, zi.file_size, time.mktime((*zi.date_time, 0, 0, -1)),
                            unreadable=unreadable, _open=opener)
            if kind == "symlink":
                member.problem = "is a symbolic link; bags hold files, not links"
            elif zi.flag_bits & 0x1:
                member.problem = "is encrypted"
            yield member



def iter_members(path: str | os.PathLike[str], seen: Callable[[str], bool] | None = None) -> Iterator[Member]:
    """Every member of a tar, tar.gz or zip file, checked, in archive order, in one pass.

    A member's ``problem`` is set when it is unsafe or misplaced: absolute or ``..`` names, links,
    devices, a name seen before (``seen(rel)`` answers that, so huge archives need not keep every
    name in memory), anything outside the one top-level folder. Its content is then never read.
    """
    p = Path(path)
    fmt = archive_format(p)
    if fmt is None:
        raise BadArchive(path=str(p), reason="not a tar, tar.gz or zip file")
    names: set[str] = set()
    if seen is None:
        def seen(rel: str) -> bool:
            if rel in names:
                return True
            names.add(rel)
            return False

    top: str | None = None
    try:
        raw = _raw_zip(p) if fmt == "zip" else _raw_tar(p, compressed=fmt == "tar.gz")
        for m in raw:
            m.archive = str(p)
            name = m.name
            while name.startswith("./"):
                name = name[2:]
            name = name.rstrip("/") if m.kind == "dir" else name
            if not name and m.kind == "dir" and m.name.strip("./") == "":
                continue  # './', the folder tar was run in: names nothing
            reason = unsafe_reason(name) if name else "empty name"
            if reason is None and any(seg in ("", ".") for seg in name.split("/")):
                reason = "empty or '.' path segment"
            if reason is not None:
                m.problem = f"unsafe name ({reason})"
            elif m.problem is None and m.kind in ("device", "fifo", "other"):
                m.problem = f"is a {m.kind if m.kind != 'other' else 'special file'}; bags hold files and folders only"
            if m.problem is not None:
                m.rel = name
                yield m
                continue
            first, _, rest = name.partition("/")
            if top is None:
                top = first
            m.top = top
            if first != top:
                m.problem = f"lies outside the bag's one top-level folder {top!r}"
            elif not rest and m.kind != "dir":
                m.problem = f"the top level must be a folder named like the bag, {top!r} is a {m.kind}"
            m.rel = rest
            if m.problem is None and m.kind != "dir" and seen(rest):
                m.problem = "appears twice in the archive"
            yield m
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib_error) as exc:
        raise BadArchive(path=str(p), reason=f"damaged archive data ({exc})") from exc
    except OSError as exc:
        raise BadArchive(path=str(p), reason=f"read error ({exc.strerror or exc})") from exc


def top_folder(path: str | os.PathLike[str]) -> str | None:
    """The name of the archive's top-level folder (the first safe member's first segment)."""
    for m in iter_members(path):
        if m.problem is None:
            return m.top
    return None
