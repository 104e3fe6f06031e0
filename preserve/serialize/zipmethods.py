"""Zip compression methods: which ones preserve reads, and reading them with bounded memory.

zipfile reads stored, deflate, bzip2 and LZMA members. For deflate it asks zlib for at most the
bytes wanted, but for bzip2 and LZMA (CPython 3.11, ``ZipExtFile._read1``) it decompresses each
read of compressed bytes whole: one 1 MiB read of a bzip2 stream of zeros inflates to gigabytes in
memory before the caller sees a byte. Those two are therefore read here: zipfile hands over the
member's compressed bytes (it still finds and checks the local header) and :class:`Inflater`
decompresses them at most ``size`` bytes per read, whatever the compression ratio.

Every other method (Deflate64, which Windows Explorer and 7-Zip write for large files, PPMd,
Zstandard, ...) is named by :func:`unreadable_method`, so the caller can refuse the member with a
message instead of zipfile's NotImplementedError.
"""

from __future__ import annotations

import bz2
import copy
import lzma
import struct
import zipfile
from typing import IO, Protocol

#: zip compression methods (APPNOTE 4.4.5) by number, for messages.
METHOD_NAMES: dict[int, str] = {
    0: "stored", 1: "Shrink", 2: "Reduce", 3: "Reduce", 4: "Reduce", 5: "Reduce", 6: "Implode",
    8: "deflate", 9: "Deflate64", 10: "PKWARE DCL Implode", 12: "bzip2", 14: "LZMA",
    16: "IBM z/OS CMPSC", 18: "IBM TERSE", 19: "IBM LZ77 z", 20: "Zstandard (old number)",
    93: "Zstandard", 94: "MP3", 95: "XZ", 96: "JPEG", 97: "WavPack", 98: "PPMd", 99: "AES encryption",
}
#: The methods preserve reads; bzip2 and LZMA through :class:`Inflater`.
READABLE = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA})
_RAW_READ = 256 * 1024  # compressed bytes per read; the decompressor keeps what it has not used yet
_LZMA_EOS = 0x2  # general-purpose bit 1 for LZMA: the stream ends with an end-of-stream marker
_LZMA_MIN_DICT = 4096  # liblzma's smallest dictionary


class Readable(Protocol):
    """What a member is read through: zipfile's and tarfile's member files, :class:`Inflater`."""

    def read(self, size: int, /) -> bytes: ...

    def close(self) -> None: ...


def method_name(method: int) -> str:
    """'Deflate64 (method 9)', or 'method 77' for a number the zip specification does not name."""
    name = METHOD_NAMES.get(method)
    return f"{name} (method {method})" if name else f"method {method}"


def unreadable_method(zi: zipfile.ZipInfo) -> str | None:
    """Why ``zi``'s data cannot be read, or None when its compression method is one preserve reads."""
    if zi.compress_type in READABLE:
        return None
    return (f"is compressed with {method_name(zi.compress_type)}, which preserve cannot read (it reads stored, "
            "deflate, bzip2 and LZMA members); extract the archive with the tool that made it and validate the "
            "folder, or make the zip again with deflate")


class Inflater:
    """A bzip2 or LZMA zip member's data, decompressed at most ``size`` bytes per :meth:`read`.

    ``limit`` stops the data at that many bytes, for an LZMA stream without an end-of-stream
    marker, which the format ends at the member's declared size. A stream whose compressed bytes
    run out before its end ends there, as zipfile ends one (the manifests find the short file).
    """

    def __init__(self, raw: IO[bytes], decompressor: bz2.BZ2Decompressor | lzma.LZMADecompressor,
                 limit: int | None = None) -> None:
        self._raw, self._decompressor, self._left = raw, decompressor, limit

    def read(self, size: int, /) -> bytes:
        d = self._decompressor
        if self._left is not None:
            size = min(size, self._left)
        while size > 0 and not d.eof:
            data = b""
            if d.needs_input:
                data = self._raw.read(_RAW_READ)
                if not data:
                    break
            out = d.decompress(data, max_length=size)
            if out:
                if self._left is not None:
                    self._left -= len(out)
                return out
            if not data and not d.needs_input and not d.eof:  # never spin on a stuck decompressor
                raise OSError("the decompressor makes no progress")
        return b""

    def close(self) -> None:
        self._raw.close()


def _lzma_decompressor(raw: IO[bytes], file_size: int) -> lzma.LZMADecompressor:
    """The decompressor for an LZMA member, from the header before its stream (APPNOTE 5.8.8):
    version (2 bytes), properties size (2 bytes, little-endian), then the LZMA1 properties, a byte
    for lc/lp/pb and the dictionary size (4 bytes, little-endian)."""
    head = raw.read(4)
    if len(head) < 4:
        raise lzma.LZMAError("the LZMA header is cut short")
    props_size = struct.unpack("<H", head[2:4])[0]
    props = raw.read(props_size)
    if props_size < 5 or len(props) < props_size:
        raise lzma.LZMAError(f"the LZMA properties are {len(props)} bytes, not 5")
    lclppb, dict_size = props[0], struct.unpack("<I", props[1:5])[0]
    if lclppb >= 9 * 5 * 5:
        raise lzma.LZMAError(f"invalid LZMA properties byte {lclppb}")
    pb, rest = divmod(lclppb, 9 * 5)
    lp, lc = divmod(rest, 9)
    # liblzma allocates the whole dictionary up front, and a header may claim 4 GiB; no match
    # reaches further back than the member's own size, and past that size the member is refused
    dict_size = max(_LZMA_MIN_DICT, min(dict_size, file_size + 1))
    return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[
        {"id": lzma.FILTER_LZMA1, "dict_size": dict_size, "lc": lc, "lp": lp, "pb": pb}])


def _without_crc(f: IO[bytes]) -> IO[bytes]:
    # zipfile raises on a CRC-32 mismatch at the last read, discarding that read's bytes (and on
    # the compressed bytes opened as stored, compares them with the CRC-32 of the data)
    if hasattr(f, "_expected_crc"):
        f._expected_crc = None
    return f


def open_member(zf: zipfile.ZipFile, zi: zipfile.ZipInfo) -> Readable:
    """``zi``'s data, which may run past its declared size (the caller checks that).

    Damaged data raises zipfile.BadZipFile, OSError (bzip2), lzma.LZMAError or zlib.error from
    :meth:`Readable.read`. The CRC-32 is not checked: see the caller.
    """
    if zi.compress_type not in (zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        # zipfile silently stops at the header's size; one byte more lets the caller see a lie
        # (data inflating past that size) and refuse the member instead of using a truncated copy
        probe = copy.copy(zi)
        probe.file_size = zi.file_size + 1
        return _without_crc(zf.open(probe))
    # the compressed bytes, as a stored member of that size: zipfile still reads the local header
    stored = copy.copy(zi)
    stored.compress_type, stored.file_size = zipfile.ZIP_STORED, zi.compress_size
    raw = _without_crc(zf.open(stored))
    try:
        if zi.compress_type == zipfile.ZIP_BZIP2:
            return Inflater(raw, bz2.BZ2Decompressor())
        eos = bool(zi.flag_bits & _LZMA_EOS)
        return Inflater(raw, _lzma_decompressor(raw, zi.file_size), limit=None if eos else zi.file_size)
    except BaseException:
        raw.close()
        raise
