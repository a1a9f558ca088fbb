"""Federal (multi-entity) candidaturas: district numbers repeat in every state, names are per state.

Built on a nacional-mini simulacro whose candidaturas names are rewritten to say where they belong, so a name
shown in the wrong place is caught whatever the simulator's random names happen to be.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from variants import only_csv, rewrite_package

from prepgen.cli import main
from prepgen.model import SectionMemo, build_elections
from prepgen.reader import RowMemo, read_package
from prepgen.simulate import simulate

PSEUDO = {"CNR", "NULOS"}


def _rename(fn_name: Callable[[dict[str, str]], str]) -> Callable[[str], str]:
    """Rewrite a candidaturas CSV: every named (non-pseudo) row gets ``fn_name(row)``."""

    def edit(text: str) -> str:
        rows = list(csv.reader(io.StringIO(text)))
        head = rows[0]
        code = head.index("PARTIDO_CI")
        name = head.index("CANDIDATURA_PROPIETARIA")
        for r in rows[1:]:
            if r and r[name] and r[code] not in PSEUDO:
                r[name] = fn_name(dict(zip(head, r, strict=True)))
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerows(rows)
        return buf.getvalue()

    return edit


def _dip_name(r: dict[str, str]) -> str:
    return f"DIPUTADO E{int(r['ID_ESTADO'])} D{int(r['ID_DISTRITO_FEDERAL'])} {r['PARTIDO_CI']}"


def _sen_name(r: dict[str, str]) -> str:
    return f"SENADOR E{int(r['ID_ESTADO'])} {r['PARTIDO_CI']}"


def _federal(src: Path, dst: Path) -> Path:
    def edit(name: str, data: bytes) -> bytes:
        for pattern, fn in (("DIP_FED_CANDIDATURAS", _dip_name), ("SEN_CANDIDATURAS", _sen_name)):
            data = only_csv(pattern, _rename(fn))(name, data)
        return data

    return rewrite_package(src, dst, edit)


@pytest.fixture(scope="module")
def federal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    (pkg,) = simulate(tmp_path_factory.mktemp("sim"), "nacional-mini", 1, 5)
    return _federal(pkg, tmp_path_factory.mktemp("fed") / pkg.name)


@pytest.fixture(scope="module")
def site(federal: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = CliRunner().invoke(main, ["-q", "build", str(federal), "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


def _election_json(root: Path, eid: str) -> dict:
    m = orjson.loads((root / "json" / "main.json").read_bytes())
    e = next(e for e in m["elecciones"] if e["id"] == eid)
    return orjson.loads((root / e["json"].lstrip("/")).read_bytes())


def test_each_federal_district_has_its_own_states_candidates(federal: Path) -> None:
    dip = next(e for e in build_elections(read_package(federal)) if e.codigo == "DIP_FED")
    ones = [u for u in dip.unidades.values() if not u.pseudo and u.id.endswith("-01")]
    assert len(ones) == 32  # every state has a district 1: the case the district number alone cannot tell apart
    named = 0
    for u in dip.unidades.values():
        if u.pseudo:
            continue
        ent, dist = (int(x) for x in u.id.split("-"))
        for c in u.contendientes:
            if c.candidato:
                assert c.candidato == f"DIPUTADO E{ent} D{dist} {c.codigo}", (u.id, c.clave)
                named += 1
    assert named > 2 * len(ones)
    assert not any("no candidaturas for" in w for w in dip.advertencias)


def test_federal_unit_json_and_candidate_page_show_that_states_names(site: Path) -> None:
    dip = _election_json(site, "DIP_FED")
    for uid in ("01-01", "05-01"):
        amb = next(a for a in dip["ambitos"] if a["id"] == uid)
        unit = orjson.loads((site / amb["json"].lstrip("/")).read_bytes())["unidades"][uid]
        names = {c["codigo"]: c["nombre"] for c in unit["candidaturas"]}
        ent = int(uid[:2])
        assert names["SUM-PAN-PRI-PRD"] == f"DIPUTADO E{ent} D1 SUM-PAN-PRI-PRD"
        page = (site / "dip-fed" / "candidatura" / f"{uid}-sum-pan-pri-prd" / "index.html").read_text()
        assert f"DIPUTADO E{ent} D1 SUM-PAN-PRI-PRD" in page
        other = 5 if ent == 1 else 1
        assert f"DIPUTADO E{other} D1" not in page


def test_per_entity_candidaturas_show_no_name_nationally_and_warn(federal: Path, site: Path) -> None:
    sen = next(e for e in build_elections(read_package(federal)) if e.codigo == "SEN")
    assert not sen.por_unidad
    # Same nationwide contenders by coalition/party as the file's structure gives, labelled by their code.
    assert {c.clave: c.nombre for c in sen.contendientes} == {
        "sum-pan-pri-prd": "PAN-PRI-PRD", "sum-pt-pvem-morena": "PT-PVEM-MORENA", "mc": "MC",
    }
    assert all(c.candidato == "" for c in sen.contendientes)
    assert [w for w in sen.advertencias if "per entity" in w and "not shown at national level" in w]
    # Nowhere in the published SEN pages or JSON does any state's senator appear.
    files = [*(site / "sen").rglob("*.html"), *(site / "json" / "sen").rglob("*.json")]
    assert len(files) > 10
    for f in files:
        assert "SENADOR E" not in f.read_text(), f
    assert {c["nombre"] for c in _election_json(site, "SEN")["candidaturas"]} >= {"PAN-PRI-PRD", "PT-PVEM-MORENA"}


def test_reused_contenders_follow_a_candidatura_moving_to_another_entity(federal: Path, tmp_path: Path) -> None:
    """The next corte's candidaturas differ only in ID_ESTADO (two states with the same district 1 ballot swap
    their rows): same lines, districts, codes and names, so only the entity tells the contenders cannot be reused."""
    pair: list[str] = []

    def swap(text: str) -> str:
        rows = list(csv.reader(io.StringIO(text)))
        ballots: dict[str, list[str]] = {}
        for r in rows[1:]:
            if r and r[1] == "1":
                ballots.setdefault(r[0], []).append(r[2])
        by_ballot: dict[tuple[str, ...], list[str]] = {}
        for ent, codes in ballots.items():
            by_ballot.setdefault(tuple(codes), []).append(ent)
        pair.extend(next(ents[:2] for codes, ents in by_ballot.items() if len(ents) > 1 and "SUM-PAN-PRI-PRD" in codes))
        a, b = pair
        for r in rows[1:]:
            if r and r[1] == "1" and r[0] in pair:
                r[0] = b if r[0] == a else a
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerows(rows)
        return buf.getvalue()

    swapped = rewrite_package(federal, tmp_path / federal.name, only_csv("DIP_FED_CANDIDATURAS", swap))
    rows, memo = RowMemo(), SectionMemo()
    build_elections(read_package(federal, memo=rows), memo)
    warm = next(e for e in build_elections(read_package(swapped, memo=rows), memo) if e.codigo == "DIP_FED")
    assert "DIP_FED" in memo.derived
    a, b = (int(x) for x in pair)
    for ent, was in ((a, b), (b, a)):
        names = {c.codigo: c.candidato for c in warm.unidades[f"{ent:02d}-01"].contendientes}
        assert names["SUM-PAN-PRI-PRD"] == f"DIPUTADO E{was} D1 SUM-PAN-PRI-PRD", ent
