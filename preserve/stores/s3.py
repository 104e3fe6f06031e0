"""An S3-compatible bucket as a replica store (AWS S3, MinIO, Ceph RGW, Wasabi, Backblaze B2...).

Integrity is checked end to end by preserve itself, not left to the server: every byte sent is
hashed as it is read and compared with the bag's manifest before the object is allowed to come
into existence (a single PUT is sent only after its bytes hashed right; a multipart upload is
completed only when the whole file hashed right). The manifest's SHA-256 travels as the S3
additional checksum (so a real S3 rejects a corrupted transfer) and in object metadata.

Credentials come only from boto3's standard chain (environment, shared profile, instance role);
this module never accepts, prints or logs them.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions as bex
from botocore.config import Config

from preserve.errors import (
    BagInvalid,
    ChecksumSettingRejected,
    InputError,
    ObjectArchived,
    RemoteError,
    UsageError,
)
from preserve.stores.base import (
    ObjectInfo,
    PartPlan,
    PutOptions,
    PutResult,
    Store,
    b64_of_hex,
    check_endpoint_url,
    multipart_etag,
)

#: S3's smallest allowed part (all parts but the last).
MIN_PART = 5 * 1024 * 1024
#: S3's largest part count.
MAX_PARTS = 10_000
META_SHA256 = "sha256"
META_MD5 = "md5"
_CHUNK = 1024 * 1024
_URL = re.compile(r"^s3://([^/]+)/?(.*)$")


@dataclass(frozen=True)
class S3Settings:
    """How to reach a bucket. Holds no credentials: those come from boto3's standard chain."""

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    path_style: bool = False
    checksum_when: str = "supported"  # botocore request_checksum_calculation / response validation
    max_attempts: int = 5
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_connections: int = 10

    def __post_init__(self) -> None:
        if self.endpoint_url is not None:
            check_endpoint_url(self.endpoint_url, "--endpoint-url")


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``."""
    m = _URL.match(url)
    if not m or not m.group(1):
        raise UsageError(f"{url}: not an S3 URL of the form s3://bucket/prefix")
    return m.group(1), m.group(2).strip("/")


def _client(settings: S3Settings) -> Any:
    if settings.checksum_when not in ("supported", "required"):
        raise UsageError(f"--checksum-when must be 'supported' or 'required', not {settings.checksum_when!r}")
    when = "when_supported" if settings.checksum_when == "supported" else "when_required"
    config = Config(
        retries={"max_attempts": settings.max_attempts, "mode": "standard"},
        s3={"addressing_style": "path" if settings.path_style else "auto"},
        request_checksum_calculation=when,
        response_checksum_validation=when,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_pool_connections=settings.max_connections,
    )
    try:
        session = boto3.Session(profile_name=settings.profile) if settings.profile else boto3.Session()
    except bex.ProfileNotFound as exc:
        raise UsageError(f"AWS profile {settings.profile!r} is not configured ({exc})") from None
    return session.client("s3", endpoint_url=settings.endpoint_url, region_name=settings.region, config=config)


_CHECKSUM_WORDS = ("checksum", "crc32", "crc64", "x-amz-sdk-checksum", "x-amz-trailer", "content-sha256")


def remote_error(exc: BaseException, where: str, settings: S3Settings, action: str) -> RemoteError:
    """A curator-readable error naming the object; never echoes credentials (botocore does not
    put secrets into its messages, and neither do we)."""
    if isinstance(exc, bex.NoCredentialsError | bex.PartialCredentialsError):
        return RemoteError(f"{where}: no usable AWS credentials; provide them through the environment "
                           "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), a profile (--aws-profile) or an instance role")
    if isinstance(exc, bex.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code") or "?")
        message = str(err.get("Message") or "") or code  # some servers send no message at all
        text = f"{code} {message}".lower()
        if settings.checksum_when == "supported" and code in (
                "InvalidRequest", "NotImplemented", "InvalidArgument", "BadRequest", "XAmzContentSHA256Mismatch",
                "InvalidDigest", "BadDigest") and any(w in text for w in _CHECKSUM_WORDS):
            return ChecksumSettingRejected(target=where, detail=f"{code}: {message}")
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken",
                    "ExpiredToken"):
            # the server's reason is kept: an object-lock refusal reads as AccessDenied too
            reason = f"{code}: {message}" if message != code else code
            return RemoteError(f"{where}: access denied while trying to {action} ({reason}); either the access key "
                               "or secret is wrong (or expired), or these credentials lack the permission for this: "
                               "check both")
        if code in ("NoSuchBucket",):
            return RemoteError(f"{where}: the bucket does not exist ({code}); check the bucket name and the endpoint")
        return RemoteError(f"{where}: could not {action}: {code}: {message}")
    if isinstance(exc, bex.EndpointConnectionError | bex.ConnectionClosedError | bex.ReadTimeoutError
                  | bex.ConnectTimeoutError | bex.ResponseStreamingError | bex.IncompleteReadError
                  | ConnectionError | bex.HTTPClientError):
        return RemoteError(f"{where}: the connection failed while trying to {action}, after "
                           f"{settings.max_attempts} attempt(s) ({type(exc).__name__}); check the network and rerun "
                           "(finished objects are kept and skipped)")
    return RemoteError(f"{where}: could not {action} ({type(exc).__name__}: {exc})")


_BOTO_ERRORS: tuple[type[BaseException], ...] = (bex.BotoCoreError, bex.ClientError, ConnectionError)


def _read_part(f: Any, size: int, options: PutOptions) -> bytes:
    if options.limiter is not None:
        options.limiter.consume(size)
    return bytes(f.read(size))


class S3Store(Store):
    """A bucket and prefix. Thread-safe: boto3 clients may be shared between threads."""

    kind = "s3"

    def __init__(self, url: str, settings: S3Settings | None = None) -> None:
        self.bucket, self.prefix = parse_s3_url(url)
        self.url = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.settings = settings or S3Settings()
        self.client = _client(self.settings)
        self._bucket_seen = False  # set once the bucket is known to exist (see _check_bucket)

    # --- helpers -----------------------------------------------------------------------------

    def _full(self, key: str) -> str:
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            # a file name that is not UTF-8 (kept as surrogate escapes) has no S3 key
            shown = key.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            raise InputError(f"{shown}: the name is not valid UTF-8, so it "
                             "cannot be an S3 object key; give the file a UTF-8 name in a new bag") from None
        return self.join(self.prefix, key)

    def where(self, key: str) -> str:
        """The URL of one object, for messages."""
        return f"s3://{self.bucket}/{self._full(key)}"

    def _call(self, key: str, action: str, fn: Any, *, storage_class: str | None = None, **kw: Any) -> Any:
        try:
            return fn(Bucket=self.bucket, **kw)
        except _BOTO_ERRORS as exc:
            if storage_class and isinstance(exc, bex.ClientError):
                err = exc.response.get("Error", {})
                code = str(err.get("Code") or "?")
                message = str(err.get("Message") or "") or "no reason given"
                about_checksum = any(w in f"{code} {message}".lower() for w in _CHECKSUM_WORDS)
                if code in ("InvalidStorageClass", "InvalidArgument", "NotImplemented") and not about_checksum:
                    raise RemoteError(f"{self.where(key)}: the store refused storage class {storage_class!r} "
                                      f"({code}: {message}); choose a storage class this store supports, or leave "
                                      "--storage-class (and storage-class in preserve.toml) out") from None
            raise remote_error(exc, self.where(key), self.settings, action) from None

    def _put_args(self, options: PutOptions, archive: bool) -> dict[str, Any]:
        args: dict[str, Any] = {}
        if options.storage_class and archive:
            args["StorageClass"] = options.storage_class
        if options.lock_mode:
            args["ObjectLockMode"] = options.lock_mode.upper()
            args["ObjectLockRetainUntilDate"] = _parse_date(options.retain_until)
        return args

    # --- the interface -----------------------------------------------------------------------

    def put_file(self, key: str, source: Path, sha256_hex: str, size: int, options: PutOptions,
                 *, archive: bool = True) -> PutResult:
        if size > options.multipart_threshold:
            return self._put_multipart(key, source, sha256_hex, size, options, archive)
        with open(source, "rb") as f:
            data = _read_part(f, size + 1, options)
        found = hashlib.sha256(data).hexdigest()
        if found != sha256_hex or len(data) != size:
            raise BagInvalid(f"{source}: does not match manifest-sha256.txt (expected {sha256_hex}, found {found}, "
                             f"{len(data)} of {size} bytes); validate the bag before replicating (it was not uploaded)")
        md5, resp = self._put_object(key, data, sha256_hex, options, archive)
        return PutResult(key=key, size=size, sent=size, etag=md5,
                         stored=self._answered(key, size, sha256_hex, resp, md5_meta=md5))

    def _answered(self, key: str, size: int, sha256_hex: str, resp: dict[str, Any], *,
                  md5_meta: str | None = None) -> ObjectInfo | None:
        """The object as the answer to its PutObject / CompleteMultipartUpload describes it: the
        ETag and checksum the server computed from the bytes it received, as a HEAD would give
        them, so that an upload is verified without another request. None without an ETag."""
        if not resp.get("ETag"):
            return None
        return ObjectInfo(key=key, size=size, sha256_meta=sha256_hex, checksum_sha256=resp.get("ChecksumSHA256"),
                          version_id=resp.get("VersionId"), etag=str(resp["ETag"]),
                          encryption=resp.get("ServerSideEncryption") or (
                              "sse-c" if resp.get("SSECustomerAlgorithm") else None),
                          md5_meta=md5_meta)

    def _put_object(self, key: str, data: bytes, sha256_hex: str, options: PutOptions,
                    archive: bool) -> tuple[str, dict[str, Any]]:
        """Send one object; returns its MD5 (hex), which is its ETag where the ETag is an MD5.

        The MD5 is computed from the same bytes as the SHA-256 just checked and travels three
        ways: Content-MD5 (a server that keeps no SHA-256 still refuses a corrupted body), the
        x-amz-meta-md5 metadata (what a later audit compares the ETag with) and the ETag
        check after the upload."""
        digest = hashlib.md5(data, usedforsecurity=False).digest()
        resp = self._call(key, "upload it", self.client.put_object, Key=self._full(key), Body=data,
                   ChecksumAlgorithm="SHA256", ChecksumSHA256=b64_of_hex(sha256_hex),
                   ContentMD5=base64.b64encode(digest).decode("ascii"),
                   Metadata={**options.metadata, META_SHA256: sha256_hex, META_MD5: digest.hex()},
                   storage_class=options.storage_class if archive else None, **self._put_args(options, archive))
        if options.progress is not None:
            options.progress(len(data))
        return digest.hex(), dict(resp)

    def _uploads(self, key: str, full: str) -> Iterator[dict[str, Any]]:
        """Every unfinished multipart upload whose key starts with ``full``, every page of the
        listing read (a bucket can hold more than one page of them)."""
        kw: dict[str, Any] = {"Prefix": full}
        while True:
            resp = self._call(key, "list unfinished uploads", self.client.list_multipart_uploads, **kw)
            yield from (u for u in resp.get("Uploads", []) if str(u.get("Key", "")).startswith(full))
            if not resp.get("IsTruncated"):
                return
            key_marker, id_marker = resp.get("NextKeyMarker"), resp.get("NextUploadIdMarker")
            if not key_marker or (key_marker, id_marker) == (kw.get("KeyMarker"), kw.get("UploadIdMarker")):
                return  # a server that says "more" without saying where from: stop rather than loop
            kw.update(KeyMarker=key_marker, UploadIdMarker=id_marker or "")

    def _existing_upload(self, key: str, part_size: int, max_age: dt.timedelta) -> tuple[str | None, dict[int, dict[str, Any]]]:
        """An interrupted upload of our own for ``key`` that can be resumed, with its parts.

        An upload is resumed when its parts have the size this run sends and it was last active
        (its newest part sent, or it was started) within ``max_age``; the others for this key
        are aborted, since their parts cannot be reused."""
        full = self._full(key)
        now = dt.datetime.now(dt.UTC)
        chosen: str | None = None
        parts: dict[int, dict[str, Any]] = {}
        for upload in [u for u in self._uploads(key, full) if u.get("Key") == full]:
            uid = str(upload["UploadId"])
            if chosen is None:
                listed = self._list_parts(key, uid)
                # some servers report a fixed date for Initiated: the parts' own dates say more
                active = max([_aware(upload.get("Initiated"))] + [_aware(p.get("LastModified")) for p in listed.values()])
                same_size = all(p["Size"] == part_size for n, p in listed.items() if n < max(listed, default=0))
                if same_size and now - active <= max_age:
                    chosen, parts = uid, listed
                    continue
            self._call(key, "abort a stale upload", self.client.abort_multipart_upload, Key=full, UploadId=uid)
        return chosen, parts

    def _list_parts(self, key: str, upload_id: str) -> dict[int, dict[str, Any]]:
        parts: dict[int, dict[str, Any]] = {}
        marker = 0
        while True:
            resp = self._call(key, "list uploaded parts", self.client.list_parts, Key=self._full(key),
                              UploadId=upload_id, PartNumberMarker=marker)
            for p in resp.get("Parts", []):
                parts[int(p["PartNumber"])] = p
            if not resp.get("IsTruncated"):
                return parts
            marker = int(resp["NextPartNumberMarker"])

    def _put_multipart(self, key: str, source: Path, sha256_hex: str, size: int, options: PutOptions,
                       archive: bool) -> PutResult:
        part_size = max(options.part_size, MIN_PART, -(-size // MAX_PARTS))
        full = self._full(key)
        upload_id, existing = self._existing_upload(key, part_size, options.upload_max_age)
        if upload_id is None:
            resp = self._call(key, "start a multipart upload", self.client.create_multipart_upload, Key=full,
                              ChecksumAlgorithm="SHA256", Metadata={**options.metadata, META_SHA256: sha256_hex},
                              storage_class=options.storage_class if archive else None,
                              **self._put_args(options, archive))
            upload_id = str(resp["UploadId"])
        whole = hashlib.sha256()
        digests: list[str] = []
        md5s: list[bytes] = []
        etags: dict[int, str] = {}
        sent = resumed = 0
        # parts are read (and the whole file hashed, with each part's SHA-256 and MD5) in order
        # here, and sent by a few threads; at most ``part_workers`` parts are held in memory at once.
        # A failure leaves the upload in place: the next run resumes it (parts that match are kept)
        in_flight: list[Future[tuple[int, str]]] = []
        with open(source, "rb") as f, ThreadPoolExecutor(max_workers=options.part_workers,
                                                         thread_name_prefix="preserve-part") as pool:
            try:
                number = 0
                while True:
                    data = _read_part(f, part_size, options)
                    if not data:
                        break
                    number += 1
                    whole.update(data)
                    digest = hashlib.sha256(data).digest()
                    digests.append(digest.hex())
                    md5s.append(hashlib.md5(data, usedforsecurity=False).digest())
                    b64 = base64.b64encode(digest).decode("ascii")
                    prior = existing.get(number)
                    if prior is not None and _same_part(prior, data, b64, md5s[-1]):
                        resumed += 1
                        etags[number] = str(prior["ETag"])
                        if options.progress is not None:
                            options.progress(len(data))
                        continue
                    while len(in_flight) >= options.part_workers:
                        n, etag = in_flight.pop(0).result()
                        etags[n] = etag
                    in_flight.append(pool.submit(self._upload_part, key, upload_id, number, data, b64, options))
                    sent += len(data)
                while in_flight:
                    n, etag = in_flight.pop(0).result()
                    etags[n] = etag
            finally:
                for fut in in_flight:
                    fut.cancel()
        done = [{"PartNumber": n, "ETag": etags[n], "ChecksumSHA256": base64.b64encode(bytes.fromhex(d)).decode("ascii")}
                for n, d in enumerate(digests, 1)]
        found = whole.hexdigest()
        if found != sha256_hex or sum(1 for _ in done) == 0:
            self._call(key, "abort the upload", self.client.abort_multipart_upload, Key=full, UploadId=upload_id)
            raise BagInvalid(f"{source}: does not match manifest-sha256.txt (expected {sha256_hex}, found {found}); "
                             "validate the bag before replicating (the upload was aborted)")
        self._call(key, "complete the multipart upload", self.client.complete_multipart_upload, Key=full,
                   UploadId=upload_id, MultipartUpload={"Parts": done})
        self._ensure_retention(key, options)
        etag = multipart_etag(md5s)
        # no ``stored``: some servers leave the composite checksum out of this answer but give it
        # to a HEAD, and one HEAD per large file costs nothing next to its parts
        return PutResult(key=key, size=size, sent=sent, parts=PartPlan(part_size, digests, etag), resumed_parts=resumed,
                         etag=etag)

    def _upload_part(self, key: str, upload_id: str, number: int, data: bytes, b64: str,
                     options: PutOptions) -> tuple[int, str]:
        resp = self._call(key, f"upload part {number}", self.client.upload_part, Key=self._full(key),
                          UploadId=upload_id, PartNumber=number, Body=data, ChecksumAlgorithm="SHA256",
                          ChecksumSHA256=b64)
        stored = resp.get("ChecksumSHA256")
        if stored is not None and stored != b64:
            raise RemoteError(f"{self.where(key)}: part {number} was stored with checksum {stored}, sent {b64}; "
                              "the transfer was corrupted (rerun to resend it)")
        if options.progress is not None:
            options.progress(len(data))
        return number, str(resp["ETag"])

    def _ensure_retention(self, key: str, options: PutOptions) -> None:
        """Some S3-compatible servers ignore object-lock settings given when a multipart upload
        starts: check the completed object and set its retention explicitly where it is missing."""
        if not options.lock_mode:
            return
        info = self.head(key)
        if info is None:
            raise RemoteError(f"{self.where(key)}: the object is missing right after its upload completed; rerun")
        self.ensure_retention(info, options)

    def storage_mismatch(self, info: ObjectInfo, options: PutOptions, *, archive: bool) -> str | None:
        if not archive or not options.storage_class:
            return None
        have = (info.storage_class or "STANDARD").upper()  # S3 leaves StorageClass out for STANDARD
        want = options.storage_class.upper()
        return None if have == want else f"stored in storage class {have}, asked for {want}"

    def ensure_retention(self, info: ObjectInfo, options: PutOptions) -> bool:
        if not options.lock_mode:
            return False
        wanted = _wanted_retention(info, options.lock_mode, _parse_date(options.retain_until))
        if wanted is None:
            return False
        mode, until = wanted
        kw: dict[str, Any] = {"VersionId": info.version_id} if info.version_id else {}
        # PutObjectRetention is a call botocore always sends a checksum with; naming SHA-256 keeps
        # it from adding the CRC32 that some stores refuse (whatever --checksum-when says)
        self._call(info.key, "set its object lock retention", self.client.put_object_retention,
                   Key=self._full(info.key), Retention={"Mode": mode, "RetainUntilDate": until},
                   ChecksumAlgorithm="SHA256", **kw)
        after = self.head(info.key)
        if after is None or _wanted_retention(after, mode, until) is not None:
            found = f"{after.lock_mode} until {after.lock_until}" if after is not None and after.lock_mode else "none"
            raise RemoteError(f"{self.where(info.key)}: the store did not keep the object lock retention "
                              f"{mode} until {until:%Y-%m-%d} (it shows {found}); is object lock enabled on the bucket?")
        return True

    def put_bytes(self, key: str, data: bytes, options: PutOptions) -> PutResult:
        self._put_object(key, data, hashlib.sha256(data).hexdigest(), options, archive=False)
        return PutResult(key=key, size=len(data), sent=len(data))

    def put_stream(self, key: str, chunks: Iterator[bytes], options: PutOptions,
                   *, expected_size: int | None = None) -> tuple[PutResult, str]:
        # S3 allows MAX_PARTS parts: with the size known, parts are made large enough to fit
        part_size = max(options.part_size, MIN_PART, -(-(expected_size or 0) // MAX_PARTS))
        full = self._full(key)
        self.abort_own_uploads(key)
        whole = hashlib.sha256()
        buffer = bytearray()
        digests: list[str] = []
        md5s: list[bytes] = []
        done: list[dict[str, Any]] = []
        upload_id: str | None = None
        total = 0

        def send(data: bytes) -> None:
            nonlocal upload_id
            if upload_id is None:
                resp = self._call(key, "start a multipart upload", self.client.create_multipart_upload, Key=full,
                                  ChecksumAlgorithm="SHA256", Metadata=dict(options.metadata),
                                  storage_class=options.storage_class, **self._put_args(options, True))
                upload_id = str(resp["UploadId"])
            number = len(done) + 1
            if number > MAX_PARTS:
                raise RemoteError(f"{self.where(key)}: the stream is longer than expected "
                                  f"({expected_size} bytes) and would need more than {MAX_PARTS} parts of "
                                  f"{part_size} bytes; the upload was abandoned (rerun with a larger --part-size)")
            digest = hashlib.sha256(data).digest()
            md5s.append(hashlib.md5(data, usedforsecurity=False).digest())
            b64 = base64.b64encode(digest).decode("ascii")
            resp = self._call(key, f"upload part {number}", self.client.upload_part, Key=full, UploadId=upload_id,
                              PartNumber=number, Body=data, ChecksumAlgorithm="SHA256", ChecksumSHA256=b64)
            digests.append(digest.hex())
            done.append({"PartNumber": number, "ETag": resp["ETag"], "ChecksumSHA256": b64})
            if options.progress is not None:
                options.progress(len(data))

        try:
            for chunk in chunks:
                if options.limiter is not None:
                    options.limiter.consume(len(chunk))
                whole.update(chunk)
                total += len(chunk)
                buffer += chunk
                while len(buffer) >= part_size + MIN_PART:  # keep the last part at least MIN_PART
                    send(bytes(buffer[:part_size]))
                    del buffer[:part_size]
            if upload_id is not None:
                if buffer:
                    send(bytes(buffer))
                self._call(key, "complete the multipart upload", self.client.complete_multipart_upload, Key=full,
                           UploadId=upload_id, MultipartUpload={"Parts": done})
        except BaseException:
            if upload_id is not None:
                with contextlib.suppress(RemoteError):
                    self._call(key, "abort the upload", self.client.abort_multipart_upload, Key=full, UploadId=upload_id)
            raise
        sha = whole.hexdigest()
        if upload_id is None:
            md5, _ = self._put_object(key, bytes(buffer), sha, options, archive=True)
            return PutResult(key=key, size=total, sent=total, etag=md5), sha
        self._ensure_retention(key, options)
        etag = multipart_etag(md5s)
        return PutResult(key=key, size=total, sent=total, parts=PartPlan(part_size, digests, etag), etag=etag), sha

    def head(self, key: str) -> ObjectInfo | None:
        try:
            resp = self.client.head_object(Bucket=self.bucket, Key=self._full(key), ChecksumMode="ENABLED")
        except bex.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                self._check_bucket(key)
                return None
            raise remote_error(exc, self.where(key), self.settings, "read its metadata") from None
        except _BOTO_ERRORS as exc:
            raise remote_error(exc, self.where(key), self.settings, "read its metadata") from None
        restore = str(resp.get("Restore") or "")
        meta = resp.get("Metadata") or {}
        return ObjectInfo(
            key=key, size=int(resp["ContentLength"]),
            sha256_meta=(resp.get("Metadata") or {}).get(META_SHA256),
            checksum_sha256=resp.get("ChecksumSHA256"),
            storage_class=resp.get("StorageClass"),
            restored='ongoing-request="false"' in restore,
            restore_ongoing='ongoing-request="true"' in restore,
            version_id=resp.get("VersionId"), etag=resp.get("ETag"),
            lock_mode=resp.get("ObjectLockMode"), lock_until=resp.get("ObjectLockRetainUntilDate"),
            encryption=resp.get("ServerSideEncryption") or ("sse-c" if resp.get("SSECustomerAlgorithm") else None),
            md5_meta=meta.get(META_MD5),
        )

    def _check_bucket(self, key: str) -> None:
        """A HEAD answers a missing bucket with the same bodiless 404 as a missing object: the
        first time an object is not found, ask about the bucket, so that "the bucket does not
        exist" (exit 6) is never reported as an object missing from a replica."""
        if self._bucket_seen:
            return
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except bex.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket", "NotFound"):
                raise RemoteError(f"s3://{self.bucket}: the bucket does not exist (NoSuchBucket); check the bucket "
                                  f"name and the endpoint (while looking for {self.where(key)})") from None
            return  # no permission to HEAD the bucket says nothing about the object: it is missing
        except _BOTO_ERRORS as exc:
            raise remote_error(exc, self.where(key), self.settings, "read its metadata") from None
        self._bucket_seen = True

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        full = self._full(prefix)
        if prefix.endswith("/"):
            full += "/"
        strip = len(self.prefix) + 1 if self.prefix else 0
        token: str | None = None
        while True:
            kw: dict[str, Any] = {"Prefix": full}
            if token:
                kw["ContinuationToken"] = token
            resp = self._call(prefix, "list objects", self.client.list_objects_v2, **kw)
            for item in resp.get("Contents", []):
                yield ObjectInfo(key=str(item["Key"])[strip:], size=int(item["Size"]),
                                 storage_class=item.get("StorageClass"), etag=item.get("ETag"))
            if not resp.get("IsTruncated"):
                return
            token = resp.get("NextContinuationToken")

    @contextlib.contextmanager
    def get(self, key: str) -> Iterator[Iterator[bytes]]:
        yield self._chunks(key)

    def _chunks(self, key: str) -> Iterator[bytes]:
        """The object's bytes; a connection cut mid-body resumes with a ranged GET."""
        offset = 0
        attempts = 0
        etag: str | None = None
        while True:
            kw: dict[str, Any] = {"Key": self._full(key)}
            if offset:
                kw["Range"] = f"bytes={offset}-"
                if etag:
                    kw["IfMatch"] = etag  # never splice bytes of an object replaced meanwhile
            try:
                resp = self.client.get_object(Bucket=self.bucket, **kw)
            except bex.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "InvalidObjectState":
                    raise ObjectArchived(target=self.where(key), storage_class="an archive storage class") from None
                raise remote_error(exc, self.where(key), self.settings, "download it") from None
            except _BOTO_ERRORS as exc:
                raise remote_error(exc, self.where(key), self.settings, "download it") from None
            etag = etag or resp.get("ETag")
            try:
                for chunk in resp["Body"].iter_chunks(_CHUNK):
                    offset += len(chunk)
                    yield chunk
                return
            except _BOTO_ERRORS as exc:
                attempts += 1
                if attempts >= self.settings.max_attempts:
                    raise remote_error(exc, self.where(key), self.settings, "download it") from None

    def abort_own_uploads(self, prefix: str) -> int:
        full = self._full(prefix)
        if prefix.endswith("/"):
            full += "/"  # "bag/" must not match another bag named "bag-two"
        # listed in full first (every page), then aborted: aborting while paging could skip some
        uploads = [(str(u["Key"]), str(u["UploadId"])) for u in self._uploads(prefix, full)]
        for key, upload_id in uploads:
            # aborting an unfinished upload never touches a stored object or a locked version
            self._call(prefix, "abort a stale upload", self.client.abort_multipart_upload, Key=key, UploadId=upload_id)
        return len(uploads)

    def request_restore(self, key: str, days: int) -> bool:
        try:
            self.client.restore_object(Bucket=self.bucket, Key=self._full(key), RestoreRequest={"Days": days})
        except bex.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "RestoreAlreadyInProgress":
                return True
            raise remote_error(exc, self.where(key), self.settings, "request its restore") from None
        except _BOTO_ERRORS as exc:
            raise remote_error(exc, self.where(key), self.settings, "request its restore") from None
        return True


def _same_part(prior: dict[str, Any], data: bytes, b64: str, md5: bytes) -> bool:
    """Whether an already uploaded part holds these bytes: size, then the part's SHA-256 when the
    store lists it, else its ETag (the part's MD5 on servers without server-side encryption)."""
    if int(prior.get("Size", -1)) != len(data):
        return False
    if prior.get("ChecksumSHA256"):
        return str(prior["ChecksumSHA256"]) == b64
    etag = str(prior.get("ETag", "")).strip('"')
    return bool(etag) and etag == md5.hex()


def _aware(value: Any) -> dt.datetime:
    """A listing's date as an aware datetime (the epoch when the server gave none)."""
    if not isinstance(value, dt.datetime):
        return dt.datetime.fromtimestamp(0, dt.UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _wanted_retention(info: ObjectInfo, mode: str, until: dt.datetime) -> tuple[str, dt.datetime] | None:
    """The retention to set so that ``info`` is locked at least as strongly and as long as asked
    (None when it already is). An existing retention is only ever extended or strengthened:
    compliance stays compliance, and a later date is kept."""
    mode = mode.upper()
    have = (info.lock_mode or "").upper()
    if not have or info.lock_until is None:
        return mode, until
    new_mode = "COMPLIANCE" if "COMPLIANCE" in (mode, have) else mode
    new_until = max(until, info.lock_until)
    if new_mode == have and new_until == info.lock_until:
        return None
    return new_mode, new_until


def _parse_date(text: str | None) -> dt.datetime:
    if not text:
        raise UsageError("--lock-mode needs --retain-until DATE")
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--retain-until {text!r} is not a date such as 2035-12-31") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value
