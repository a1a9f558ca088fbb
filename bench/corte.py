"""A national-shaped incremental corte publish on a loopback SeaweedFS, without a national build.

    python bench/corte.py [--entries 216000] [--pages 9300] [--bundles 900] [--bundle-kb 60] [--repeat 2]
                          [--in-memory]

The target is seeded by hand with a live pointer and a live corte record of ``--entries`` files (the shape
of a real build manifest: section pages, district bundles, static files), so only the files a corte
changes have to exist on disk. Then two cortes are published in a row with prepgen's publish (the second
one diffs against a record written by the code under test, which is the one that counts): ``--pages``
changed section pages (6–10 KB) and ``--bundles`` new immutable bundles. Reported per corte: wall seconds,
this process's CPU seconds, objects, and the time to the first PUT (reading the build and live manifests,
diffing) and from the last page to the pointer (the corte record).

``--in-memory`` publishes like the watcher: the build manifest is handed to publish in memory, and the
second corte diffs against the record the first one left in memory (``PublishResult.live``) instead of
downloading it (``live`` column: where the live record came from).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Storage, human  # noqa: E402

from prepgen.headers import CONTENT_TYPES  # noqa: E402

HTML = CONTENT_TYPES[".html"]
JSON = CONTENT_TYPES[".json"]


def fake_sha(rng: random.Random) -> str:
    return f"{rng.getrandbits(256):064x}"


def base_files(entries: int, rng: random.Random) -> dict[str, dict[str, Any]]:
    files: dict[str, dict[str, Any]] = {}
    n_bundles = entries // 100
    for i in range(n_bundles):
        files[f"json/secciones/{i:04d}-{fake_sha(rng)[:16]}.json"] = {
            "sha256": fake_sha(rng), "size": 60_000, "type": JSON, "class": "immutable"}
    for i in range(entries - n_bundles - 1):
        files[f"e{i % 32:02d}/seccion/{i:06d}/index.html"] = {
            "sha256": fake_sha(rng), "size": 8_000, "type": HTML, "class": "page"}
    return files


def corte(build: Path, corte_id: str, files: dict[str, dict[str, Any]], pages: int, bundles: int,
          bundle_kb: int, rng: random.Random) -> dict[str, Any]:
    """Write the changed files of a new corte into ``build`` and its manifest; returns the manifest."""
    files = {p: dict(e) for p, e in files.items()}
    page_paths = [p for p, e in files.items() if e["class"] == "page"]

    def write(path: str, body: bytes, ctype: str, cls: str) -> None:
        (build / path).parent.mkdir(parents=True, exist_ok=True)
        (build / path).write_bytes(body)
        files[path] = {"sha256": hashlib.sha256(body).hexdigest(), "size": len(body), "type": ctype,
                       "class": cls}

    for path in rng.sample(page_paths, pages):
        body = (f"<!doctype html><title>{corte_id}</title>".encode() +
                rng.randbytes(rng.randint(3_000, 5_000)).hex().encode())
        write(path, body, HTML, "page")
    for i in range(bundles):
        body = json.dumps([rng.randint(0, 10**6) for _ in range(bundle_kb * 1024 // 8)]).encode()
        write(f"json/secciones/{corte_id}-{i:04d}.json", body, JSON, "immutable")
    write("json/main.json", json.dumps({"corte_id": corte_id}).encode(), JSON, "pointer")
    meta = build / ".prepgen"
    meta.mkdir(parents=True, exist_ok=True)
    manifest = {"version": 1, "corte": corte_id, "corte_id": corte_id, "corte_texto": corte_id, "files": files}
    (meta / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def proc_cpu(pid: int) -> float:
    """CPU seconds a process (the storage server) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entries", type=int, default=216_000)
    ap.add_argument("--pages", type=int, default=9_300)
    ap.add_argument("--bundles", type=int, default=900)
    ap.add_argument("--bundle-kb", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--threads", type=int, default=16, help="upload threads (publish's --threads)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--in-memory", action="store_true",
                    help="hand publish the build manifest and the previous corte's live record in memory")
    args = ap.parse_args()
    from prepgen.publish import publish

    rows = []
    for rep in range(args.repeat):
        rng = random.Random(7 + rep)
        with tempfile.TemporaryDirectory(prefix="prepgen-corte-") as tmp, Storage(Path(tmp) / "sw") as s3:
            bucket = s3.bucket()
            client = s3.server.client()
            live = base_files(args.entries, rng)
            for e in live.values():
                if e["class"] == "page":
                    e["origen"] = "20210606_2000"
            client.put_object(Bucket=bucket, Key="site/json/main.json",
                              Body=json.dumps({"corte_id": "20210606_2000"}).encode())
            client.put_object(Bucket=bucket, Key="site/_prepgen/cortes/20210606_2000/manifest.json",
                              Body=json.dumps({"corte_id": "20210606_2000", "files": live}, indent=1,
                                              sort_keys=True).encode())
            files = {p: {k: v for k, v in e.items() if k != "origen"} for p, e in live.items()}
            held = None  # the live record the previous publish left (--in-memory)
            for corte_id in ("20210606_2005", "20210606_2010"):
                build = Path(tmp) / corte_id
                manifest = corte(build, corte_id, files, args.pages, args.bundles, args.bundle_kb, rng)
                files = manifest["files"]
                handed = {"manifest": manifest, "live": held} if args.in_memory else {}
                first_put: list[float] = []
                assert s3.server.proc is not None
                t0, c0, w0 = time.perf_counter(), cpu(), proc_cpu(s3.server.proc.pid)

                def progress(path: str, done: int, total: int, first: list[float] = first_put,
                             t0: float = t0) -> None:
                    if not first:
                        first.append(time.perf_counter() - t0)

                r = publish(build, f"s3://{bucket}/site", endpoint_url=s3.endpoint, progress=progress,
                            threads=args.threads, **handed)
                held = r.live
                row = {"corte": corte_id, "seconds": time.perf_counter() - t0, "cpu": cpu() - c0,
                       "server_cpu": proc_cpu(s3.server.proc.pid) - w0,
                       "objects": r.uploaded + r.record_objects, "bytes": r.uploaded_bytes,
                       "to_first_put": first_put[0] if first_put else None, "live": r.live_source}
                rows.append(row)
                print(json.dumps({**row, "skipped": r.skipped, "previous": r.previous_corte_id}), file=sys.stderr)
            head = client.head_object(Bucket=bucket, Key="site/_prepgen/cortes/20210606_2010/manifest.json")
            rows[-1]["record_manifest_bytes"] = head["ContentLength"]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| corte | live record | objects | bytes | wall s | CPU s | server CPU s | s to first PUT | record manifest |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['corte']} | {r['live']} | {r['objects']:,} | {human(r['bytes'])} | {r['seconds']:.1f} | "
              f"{r['cpu']:.1f} | {r['server_cpu']:.1f} | {r['to_first_put']:.1f} | {human(r.get('record_manifest_bytes'))} |")


if __name__ == "__main__":
    main()
