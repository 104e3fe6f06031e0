"""An HTTP proxy in front of moto_server that behaves like an S3-compatible server keeping no
additional checksums (as Ceph RADOS Gateway 16.2 does), with optional latency and faults.

moto stores whatever checksum a client sends, so on its own it cannot show how preserve behaves
against servers that ignore ``x-amz-checksum-*``. This proxy, run as its own process, makes moto
look like such a server:

- request headers ``x-amz-checksum-*``, ``x-amz-sdk-checksum-algorithm`` and
  ``x-amz-checksum-algorithm`` are dropped; an ``aws-chunked`` body (boto3's trailing checksums) is
  decoded into a plain body and its trailer dropped; checksum elements of a
  CompleteMultipartUpload body are removed. The server therefore accepts a wrong checksum and
  stores none;
- object-lock headers given at CreateMultipartUpload are dropped (that server ignores them);
- ``x-amz-checksum-*`` response headers and ``<Checksum...>`` response elements are removed;
- user metadata (``x-amz-meta-*``) and ETags pass through (MD5 for single-part objects,
  MD5-of-part-MD5s ``-N`` for multipart, as moto computes them).

``--keep-checksums`` turns the checksum stripping off (a plain proxy, for latency and faults over
a server that keeps checksums). ``--latency-ms`` adds a delay to every request.
``--fail-part N`` answers 500 InternalError to every UploadPart with partNumber N;
``--cut-part N`` closes the connection in the middle of UploadPart N.
``--fault-file PATH`` re-reads those two settings from a JSON file on every request, so a test can
switch faults on and off while the proxy runs; the file may also hold ``respond``, a list of
``{"method": "PUT", "query": "retention", "status": 403, "code": "AccessDenied", "message": "..."}``:
a request with that method whose query string names that sub-resource (``""`` for any request of
that method; no ``method`` for any method), and that carries the request header ``header`` when
one is named, gets that S3 error instead of reaching the server. ``max_uploads: N`` pages
ListMultipartUploads N uploads at a time, with key and upload-id markers, as AWS does past 1,000
(moto always answers with one page).

Every request is logged on standard error as ``METHOD /path?query`` (one line each, before it is
answered), so a test can count the requests a command made (GETs of payload objects, say).

Run: ``python s3proxy.py --upstream http://127.0.0.1:PORT --port N [options]``; it prints
``ready`` once listening.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import socket
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_DROP_REQUEST = re.compile(r"^(x-amz-checksum-.*|x-amz-sdk-checksum-algorithm|x-amz-checksum-algorithm|x-amz-trailer|"
                           r"x-amz-decoded-content-length)$", re.I)
_LOCK = re.compile(r"^x-amz-object-lock-.*$", re.I)
_CHECKSUM_XML = re.compile(rb"<Checksum[A-Za-z0-9]*>[^<]*</Checksum[A-Za-z0-9]*>")
_S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
        "content-length"}


def decode_aws_chunked(raw: bytes) -> bytes:
    """The payload of an ``aws-chunked`` body: ``<hex>[;ext]\\r\\n<data>\\r\\n`` ... ``0\\r\\n<trailer>``."""
    out = bytearray()
    pos = 0
    while True:
        end = raw.index(b"\r\n", pos)
        size = int(raw[pos:end].split(b";", 1)[0], 16)
        pos = end + 2
        if size == 0:
            return bytes(out)
        out += raw[pos:pos + size]
        pos += size + 2


class Settings:
    def __init__(self, args: argparse.Namespace) -> None:
        self.upstream = urllib.parse.urlsplit(args.upstream)
        self.strip = not args.keep_checksums
        self.latency = args.latency_ms / 1000.0
        self.fail_part = args.fail_part
        self.cut_part = args.cut_part
        self.fault_file = Path(args.fault_file) if args.fault_file else None

    def faults(self) -> tuple[int | None, int | None]:
        if self.fault_file is not None and self.fault_file.exists():
            data = json.loads(self.fault_file.read_text() or "{}")
            return data.get("fail_part"), data.get("cut_part")
        return self.fail_part, self.cut_part

    def setting(self, name: str) -> Any:
        if self.fault_file is None or not self.fault_file.exists():
            return None
        return json.loads(self.fault_file.read_text() or "{}").get(name)

    def canned(self, method: str, query: dict[str, list[str]], headers: Any) -> dict[str, Any] | None:
        """The error a ``respond`` entry of the fault file asks for this request, if any."""
        names = {k.lower() for k in headers}
        for entry in self.setting("respond") or []:
            if entry.get("method", method) == method and (not entry.get("query") or entry["query"] in query) \
                    and (not entry.get("header") or entry["header"].lower() in names):
                return dict(entry)
        return None


def page_uploads(xml: bytes, query: dict[str, list[str]], size: int) -> bytes:
    """One page of a ListMultipartUploads answer: the uploads after the request's markers, in
    (key, upload id) order, ``size`` at most, with IsTruncated and the next markers."""
    ET.register_namespace("", _S3_NS)
    root = ET.fromstring(xml)
    ns = {"s3": _S3_NS}
    uploads = root.findall("s3:Upload", ns)
    for u in uploads:
        root.remove(u)

    def ident(u: ET.Element) -> tuple[str, str]:
        return (u.findtext("s3:Key", "", ns), u.findtext("s3:UploadId", "", ns))

    after = (query.get("key-marker", [""])[0], query.get("upload-id-marker", [""])[0])
    rest = sorted((u for u in uploads if ident(u) > after), key=ident)
    page, more = rest[:size], len(rest) > size
    for tag in ("IsTruncated", "NextKeyMarker", "NextUploadIdMarker"):
        for old in root.findall(f"s3:{tag}", ns):
            root.remove(old)
    ET.SubElement(root, f"{{{_S3_NS}}}IsTruncated").text = "true" if more else "false"
    if more:
        ET.SubElement(root, f"{{{_S3_NS}}}NextKeyMarker").text = ident(page[-1])[0]
        ET.SubElement(root, f"{{{_S3_NS}}}NextUploadIdMarker").text = ident(page[-1])[1]
    root.extend(page)
    return ET.tostring(root, xml_declaration=True, encoding="utf-8")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    settings: Settings

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                line = self.rfile.readline()
                size = int(line.split(b";", 1)[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _proxy(self) -> None:
        s = self.settings
        if s.latency:
            time.sleep(s.latency)
        body = self._body()
        sys.stderr.write(f"{self.command} {self.path}\n")
        sys.stderr.flush()
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query, keep_blank_values=True)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        canned = s.canned(self.command, query, self.headers)
        if canned is not None:
            xml = (f"<?xml version=\"1.0\"?><Error><Code>{canned.get('code', 'InternalError')}</Code>"
                   + (f"<Message>{canned['message']}</Message>" if canned.get("message") else "")
                   + "</Error>").encode()
            self._answer(int(canned.get("status", 500)), {"Content-Type": "application/xml"}, xml)
            return
        is_upload_part = self.command == "PUT" and "partNumber" in query and "uploadId" in query
        if is_upload_part:
            fail, cut = s.faults()
            number = int(query["partNumber"][0])
            if cut is not None and number == int(cut):
                # half an answer, then the connection goes away: the client sees a broken connection
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if fail is not None and number == int(fail):
                self._answer(500, {"Content-Type": "application/xml"},
                             b"<?xml version=\"1.0\"?><Error><Code>InternalError</Code>"
                             b"<Message>part refused by the test proxy</Message></Error>")
                return
        if s.strip:
            if "aws-chunked" in headers.get("Content-Encoding", headers.get("content-encoding", "")).lower():
                body = decode_aws_chunked(body)
                headers = {k: v for k, v in headers.items() if k.lower() != "content-encoding"}
                headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
                for k in list(headers):
                    if k.lower() == "x-amz-content-sha256" and k != "x-amz-content-sha256":
                        del headers[k]
            headers = {k: v for k, v in headers.items() if not _DROP_REQUEST.match(k)}
            if self.command == "POST" and "uploads" in query:
                headers = {k: v for k, v in headers.items() if not _LOCK.match(k)}
            if self.command == "POST" and "uploadId" in query:
                body = _CHECKSUM_XML.sub(b"", body)
        headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(s.upstream.hostname, s.upstream.port, timeout=120)
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            out_headers = {k: v for k, v in resp.getheaders() if k.lower() not in _HOP}
            if s.strip:
                out_headers = {k: v for k, v in out_headers.items() if not k.lower().startswith("x-amz-checksum")}
            ctype = resp.getheader("Content-Type", "")
            # an object's own bytes (a GET of a key with no sub-resource) pass untouched, even XML ones
            key = urllib.parse.urlsplit(self.path).path.strip("/").partition("/")[2]
            subresource = any(q not in ("versionId", "partNumber") and not q.startswith("response-") for q in query)
            object_body = self.command == "GET" and key and not subresource
            page = s.setting("max_uploads")
            if self.command == "GET" and "uploads" in query and page and resp.status == 200:
                data = page_uploads(resp.read(), query, int(page))
                data = _CHECKSUM_XML.sub(b"", data) if s.strip else data
                self._answer(resp.status, out_headers, data)
                return
            if s.strip and "xml" in ctype and not object_body:
                data = _CHECKSUM_XML.sub(b"", resp.read())
                self._answer(resp.status, out_headers, data)
                return
            if self.command == "HEAD":
                length = resp.getheader("Content-Length")
                self.send_response(resp.status)
                for k, v in out_headers.items():
                    self.send_header(k, v)
                if length is not None:
                    self.send_header("Content-Length", length)
                self.end_headers()
                return
            length_text = resp.getheader("Content-Length")
            self.send_response(resp.status)
            for k, v in out_headers.items():
                self.send_header(k, v)
            if length_text is not None:
                self.send_header("Content-Length", length_text)
                self.end_headers()
                while chunk := resp.read(1 << 20):
                    self.wfile.write(chunk)
            else:
                data = resp.read()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
        finally:
            conn.close()

    def _answer(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _proxy


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--keep-checksums", action="store_true")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--fail-part", type=int)
    parser.add_argument("--cut-part", type=int)
    parser.add_argument("--fault-file")
    args = parser.parse_args(argv)
    Handler.settings = Settings(args)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print("ready", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
