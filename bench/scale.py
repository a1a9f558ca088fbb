"""Simulacro at scale: cold build, corte-to-live, and the naive pipeline on the same corte — issue 5.

    python bench/scale.py --escala coahuila            # ~1-2 minutes
    python bench/scale.py --escala nacional            # 30-40 minutes (first full publishes are the baseline)
    python bench/scale.py --escala coahuila --json --quiet

Steps (each timed; progress per stage on a terminal, quiet with --quiet or CI=1):
1. `prepgen simulate` (reused from --sim-dir when the packages are already there), then pick the pair of
   consecutive cortes k → k+1 whose share of new actas is closest to 1 % (a typical mid-night corte).
2. cold build of k+1 into a fresh folder: seconds, pages/s, peak RSS.
3. corte-to-live, the production path: `prepgen watch INBOX --to s3://…` runs for the whole bench (as on
   election night); corte k is dropped into the inbox and published first (untimed baseline: cold build +
   first full publish); then, after a sync and once the watcher and SeaweedFS are idle again (as they are
   long before the next corte on election night), timed, the package file of k+1 appears in the inbox (atomic rename) until
   `json/main.json` on SeaweedFS names k+1: seconds (measured outside the watcher), the build and publish
   seconds, objects and bytes from the watcher's bitácora, the watcher's peak RSS, and the CPU seconds the
   corte took from prepgen (watcher + render workers), from SeaweedFS and from anything else on the box.
4. the naive way: (Coahuila: corte k synced with `rclone sync --checksum` first, untimed); then, timed, a
   full rebuild of k+1 into a fresh folder + `rclone sync --checksum` of the whole folder. Ratio
   naive/prepgen.

``--more-cortes N`` goes on delivering the next N cortes (k+2, …) to the same watcher after step 3 and
reports each one's corte-to-live as well: one corte is one sample, and on a shared two-core box the same
code has given national cortes seconds apart. The ratio stays that of corte k+1 (the naive pipeline runs on
that one).

``--reuse RUN.json`` (a previous ``--json`` output) takes steps 2 and 4 from that run for the same escala and
corte pair instead of measuring them again, and says so in the table: a quicker rerun (~15 minutes
nationally instead of ~40) when only the corte-to-live path changed. Rerun everything before quoting a
cold build or a naive time.

``--pausa S`` waits at least S seconds (idle) before each timed corte instead of dropping it as soon as the
watcher and SeaweedFS are idle: election night's cadence is ~300 s. On a VM that gives its guest's freed
memory back to the host, a corte after minutes of idling costs more (docs/PERFORMANCE.md, run AG); the first
timed corte always comes after the baseline's minutes-long publish.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    Progress,
    Storage,
    Watcher,
    human,
    measured,
    need_rclone,
    pages,
    prepgen,
    settle_disk,
)

from prepgen.simulate import simulate  # noqa: E402

CORTES = {"coahuila": 36, "nacional": 36}


def pick_pair(paths: list[Path], say: Progress) -> tuple[int, float]:
    """Index k whose k → k+1 brings the share of new actas closest to 1 %, judged from the arrival curve."""
    from prepgen.simulate import _curva

    curve = _curva(len(paths))
    deltas = [(abs((b - a) - 0.01), k) for k, (a, b) in enumerate(zip(curve, curve[1:], strict=False))]
    # Past mid-night (k > n/2): the realistic case where most of the site already exists.
    _, k = min(d for d in deltas if d[1] >= len(paths) // 2)
    share = new_share(paths, paths[k + 1])
    say(f"pair {paths[k].name} → {paths[k + 1].name}: {100 * share:.2f} % new actas")
    return k, share


def new_share(paths: list[Path], package: Path) -> float:
    """Share of the actas that are new in ``package`` against the corte before it (the arrival curve)."""
    from prepgen.simulate import _curva

    curve = _curva(len(paths))
    i = paths.index(package)
    return curve[i] - curve[i - 1]


def run(
    escala: str, sim_dir: Path, cortes: int, semilla: int, say: Progress, work: Path, naive_baseline: bool,
    reuse: dict[str, Any] | None = None, more_cortes: int = 0, gzip: bool = False, pausa: float = 0.0,
) -> dict[str, Any]:
    paths = sorted(sim_dir.glob("*_PREP*.zip"))
    if len(paths) != cortes:
        say(f"simulate {escala} × {cortes} → {sim_dir}")
        shutil.rmtree(sim_dir, ignore_errors=True)
        paths = simulate(sim_dir, escala, cortes, semilla)
    k, share = pick_pair(paths, say)
    prev, new = paths[k], paths[k + 1]
    out: dict[str, Any] = {"escala": escala, "corte_previo": prev.name, "corte": new.name,
                           "actas_nuevas_pct": round(100 * share, 2), "gzip": gzip}

    if reuse is not None:
        if (reuse["corte_previo"], reuse["corte"]) != (prev.name, new.name):
            raise SystemExit(f"--reuse: that run measured {reuse['corte_previo']} → {reuse['corte']}, not "
                             f"{prev.name} → {new.name}")
        out["cold_build"] = {**reuse["cold_build"], "reused": True}
        say(f"cold build: reused {json.dumps(out['cold_build'])}")
    else:
        waited = settle_disk(work)
        say(f"cold build (after {waited:.0f} s waiting for an idle disk)")
        cold = work / "cold"
        r = measured(prepgen("build", str(new), "-o", str(cold)))
        n = pages(cold)
        out["cold_build"] = {"seconds": r["seconds"], "cpu": r["cpu"], "pages": n,
                             "pages_per_s": n / r["seconds"], "peak_rss_mib": r["peak_rss_mib"],
                             "espera_disco": round(waited, 1)}
        say(f"cold build: {json.dumps(out['cold_build'])}")
        # Removed with the rest of this escala's work at the end, not here: deleting 216,000 files takes this
        # box minutes and keeps its disk busy well after (online discard; a cold build started right after
        # such a delete spent 151 s in the kernel against 40 s on a quiet disk), which the baseline and the
        # timed cortes below would pay for. On election night nothing deletes a site's worth of files.

    with Storage(work / "seaweedfs") as s3:
        bucket = s3.bucket()
        with Watcher(work / "watch", s3, bucket, prev, gzip=gzip) as w:
            say(f"baseline: the watcher builds and publishes {prev.name} (cold build + first full publish)")
            out["first_publish"] = w.deliver(prev)
            say(f"first publish: {json.dumps(out['first_publish'])}")
            say(f"corte-to-live {new.name}: package in the inbox → pointer names it")
            live = w.deliver(new, pause=pausa)
            live["peak_rss_mib"] = w.peak_rss_mib()
            say(f"corte-to-live: {json.dumps(live)}")
            out["mas_cortes"] = []
            for later in paths[k + 2 : k + 2 + more_cortes]:
                say(f"corte-to-live {later.name} (one more sample)")
                extra = {"corte": later.name, "actas_nuevas_pct": round(100 * new_share(paths, later), 2),
                         **w.deliver(later, pause=pausa)}
                say(f"corte-to-live: {json.dumps(extra)}")
                out["mas_cortes"].append(extra)
        out["corte_to_live"] = live

        if reuse is not None:
            out["naive"] = {**reuse["naive"], "reused": True}
            out["ratio"] = out["naive"]["seconds"] / out["corte_to_live"]["seconds"]
            return out
        naive_bucket = s3.bucket()
        if naive_baseline:
            say(f"naive baseline: full build + rclone sync of {prev.name}")
            nb = work / "naive-prev"
            measured(prepgen("build", str(prev), "-o", str(nb)))
            s3.rclone_sync(nb, naive_bucket)
            shutil.rmtree(nb)
        waited = settle_disk(work)
        say(f"naive corte {new.name}: full rebuild + rclone sync --checksum (after {waited:.0f} s waiting "
            "for an idle disk)")
        t = time.perf_counter()
        fresh = work / "naive"
        nbuild = measured(prepgen("build", str(new), "-o", str(fresh)))
        sync = s3.rclone_sync(fresh, naive_bucket)
        out["naive"] = {"seconds": time.perf_counter() - t, "build_seconds": nbuild["seconds"],
                        "sync_seconds": sync["seconds"], "objects": sync["objects"], "bytes": sync["bytes"],
                        "baseline": naive_baseline, "espera_disco": round(waited, 1)}
        say(f"naive: {json.dumps(out['naive'])}")
    out["ratio"] = out["naive"]["seconds"] / out["corte_to_live"]["seconds"]
    return out


def cpu(corte: dict[str, Any]) -> str:
    """The corte's CPU seconds by whom (Watcher.deliver), for the table; empty for runs from before it."""
    c = corte.get("cpu_s")
    if not c:
        return ""
    return f"; CPU-s prepgen {c['prepgen']:.1f} · SeaweedFS {c['almacen']:.1f} · other {c['otros']:.1f}"


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| escala | measure | seconds | pages/s · objects | peak RSS · bytes |", "|---|---|---:|---:|---:|"]
    for r in results:
        c, live, naive = r["cold_build"], r["corte_to_live"], r["naive"]
        again = {k: " (reused from an earlier run)" if r[k].get("reused") else "" for k in ("cold_build", "naive")}
        gz = " --gzip" if r.get("gzip") else ""
        lines += [
            f"| {r['escala']} | cold build ({c['pages']:,} pages){again['cold_build']} | {c['seconds']:.1f} | {c['pages_per_s']:,.0f} pages/s "
            f"| {c['peak_rss_mib']:.0f} MiB |",
            f"| {r['escala']} | corte-to-live, {r['actas_nuevas_pct']} % new actas: watcher{gz}, inbox → pointer "
            f"(build {live['build_seconds']:.1f} s + publish {live['publish_seconds']:.1f} s{cpu(live)}) | {live['seconds']:.1f} "
            f"| {live['objects']:,} objects | {human(live['bytes'])} · RSS {live['peak_rss_mib']:.0f} MiB |",
            f"| {r['escala']} | naive: full rebuild {naive['build_seconds']:.1f} s + rclone sync "
            f"{naive['sync_seconds']:.1f} s{again['naive']} | {naive['seconds']:.1f} | {naive['objects']:,} objects | "
            f"{human(naive['bytes'])} |",
        ]
        lines += [
            f"| {r['escala']} | corte-to-live, next corte {m['corte']} ({m['actas_nuevas_pct']} % new actas; build "
            f"{m['build_seconds']:.1f} s + publish {m['publish_seconds']:.1f} s{cpu(m)}) | {m['seconds']:.1f} | "
            f"{m['objects']:,} objects | {human(m['bytes'])} |"
            for m in r.get("mas_cortes", [])
        ]
        lines.append(f"| {r['escala']} | naive / prepgen (corte {r['corte']}) | {r['ratio']:.1f}× | | |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--escala", choices=["coahuila", "nacional", "both"], default="coahuila")
    ap.add_argument("--cortes", type=int, default=None, help="simulacro length (default 36: ~1 %% corte late)")
    ap.add_argument("--semilla", type=int, default=7)
    ap.add_argument("--sim-dir", type=Path, default=None, help="keep/reuse simulated packages here")
    ap.add_argument("--naive-baseline", action=argparse.BooleanOptionalAction, default=None,
                    help="rclone-sync corte k before timing the naive corte k+1 (default: Coahuila only; "
                         "nationally the naive build re-stamps every page, so the sync re-uploads ~all objects "
                         "either way and an empty bucket only makes the naive run faster)")
    ap.add_argument("--reuse", type=Path, default=None, metavar="RUN.json",
                    help="take the cold build and the naive pipeline from this earlier --json run (same corte "
                         "pair) and measure only corte-to-live")
    ap.add_argument("--more-cortes", type=int, default=0, metavar="N",
                    help="after the timed corte, deliver the next N cortes too and time each (more samples)")
    ap.add_argument("--gzip", action="store_true",
                    help="the watcher stores pages and JSON gzip-encoded ([publicar] gzip = true)")
    ap.add_argument("--pausa", type=float, default=0.0, metavar="S",
                    help="idle at least S seconds before each timed corte, as between cortes on election night "
                         "(~300); default: drop it as soon as the watcher and the storage are idle")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--progress", action="store_true",
                    help="progress lines even when stderr is not a terminal (a long run under nohup)")
    args = ap.parse_args()
    if args.reuse is None:
        need_rclone(", or pass --reuse RUN.json to take the naive figures of an earlier run")
    say = Progress(args.quiet, force=args.progress)
    escalas = ["coahuila", "nacional"] if args.escala == "both" else [args.escala]
    results = []
    with tempfile.TemporaryDirectory(prefix="prepgen-scale-") as tmp:
        for escala in escalas:
            cortes = args.cortes or CORTES[escala]
            sim_dir = (args.sim_dir / escala) if args.sim_dir else Path(tmp) / "sim" / escala
            work = Path(tmp) / escala
            work.mkdir(parents=True)
            baseline = args.naive_baseline if args.naive_baseline is not None else escala == "coahuila"
            reuse = None
            if args.reuse is not None:
                reuse = next((r for r in json.loads(args.reuse.read_text()) if r["escala"] == escala), None)
                if reuse is None:
                    raise SystemExit(f"--reuse {args.reuse}: no {escala} run in it")
            results.append(run(escala, sim_dir, cortes, args.semilla, say, work, baseline, reuse, args.more_cortes,
                               args.gzip, args.pausa))
            if escala != escalas[-1]:
                shutil.rmtree(work, ignore_errors=True)
        # Out before the last removal, which takes this box 10-30 minutes after a national run (online discard).
        print(json.dumps(results, indent=2) if args.json else table(results), flush=True)
        say("removing the work folders")


if __name__ == "__main__":
    main()
