"""A folder per page or flat files: what the file system costs a cold build's pages (issue 5).

    python bench/folders.py DIR                      # 50,000 pages of 6 KB, each layout twice
    python bench/folders.py DIR --pages 213000 --modes folder,flat

A cold national build writes ~213,000 section pages as `<eleccion>/seccion/<ID>/index.html`: a folder and a
file each. This writes the same number of same-size files both ways into fresh folders under DIR (on the
disk to measure, after a sync and a settled disk each time) and prints wall and CPU seconds (system
included) per layout. DIR is left in place: deleting GBs on a disk mounted with online discard keeps it
busy for minutes; remove it when nothing else is measured.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import settle_disk  # noqa: E402


def cpu() -> tuple[float, float]:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_stime


def write(base: str, pages: int, mode: str, data: bytes) -> None:
    for i in range(pages):
        if mode == "folder":
            path = f"{base}/{i:06d}"
            os.mkdir(path)
            path += "/index.html"
        else:
            path = f"{base}/{i:06d}.html"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", type=Path)
    ap.add_argument("--pages", type=int, default=50_000)
    ap.add_argument("--modes", default="folder,flat,folder,flat")
    args = ap.parse_args()
    data = os.urandom(3000) * 2  # a section page's ~6 KB
    for mode in args.modes.split(","):
        if mode not in ("folder", "flat"):
            raise SystemExit(f"--modes: {mode!r} is neither folder nor flat")
        folder = args.dir / f"{mode}-{time.time_ns()}" / "seccion"
        folder.mkdir(parents=True)
        waited = settle_disk(args.dir)
        c0, s0 = cpu()
        t = time.perf_counter()
        write(str(folder), args.pages, mode, data)
        wall = time.perf_counter() - t
        c1, s1 = cpu()
        t = time.perf_counter()
        os.sync()
        print(f"{mode}: {args.pages:,} pages in {wall:.1f} s, {c1 - c0:.1f} CPU-s ({s1 - s0:.1f} system), "
              f"then sync {time.perf_counter() - t:.1f} s (after {waited:.0f} s waiting for an idle disk)", flush=True)


if __name__ == "__main__":
    main()
