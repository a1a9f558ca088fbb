"""prepgen publish against `rclone sync --checksum` on a loopback SeaweedFS — issue 3.

    python bench/publish.py [--json] [--quiet]

Builds Campeche 13:20 and 20:00, then on fresh buckets: a full first publish of 13:20 and the incremental
corte 13:20 → 20:00, with prepgen publish and with rclone (Debian's, configured through RCLONE_CONFIG_*
environment variables; --transfers 16 like prepgen's 16 threads). Objects, bytes and seconds per step.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, Progress, Storage, human, measured, need_rclone, prepgen  # noqa: E402

CAMPECHE = ROOT / "tests" / "data" / "campeche2021"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    need_rclone()
    say = Progress(args.quiet)
    first, second = CAMPECHE / "20210607_1320_PREP_CAMP.zip", CAMPECHE / "20210607_2000_PREP_CAMP.zip"
    rows = []
    with tempfile.TemporaryDirectory(prefix="prepgen-bench-") as tmp:
        work = Path(tmp) / "build"
        say("build 13:20")
        measured(prepgen("build", str(first), "-o", str(work)))
        snap = Path(tmp) / "build-1320"
        shutil.copytree(work, snap)
        with Storage(Path(tmp) / "seaweedfs") as s3:
            bucket = s3.bucket()
            say("prepgen publish 13:20 (first, full)")
            full = s3.publish(work, bucket)
            say("build 20:00 on top")
            measured(prepgen("build", str(second), "-o", str(work)))
            say("prepgen publish 20:00 (incremental)")
            inc = s3.publish(work, bucket)
            rbucket = s3.bucket()
            say("rclone sync 13:20 (first, full)")
            rfull = s3.rclone_sync(snap, rbucket)
            say("rclone sync 20:00")
            rinc = s3.rclone_sync(work, rbucket)
    rows = [
        {"step": "first publish 13:20", "prepgen": full, "rclone": rfull},
        {"step": "corte 13:20 → 20:00", "prepgen": inc, "rclone": rinc},
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| step | prepgen objects | prepgen bytes | prepgen s | rclone objects | rclone bytes | rclone s | rclone/prepgen time |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        p, c = r["prepgen"], r["rclone"]
        print(f"| {r['step']} | {p['objects']:,} | {human(p['bytes'])} | {p['seconds']:.1f} | {c['objects']:,} | "
              f"{human(c['bytes'])} | {c['seconds']:.1f} | {c['seconds'] / p['seconds']:.1f}× |")


if __name__ == "__main__":
    main()
