"""``preserve replicate`` (every object verified) against ``aws s3 cp --recursive`` on the same
local S3-compatible server, with latency added so that the figures resemble a remote store.

The server is moto_server (from the project's venv) behind ``tests/replication/s3proxy.py``, run
twice: with ``--keep-checksums`` (a server that stores x-amz-checksum-sha256, as AWS and MinIO
do) and without (a server that keeps none, as Ceph RGW 16.2). Every request through the proxy
waits ``--latency-ms`` first and is logged, so the requests each command made are counted too.

Two bags: ``--small`` files of ``--small-kib`` each, and one file of ``--large-mib`` (0 skips it).
Each preserve run sends to a new bucket with ``--workers W`` for every W in ``--workers``; aws cli
runs with its defaults (10 concurrent requests, 8 MiB parts) and ``--workers``' largest value as
its max_concurrent_requests too. ``--repeat`` rounds run every command in turn (interleaved, so
that a slow moment of a shared machine falls on both sides), and the median of each side's best
concurrency is compared; the best single rounds are printed beside it. Then preserve's idempotent
rerun (everything verified again, nothing sent) is timed.

awscli pins botocore exactly, so it lives in a venv of its own::

    python3 -m venv /tmp/awscli && /tmp/awscli/bin/pip install awscli
    .venv/bin/python benchmarks/bench_replicate.py --aws /tmp/awscli/bin/aws --large-mib 1024

Exit 0 when the targets are met on the medians (small files: preserve no slower than aws cli;
large file: within 1.2x), 1 otherwise. This is run by hand, never by the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, VENV_BIN, fmt_ratio, fmt_s, print_table, rmtree, run

PROXY = REPO / "tests" / "replication" / "s3proxy.py"
KIB = 1024
MIB = 1024 * KIB


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _process(argv: list[str], log: Path, ready: str | None = None, url: str | None = None) -> Iterator[None]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE if ready else out, stderr=out)
    try:
        if ready is not None:
            assert proc.stdout is not None
            if ready.encode() not in proc.stdout.readline():
                raise RuntimeError(f"{argv[1]} did not start: {log.read_text(errors='replace')}")
        deadline = time.monotonic() + 30
        while url is not None:
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{argv[0]} did not start: {log.read_text(errors='replace')}") from None
                time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # moto can take longer to stop after a heavy run
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _make_bag(root: Path, name: str, files: dict[str, int]) -> Path:
    from preserve.bag.writer import create_bag, payload_from_directory

    src = root / f"{name}-src"
    for rel, size in files.items():
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            left = size
            while left:
                n = min(left, 8 * MIB)
                f.write(os.urandom(n))
                left -= n
    dest = root / name
    create_bag(dest, payload_from_directory(src), algorithms=("sha256",))
    rmtree(src)
    return dest


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.env = {**os.environ, "AWS_ACCESS_KEY_ID": "AKIABENCHMARK", "AWS_SECRET_ACCESS_KEY": "bench-secret",
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(work / "aws-config"),
                    "AWS_SHARED_CREDENTIALS_FILE": str(work / "no-credentials")}
        self.env.pop("AWS_PROFILE", None)
        self.bucket_no = 0

    def bucket(self, endpoint: str) -> str:
        import boto3
        from botocore.config import Config

        self.bucket_no += 1
        name = f"bench-{self.bucket_no}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="AKIABENCHMARK",
                     aws_secret_access_key="bench-secret",
                     config=Config(s3={"addressing_style": "path"})).create_bucket(Bucket=name)
        return name

    def aws_config(self, concurrency: int) -> None:
        (self.work / "aws-config").write_text(
            "[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n"
            f"    max_concurrent_requests = {concurrency}\n")

    def requests(self, log: Path, since: int) -> int:
        return sum(1 for line in log.read_text(errors="replace").splitlines()[since:] if line[:1].isupper())

    def lines(self, log: Path) -> int:
        return len(log.read_text(errors="replace").splitlines())

    def preserve(self, bag: Path, endpoint: str, bucket: str, workers: int, ledger: Path) -> list[str]:
        return [str(VENV_BIN / "preserve"), "replicate", str(bag), f"s3://{bucket}/p", "--endpoint-url", endpoint,
                "--region", "us-east-1", "--path-style", "-q", "--workers", str(workers), "--ledger", str(ledger)]

    def aws(self, bag: Path, endpoint: str, bucket: str) -> list[str]:
        return [self.args.aws, "s3", "cp", "--recursive", "--only-show-errors", str(bag), f"s3://{bucket}/p/{bag.name}",
                "--endpoint-url", endpoint]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aws", required=True, help="the aws program of awscli (in a venv of its own)")
    parser.add_argument("--small", type=int, default=2000, help="files in the small-file bag (default 2000)")
    parser.add_argument("--small-kib", type=int, default=64, help="size of each small file (default 64 KiB)")
    parser.add_argument("--large-mib", type=int, default=1024, help="size of the one large file (0: skip; default 1024)")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="delay added to every request (default 20)")
    parser.add_argument("--workers", default="4,8,16", help="preserve --workers values to time (default 4,8,16)")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds of every command; the median is judged (default 3)")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args(argv)
    workers = [int(w) for w in args.workers.split(",")]
    results: list[dict[str, object]] = []
    work = Path(tempfile.mkdtemp(prefix="preserve-bench-replicate-"))
    try:
        bench = Bench(args, work)
        bags = {"small": _make_bag(work, "small", {f"d{i // 200:03d}/f{i:05d}.wav": args.small_kib * KIB
                                                   for i in range(args.small)})}
        if args.large_mib:
            bags["large"] = _make_bag(work, "large", {"master.wav": args.large_mib * MIB})
        moto_port = _free_port()
        moto = f"http://127.0.0.1:{moto_port}"
        with _process([str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)], work / "moto.log",
                      url=moto):
            for mode in ("checksums", "no-checksums"):
                port = _free_port()
                log = work / f"proxy-{mode}.log"
                extra = ["--keep-checksums"] if mode == "checksums" else []
                with _process([sys.executable, str(PROXY), "--upstream", moto, "--port", str(port), "--latency-ms",
                               str(args.latency_ms), *extra], log, ready="ready"):
                    endpoint = f"http://127.0.0.1:{port}"
                    for corpus, bag in bags.items():
                        # rounds interleave the commands, so that a slow moment of the machine falls on
                        # every side alike instead of on whichever command happened to run then
                        commands = [("aws", 10), ("aws", max(workers))] + [("preserve", w) for w in workers]
                        runs: dict[tuple[str, int], list[tuple[float, float, int]]] = {c: [] for c in commands}
                        for round_no in range(args.repeat):
                            for tool, concurrency in commands:
                                bucket = bench.bucket(endpoint)
                                since = bench.lines(log)
                                if tool == "aws":
                                    bench.aws_config(concurrency)
                                    cmd = bench.aws(bag, endpoint, bucket)
                                else:
                                    cmd = bench.preserve(bag, endpoint, bucket, concurrency, work / f"l{bucket}.sqlite")
                                done = run(cmd, env=bench.env)
                                runs[(tool, concurrency)].append((done.wall, done.cpu, bench.requests(log, since)))
                                if tool == "preserve" and concurrency == workers[0] and round_no == 0:
                                    since = bench.lines(log)
                                    rerun = run(cmd, env=bench.env).wall
                                    results.append({"mode": mode, "corpus": corpus, "tool": "preserve rerun",
                                                    "concurrency": concurrency, "wall": rerun, "median": rerun,
                                                    "requests": bench.requests(log, since)})
                        for (tool, concurrency), got in runs.items():
                            walls = [w for w, _, _ in got]
                            row = {"mode": mode, "corpus": corpus, "tool": tool, "concurrency": concurrency,
                                   "wall": min(walls), "median": statistics.median(walls), "walls": walls,
                                   "cpu": statistics.median(c for _, c, _ in got), "requests": got[-1][2]}
                            results.append(row)
                            print(f"{mode:13} {corpus:6} {tool:15} c={concurrency:<3} best {fmt_s(min(walls)):>8}  "
                                  f"median {fmt_s(statistics.median(walls)):>8}  client CPU "
                                  f"{fmt_s(float(str(row['cpu']))):>8}  {got[-1][2]} requests", flush=True)
    finally:
        rmtree(work)
    ok = _report(results, workers)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0 if ok else 1


def _report(results: list[dict[str, object]], workers: list[int]) -> bool:
    """Targets are judged on the median of the interleaved rounds (best of the concurrencies on
    each side); the best single round of each side is printed beside it."""
    ok = True
    rows = []
    best_w: dict[int, float] = {w: 0.0 for w in workers}

    def num(r: dict[str, object], key: str) -> float:
        return float(str(r[key]))

    for mode in ("checksums", "no-checksums"):
        for corpus in ("small", "large"):
            here = [r for r in results if r["mode"] == mode and r["corpus"] == corpus]
            if not here:
                continue
            aws = [r for r in here if r["tool"] == "aws"]
            mine = [r for r in here if r["tool"] == "preserve"]
            aws_med, mine_med = min(num(r, "median") for r in aws), min(num(r, "median") for r in mine)
            aws_best, mine_best = min(num(r, "wall") for r in aws), min(num(r, "wall") for r in mine)
            for r in mine:
                best_w[int(str(r["concurrency"]))] += num(r, "median") / mine_med
            limit = 1.0 if corpus == "small" else 1.2
            met = mine_med <= aws_med * limit
            ok &= met
            rows.append([mode, corpus, fmt_s(aws_med), fmt_s(mine_med), fmt_ratio(mine_med / aws_med),
                         f"{fmt_s(aws_best)} / {fmt_s(mine_best)} = {fmt_ratio(mine_best / aws_best)}",
                         f"<= {limit}x", "met" if met else "NOT MET"])
    print_table(["server", "bag", "aws s3 cp (median)", "preserve (median)", "ratio", "best rounds", "target", ""],
                rows)
    # the default concurrency: the smallest that is within 5% of the best on average over the cases
    cases = max(1, len({(r["mode"], r["corpus"]) for r in results}))
    chosen = min((w for w in workers if best_w[w] / cases <= 1.05), default=min(best_w, key=lambda w: best_w[w]))
    print(f"default concurrency from these figures: --workers {chosen} "
          f"(mean time relative to the fastest: {', '.join(f'{w}: {best_w[w] / cases:.2f}' for w in workers)})")
    return ok


if __name__ == "__main__":
    sys.exit(main())
