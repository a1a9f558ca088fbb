"""An independent recount of a PREP package with the csv module only (no prepgen code).

Used to check that prepgen's figures equal the rows. It knows the real files' layout by their names only.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path


def election_rows(package: Path, code: str) -> tuple[list[str], list[dict[str, str]], dict[str, str]]:
    with zipfile.ZipFile(package) as outer:
        inner_name = next(n for n in outer.namelist() if f"_PREP_{code}_" in n)
        with zipfile.ZipFile(io.BytesIO(outer.read(inner_name))) as inner:
            csv_name = next(n for n in inner.namelist() if n.endswith(".csv") and "CANDIDATURA" not in n)
            text = inner.read(csv_name).decode("utf-8")
    lines = text.splitlines()
    sh = next(i for i, ln in enumerate(lines) if ln.startswith("ACTAS_ESPERADAS"))
    summary = dict(zip(lines[sh].split(","), lines[sh + 1].split(","), strict=True))
    ah = next(i for i, ln in enumerate(lines) if ln.lstrip("'").startswith("CLAVE_CASILLA"))
    rows = list(csv.DictReader(lines[ah:]))
    return lines[ah].split(","), rows, summary


def num(v: str) -> int:
    v = v.strip().lstrip("'")
    return int(v) if v.isdigit() else 0


def recount(package: Path, code: str, groups: dict[str, list[str]]) -> dict[str, int]:
    """Votes per group (list of columns) over counted actas, plus total of TOTAL_VOTOS_CALCULADO."""
    _, rows, _ = election_rows(package, code)
    out = dict.fromkeys(groups, 0)
    out["_total_calculado"] = 0
    out["_contabilizadas"] = 0
    for r in rows:
        if r["CONTABILIZADA"].strip() != "1":
            continue
        out["_contabilizadas"] += 1
        out["_total_calculado"] += num(r["TOTAL_VOTOS_CALCULADO"])
        for g, cols in groups.items():
            out[g] += sum(num(r[c]) for c in cols)
    return out
