from __future__ import annotations

from decimal import Decimal

import pytest
from paths import CAMPECHE, PUEBLA
from recount import recount
from variants import rewrite_package

from prepgen.errors import BuildError
from prepgen.model import build_elections, column_parties, pct
from prepgen.reader import read_package

CAMP_GOB_GROUPS = {
    "sum-pan-pri-prd": ["PAN", "PRI", "PRD", "C_PAN_PRI_PRD", "C_PAN_PRI", "C_PAN_PRD", "C_PRI_PRD"],
    "sum-pt-mor": ["PT", "MOR", "C_PT_MOR"],
    "mc": ["MC"],
    "pvem": ["PVEM"],
    "pes": ["PES"],
    "rsp": ["RSP"],
    "fm": ["FM"],
}


def test_pct_truncates_never_rounds() -> None:
    assert pct(5635206, 10**7) == Decimal("56.3520")  # 56.35206 → 56.3520
    assert pct(2, 3) == Decimal("66.6666")
    assert pct(1, 0) is None and pct(None, 5) is None
    assert str(pct(1, 1)) == "100.0000"


@pytest.mark.parametrize("package", CAMPECHE, ids=lambda p: p.name)
def test_campeche_gob_equals_independent_recount(package) -> None:
    gob = build_elections(read_package(package))[0]
    expected = recount(package, "GOB", CAMP_GOB_GROUPS)
    got = {r.contendiente.clave: r.votos for r in gob.resultados_estatales()}
    for clave in CAMP_GOB_GROUPS:
        assert got[clave] == expected[clave], clave
    assert gob.cifras.contabilizadas == expected["_contabilizadas"]
    assert gob.cifras.total_calculado == expected["_total_calculado"]
    # The summary line agrees with the rows in GOB: no discrepancias.
    assert gob.discrepancias == []
    # Percentages divide by the recounted total and add up to ≤ 100 (truncation only loses).
    res = gob.resultados_estatales()
    if gob.cifras.total_votos:
        total_pct = sum(r.porcentaje for r in res) + pct(gob.cifras.nulos, gob.cifras.total_votos) + pct(
            gob.cifras.no_registrados, gob.cifras.total_votos
        )
        assert Decimal("99.99") < total_pct <= Decimal("100")


def test_campeche_dip_loc_discrepancies_reported() -> None:
    dip = build_elections(read_package(CAMPECHE[-1]))[1]
    by = {d["campo"]: d for d in dip.discrepancias}
    assert by["ACTAS_CONTABILIZADAS"]["publicado"] == 1060 and by["ACTAS_CONTABILIZADAS"]["recuento"] == 1056
    assert by["TOTAL_VOTOS_C_CS"]["publicado"] == 372947
    mid = build_elections(read_package(CAMPECHE[1]))[1]
    assert {d["campo"]: (d["publicado"], d["recuento"]) for d in mid.discrepancias}["ACTAS_CONTABILIZADAS"] == (940, 937)


def test_campeche_dip_per_district_contenders() -> None:
    dip = build_elections(read_package(CAMPECHE[-1]))[1]
    assert dip.por_unidad
    d01 = dip.unidades["001"]
    names = {c.codigo: c.nombre for c in d01.contendientes}
    assert names["SUM-PAN-PRI-PRD"] == "JHOSUE JESUS RODRIGUEZ GOLIB"
    assert names["MOR"] == "JAZMIN DEL ROCIO CERVERA BARBOSA"
    # every vote column with votes belongs to exactly one contender of the district
    owned = [i for c in d01.contendientes for i in c.columnas]
    assert len(owned) == len(set(owned))
    for i, v in enumerate(d01.cifras.columnas):
        if v:
            assert i in owned


def test_puebla_aliases_coalitions_and_pseudo_district() -> None:
    gob, dip = build_elections(read_package(PUEBLA))
    codes = {c.codigo: c for c in gob.contendientes}
    # MOR in candidaturas ↔ MORENA column; unnamed coalition is the contender in force
    assert codes["SUM-PT-MOR-PES"].partidos == ("PT", "MORENA", "PES")
    assert "MOR" not in codes and "PAN" not in codes
    cols = {gob.data.vote_columns[i] for i in codes["SUM-PT-MOR-PES"].columnas}
    assert cols == {"PT", "MORENA", "PES", "C_PT_MORENA_PES", "C_PT_MORENA", "C_PT_PES", "C_MORENA_PES"}
    groups = {
        "sum-pt-mor-pes": sorted(cols),
        "pri": ["PRI"],
        "pv": ["PV"],
    }
    expected = recount(PUEBLA, "GOB", groups)
    got = {r.contendiente.clave: r.votos for r in gob.resultados_estatales()}
    assert {k: got[k] for k in groups} == {k: expected[k] for k in groups}
    # votes from abroad: district 027 is its own unit, not dropped
    assert gob.unidades["027"].cifras.contabilizadas == 1
    assert sum(gob.unidades["027"].cifras.columnas) > 0
    # all rows' votes are assigned: contenders + nr + nulos == recounted total
    assert sum(r.votos for r in gob.resultados_estatales()) + gob.cifras.nulos + gob.cifras.no_registrados == gob.cifras.total_votos
    # Districts sharing one name stay distinct units
    names = [u.nombre for u in dip.unidades.values()]
    assert len(names) != len(set(names)) and len(dip.unidades) == 26


def test_column_parties_greedy_matching() -> None:
    parties = ["PAN", "PRD", "CAND_IND_1", "MORENA"]
    assert column_parties("C_PAN_PRD", parties) == ("PAN", "PRD")
    assert column_parties("C_PAN_CAND_IND_1", parties) == ("PAN", "CAND_IND_1")
    assert column_parties("C_PT_MOR", ["PT", "MORENA"]) == ("PT", "MORENA")
    assert column_parties("XYZ", parties) is None


def test_unassigned_combination_with_votes_fails(tmp_path) -> None:
    """A coalition column whose parties no contender covers must stop the build, not vanish."""

    def edit(name: str, data: bytes) -> bytes:
        if name.endswith("CAMP_GOB_CANDIDATURA_2021.csv"):
            # Split the PT-MOR coalition into separately named candidates: C_PT_MOR has no owner.
            text = data.decode().replace("4,SUM-PT-MOR,LAYDA ELENA SANSORES SAN ROMAN", "4,PT,UNO\n4,MOR,DOS")
            return text.encode()
        return data

    pkg = read_package(rewrite_package(CAMPECHE[-1], tmp_path / "p.zip", edit))
    with pytest.raises(BuildError, match="C_PT_MOR"):
        build_elections(pkg)
