"""PUT rate on a loopback SeaweedFS: boto3 put_object vs prepgen's PUT path (prepgen/s3put.py) vs rclone.

    python bench/putrate.py [--pages 10000] [--bundles 100] [--threads 8,16,32] [--modes boto3,lean,rclone]
                            [--repeat 2] [--json]
    python bench/putrate.py --from BUILD_DIR --files LIST --modes lean,gzip --repeat 2

``--from``/``--files``: the objects are a build's own files (LIST: one path relative to BUILD_DIR per line,
e.g. the files a corte changed) instead of synthetic ones; mode ``gzip`` is ``lean`` with the storage's
``compress`` on, as ``[publicar] gzip = true`` publishes them.

Synthetic objects of realistic sizes (section pages 6–10 KB of html, bundles 50–700 KB of JSON), written
to a temp dir once and read into memory (rclone reads the dir). Each run PUTs every object into a fresh
bucket and reports wall seconds, objects/s, this process's CPU seconds per 1,000 PUTs and SeaweedFS's CPU
seconds per 1,000 PUTs (it shares the cores). rclone's CPU is its own process's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Storage, human, need_rclone  # noqa: E402

from prepgen.headers import CACHE_CONTROL, IMMUTABLE, PAGE  # noqa: E402

WORDS = [b"Casilla", b"Seccion", b"votos", b"PAN", b"PRI", b"MORENA", b"<td>", b"</td>", b"<tr>", b"1234"]


def synth(root: Path, pages: int, bundles: int, seed: int = 7) -> list[tuple[str, bytes, str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(pages):
        size = rng.randint(6_000, 10_000)
        body = b" ".join(rng.choice(WORDS) for _ in range(size // 5))[:size]
        out.append((f"d{i % 300:03d}/s{i:06d}/index.html", body, "text/html; charset=utf-8", PAGE))
    for i in range(bundles):
        size = rng.randint(50_000, 700_000)
        body = b",".join(str(rng.randint(0, 99999)).encode() for _ in range(size // 5))[:size]
        out.append((f"json/b/{i:04d}-{hashlib.sha256(body).hexdigest()[:12]}.json", body, "application/json",
                    IMMUTABLE))
    for path, body, _, _ in out:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(body)
    return out


def from_build(root: Path, listing: Path) -> list[tuple[str, bytes, str, str]]:
    from prepgen.headers import classify, content_type

    paths = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    return [(p, (root / p).read_bytes(), content_type(p), classify(p)) for p in paths]


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run_boto3(s3: Storage, bucket: str, objects: list, threads: int) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.session.Session().client(
        "s3", endpoint_url=s3.endpoint,
        config=Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30,
                      max_pool_connections=max(threads, 10)),
    )

    def put(obj: tuple[str, bytes, str, str]) -> None:
        path, body, ctype, cls = obj
        client.put_object(Bucket=bucket, Key="site/" + path, Body=body, ContentType=ctype,
                          CacheControl=CACHE_CONTROL[cls])

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, objects))


def run_lean(s3: Storage, bucket: str, objects: list, threads: int, compress: bool = False) -> None:
    from prepgen.publish import S3Storage

    storage = S3Storage(f"s3://{bucket}/site", endpoint_url=s3.endpoint, threads=threads, compress=compress)
    shas = {path: hashlib.sha256(body).hexdigest() for path, body, _, _ in objects}

    def put(obj: tuple[str, bytes, str, str]) -> None:
        path, body, ctype, cls = obj
        storage.put(path, body, content_type=ctype, cache_control=CACHE_CONTROL[cls], sha256=shas[path])

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, objects))


def run_rclone(s3: Storage, bucket: str, root: Path, threads: int) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["rclone", "copy", "--transfers", str(threads), "--checkers", str(threads),
                    "--no-check-dest", str(root), f"bench:{bucket}/site"], env=s3.rclone_env(), check=True,
                   capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=10_000)
    ap.add_argument("--bundles", type=int, default=100)
    ap.add_argument("--threads", default="16")
    ap.add_argument("--modes", default="boto3,lean")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--weed-flags", default="", help="extra `weed server` flags, space-separated")
    ap.add_argument("--from", dest="source", type=Path, default=None, metavar="BUILD_DIR")
    ap.add_argument("--files", type=Path, default=None, metavar="LIST")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if (args.source is None) != (args.files is None):
        ap.error("--from and --files go together")
    if args.source is not None and "rclone" in args.modes.split(","):
        ap.error("rclone copies a folder: it runs on the synthetic objects only")
    if "rclone" in args.modes.split(","):
        need_rclone(", or leave rclone out of --modes")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="prepgen-putrate-") as tmp:
        if args.source is not None:
            objects = from_build(args.source, args.files)
        else:
            objects = synth(Path(tmp) / "site", args.pages, args.bundles)
        total = sum(len(b) for _, b, _, _ in objects)
        print(f"{len(objects):,} objects, {human(total)}", file=sys.stderr)
        s3 = Storage(Path(tmp) / "seaweedfs")
        if args.weed_flags:
            base = s3.server.command
            s3.server.command = lambda: [*base(), *args.weed_flags.split()]  # type: ignore[method-assign]
        with s3:
            assert s3.server.proc is not None
            weed = s3.server.proc.pid
            for _ in range(args.repeat):
                for mode in args.modes.split(","):
                    for threads in (int(t) for t in args.threads.split(",")):
                        bucket = s3.bucket()
                        w0, c0, t0 = proc_cpu(weed), self_cpu(), time.perf_counter()
                        if mode == "boto3":
                            run_boto3(s3, bucket, objects, threads)
                        elif mode in ("lean", "gzip"):
                            run_lean(s3, bucket, objects, threads, compress=mode == "gzip")
                        else:
                            c0 -= run_rclone(s3, bucket, Path(tmp) / "site", threads)
                        wall = time.perf_counter() - t0
                        cpu, wcpu = self_cpu() - c0, proc_cpu(weed) - w0
                        k = len(objects) / 1000
                        row = {"mode": mode, "threads": threads, "objects": len(objects), "seconds": wall,
                               "objects_per_s": len(objects) / wall, "client_cpu_per_1000": cpu / k,
                               "weed_cpu_per_1000": wcpu / k, "load": os.getloadavg()[0]}
                        rows.append(row)
                        print(json.dumps(row), file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| mode | threads | objects | wall s | objects/s | client CPU s / 1,000 | SeaweedFS CPU s / 1,000 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['mode']} | {r['threads']} | {r['objects']:,} | {r['seconds']:.1f} | {r['objects_per_s']:.0f} | "
              f"{r['client_cpu_per_1000']:.2f} | {r['weed_cpu_per_1000']:.2f} |")


if __name__ == "__main__":
    main()
