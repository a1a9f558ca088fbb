"""Build time, pages/s and peak RSS for the largest shipped package (Puebla 2018) — issue 2.

    python bench/build.py [PACKAGE] [--runs 3] [--json]

Each run is a cold `prepgen build` into a fresh folder in a child process; peak RSS is the largest
process of that build (forked render workers included). A warm rebuild (same package, same folder: every
section page kept) is measured too.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, measured, pages, prepgen  # noqa: E402

PUEBLA = ROOT / "tests" / "data" / "puebla2018" / "20180702_2000_PREP_PUE.zip"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("package", nargs="?", type=Path, default=PUEBLA)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="prepgen-bench-") as tmp:
        for i in range(args.runs):
            out = Path(tmp) / f"cold{i}"
            r = measured(prepgen("build", str(args.package), "-o", str(out)))
            rows.append({"run": f"cold {i + 1}", "pages": pages(out), **r})
        r = measured(prepgen("build", str(args.package), "-o", str(out)))
        rows.append({"run": "rebuild, nothing changed", "pages": pages(out), **r})
    for row in rows:
        row.pop("stderr", None)
        row["pages_per_s"] = row["pages"] / row["seconds"]
    if args.json:
        print(json.dumps({"package": args.package.name, "runs": rows}, indent=2))
        return
    print(f"{args.package.name}")
    print("| run | seconds | CPU s | pages | pages/s | peak RSS |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['run']} | {row['seconds']:.2f} | {row['cpu']:.2f} | {row['pages']:,} | "
              f"{row['pages_per_s']:,.0f} | {row['peak_rss_mib']:.0f} MiB |")


if __name__ == "__main__":
    main()
