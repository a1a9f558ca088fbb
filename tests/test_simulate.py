"""prepgen.simulate: determinism, package structure, incrementality and summary consistency.

The recount here is written independently of the module (csv module, Decimal division with
ROUND_DOWN instead of the module's integer floor) so that a shared mistake cannot hide.
TODO once prepgen.reader lands: also read every simulated package with read_package().
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal, localcontext
from pathlib import Path

import pytest

from prepgen import simulate as sim
from prepgen.errors import ConfigError

VOTO_NO_NUMERO = {"ILEGIBLE", "SIN DATO"}


# --------------------------------------------------------------------------- helpers


@dataclass
class Csv:
    lineas: list[str]  # raw lines, without "\n"
    resumen: dict[str, str]
    cabecera: list[str]
    filas: list[dict[str, str]]
    crudas: list[str]  # raw acta lines, same order as filas


def leer_paquete(ruta: Path) -> dict[str, dict[str, bytes]]:
    """outer zip -> {inner zip name: {member: bytes}}"""
    out: dict[str, dict[str, bytes]] = {}
    with zipfile.ZipFile(ruta) as z:
        for nombre in z.namelist():
            with zipfile.ZipFile(io.BytesIO(z.read(nombre))) as zi:
                out[nombre] = {m: zi.read(m) for m in zi.namelist()}
    return out


def leer_csv(datos: bytes) -> Csv:
    texto = datos.decode("utf-8")
    assert "\r" not in texto
    lineas = texto.split("\n")
    assert lineas[-1] == ""
    lineas = lineas[:-1]
    # Find the blocks by content, as a reader must.
    i_res = next(i for i, linea in enumerate(lineas) if linea.startswith("ACTAS_ESPERADAS,"))
    i_act = next(i for i, linea in enumerate(lineas) if linea.startswith("CLAVE_CASILLA,"))
    res_h, res_v = list(csv.reader(lineas[i_res : i_res + 2]))
    assert len(res_h) == len(res_v) == 13
    cab = next(csv.reader([lineas[i_act]]))
    crudas = lineas[i_act + 1 :]
    filas = [dict(zip(cab, r, strict=True)) for r in csv.reader(crudas)]
    return Csv(lineas, dict(zip(res_h, res_v, strict=True)), cab, filas, crudas)


def columnas_voto(cab: list[str]) -> list[str]:
    return cab[cab.index("TOTAL_VOTOS_SACADOS") + 1 : cab.index("TOTAL_VOTOS_ASENTADO")]


def pct(num: int, den: int) -> str:
    if den == 0:
        return ""
    with localcontext() as ctx:
        ctx.prec = 60
        return str((Decimal(num) * 100 / Decimal(den)).quantize(Decimal("0.0001"), rounding=ROUND_DOWN))


def recontar(c: Csv) -> dict[str, str]:
    fuera = [f for f in c.filas if f["CLAVE_CASILLA"] == "-"]
    cat = [f for f in c.filas if f["CLAVE_CASILLA"] != "-"]
    cap = [f for f in cat if f["CONTABILIZADA"] in ("0", "1")]
    cont = [f for f in cat if f["CONTABILIZADA"] == "1"]
    incons = [f for f in cap if f["CONTABILIZADA"] == "0"
              and f["OBSERVACIONES"] in ("TODOS ILEGIBLES O SIN DATO", "EXCEDE LISTA NOMINAL")]
    ln = sum(int(f["LISTA_NOMINAL"]) for f in cont)
    tc = sum(int(f["TOTAL_VOTOS_CALCULADO"]) for f in cont)
    ts = sum(int(f["TOTAL_VOTOS_CALCULADO"]) for f in cont if f["TIPO_CASILLA"] != "S")
    esp = len(cat)
    return {
        "ACTAS_ESPERADAS": str(esp), "ACTAS_REGISTRADAS": str(len(cap) + len(fuera)),
        "ACTAS_FUERA_CATALOGO": str(len(fuera)), "ACTAS_CAPTURADAS": str(len(cap)),
        "PORCENTAJE_ACTAS_CAPTURADAS": pct(len(cap), esp), "ACTAS_CONTABILIZADAS": str(len(cont)),
        "PORCENTAJE_ACTAS_CONTABILIZADAS": pct(len(cont), esp),
        "PORCENTAJE_ACTAS_INCONSISTENCIAS": pct(len(incons), esp),
        "ACTAS_NO_CONTABILIZADAS": str(len(cap) - len(cont)), "LISTA_NOMINAL_ACTAS_CONTABILIZADAS": str(ln),
        "TOTAL_VOTOS_C_CS": str(tc), "TOTAL_VOTOS_S_CS": str(ts), "PORCENTAJE_PARTICIPACION_CIUDADANA": pct(ts, ln),
    }


def csvs(ruta: Path) -> dict[str, Csv]:
    """election code -> parsed election CSV"""
    out = {}
    for inner, miembros in leer_paquete(ruta).items():
        codigo = inner.split("_PREP_", 1)[1].removesuffix(".zip").removesuffix("_COAH")
        (nombre,) = [m for m in miembros if m.endswith(".csv") and "CANDIDATURA" not in m]
        out[codigo] = leer_csv(miembros[nombre])
    return out


# --------------------------------------------------------------------------- fixtures

CORTES = 6


@pytest.fixture(scope="module")
def coahuila(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return sim.simulate(tmp_path_factory.mktemp("coah"), "coahuila", CORTES, 11)


@pytest.fixture(scope="module")
def coahuila_csvs(coahuila: list[Path]) -> list[dict[str, Csv]]:
    return [csvs(p) for p in coahuila]


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return sim.simulate(tmp_path_factory.mktemp("mini"), "nacional-mini", 3, 5)


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a = sim.simulate(tmp_path / "a", "coahuila", 3, 7)
    b = sim.simulate(tmp_path / "b", "coahuila", 3, 7)
    c = sim.simulate(tmp_path / "c", "coahuila", 3, 8)
    assert [p.name for p in a] == [p.name for p in b] == [p.name for p in c]
    for pa, pb, pc in zip(a, b, c, strict=True):
        assert pa.read_bytes() == pb.read_bytes()
        assert pa.read_bytes() != pc.read_bytes()
    assert not list((tmp_path / "a").glob("*.part"))


def test_nacional_mini_deterministic(tmp_path: Path, mini: list[Path]) -> None:
    again = sim.simulate(tmp_path, "nacional-mini", 3, 5)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in mini]


def test_incremental_copy_equals_fresh_render() -> None:
    """The fast path (copy unchanged lines of corte k-1) must equal rendering corte k from scratch."""
    cortes, semilla = 4, 3
    cat = sim._catalogo_coahuila(semilla)
    reloj = sim._Reloj(sim._COAH.inicio)
    for spec in sim._ELECCIONES["coahuila"]:
        el = sim._eleccion(cat, spec, semilla, cortes)
        previo = None
        for k in range(cortes):
            corte = sim._COAH.inicio + timedelta(minutes=5 * k)
            copia = sim._zip_eleccion(cat, el, k, corte, semilla, reloj, previo)
            assert copia == sim._zip_eleccion(cat, el, k, corte, semilla, reloj, None)
            previo = copia


# --------------------------------------------------------------------------- structure


def test_coahuila_names_and_members(coahuila: list[Path]) -> None:
    assert len(coahuila) == CORTES
    inicio = datetime(2023, 6, 4, 20, 0)
    for k, ruta in enumerate(coahuila):
        corte = inicio + timedelta(minutes=5 * k)
        sello = f"{corte:%Y%m%d_%H%M}"
        assert ruta.name == f"{sello}_PREP_COAH.zip"
        with zipfile.ZipFile(ruta) as z:
            assert z.namelist() == [f"{sello}_PREP_GUB_COAH.zip", f"{sello}_PREP_DIP_LOC_COAH.zip"]
            assert all(i.date_time == corte.timetuple()[:6] for i in z.infolist())
        paquete = leer_paquete(ruta)
        assert sorted(paquete[f"{sello}_PREP_GUB_COAH.zip"]) == [
            "COAH_GUB_2023.csv", "COAH_GUB_CANDIDATURAS_2023.csv", "LEEME.txt"]
        assert sorted(paquete[f"{sello}_PREP_DIP_LOC_COAH.zip"]) == [
            "COAH_DIP_LOC_2023.csv", "COAH_DIP_LOC_CANDIDATURAS_2023.csv", "LEEME.txt"]
        leeme = paquete[f"{sello}_PREP_GUB_COAH.zip"]["LEEME.txt"]
        assert b"\r\n" in leeme and "Línea".encode("latin-1") in leeme


def test_coahuila_header_layout(coahuila_csvs: list[dict[str, Csv]]) -> None:
    gub = coahuila_csvs[1]["GUB"]
    assert gub.lineas[0] == "GUBERNATURA"
    assert gub.lineas[1] == "04/06/2023 20:05 (UTC-6)"
    assert gub.lineas[2] == "" and gub.lineas[5] == ""  # Coahuila 2023: blanks at lines 3 and 6
    assert gub.lineas[3].startswith("ACTAS_ESPERADAS,")
    assert gub.cabecera[:12] == ["CLAVE_CASILLA", "CLAVE_ACTA", "ID_ENTIDAD", "ENTIDAD", "ID_MUNICIPIO",
                                 "MUNICIPIO", "SECCION", "ID_CASILLA", "TIPO_CASILLA", "EXT_CONTIGUA",
                                 "UBICACION_CASILLA", "TIPO_ACTA"]
    for col in ("MORENA", "NO_REGISTRADAS", "CODIGO_INTEGRIDAD", "C_PAN_PRI_PRD", "C_PAN_PRI", "C_PAN_PRD",
                "C_PRI_PRD", "C_PT_PVEM_MORENA"):
        assert col in gub.cabecera
    dip = coahuila_csvs[0]["DIP_LOC"]
    assert dip.cabecera[4:6] == ["ID_DISTRITO_LOCAL", "DISTRITO_LOCAL"]
    assert "CAND_IND_1" in dip.cabecera and "CAND_IND_1" not in gub.cabecera


def test_coahuila_scale(coahuila_csvs: list[dict[str, Csv]]) -> None:
    gub = coahuila_csvs[-1]["GUB"]
    cat = [f for f in gub.filas if f["CLAVE_CASILLA"] != "-"]
    assert 3900 <= len(cat) <= 4200
    assert 1650 <= len({f["SECCION"] for f in cat}) <= 1800
    assert len({f["ID_MUNICIPIO"] for f in cat}) == 38
    assert {f["ID_ENTIDAD"] for f in gub.filas} == {"05"} and {f["ENTIDAD"] for f in gub.filas} == {"COAHUILA"}
    assert len({f["ID_DISTRITO_LOCAL"] for f in coahuila_csvs[-1]["DIP_LOC"].filas} - {"-"}) == 16
    assert "ACUÑA" in {f["MUNICIPIO"] for f in cat}  # UTF-8 names
    assert [f["CLAVE_CASILLA"] for f in cat] == sorted(f["CLAVE_CASILLA"] for f in cat)
    assert all(f["CLAVE_ACTA"] == f["CLAVE_CASILLA"] + f["TIPO_ACTA"].zfill(2) for f in cat)
    assert all(f["CLAVE_CASILLA"] == f"05{f['SECCION']}{f['TIPO_CASILLA']}{f['ID_CASILLA']}{f['EXT_CONTIGUA']}"
               for f in cat)


# --------------------------------------------------------------------------- incrementality and arrival


@pytest.mark.parametrize("eleccion", ["GUB", "DIP_LOC"])
def test_only_new_actas_change_between_cortes(coahuila_csvs: list[dict[str, Csv]], eleccion: str) -> None:
    for k in range(CORTES - 1):
        a, b = coahuila_csvs[k][eleccion], coahuila_csvs[k + 1][eleccion]
        cat_a = [(f, r) for f, r in zip(a.filas, a.crudas, strict=True) if f["CLAVE_CASILLA"] != "-"]
        cat_b = [(f, r) for f, r in zip(b.filas, b.crudas, strict=True) if f["CLAVE_CASILLA"] != "-"]
        assert [f["CLAVE_ACTA"] for f, _ in cat_a] == [f["CLAVE_ACTA"] for f, _ in cat_b]
        nuevas = 0
        for (fa, ra), (fb, rb) in zip(cat_a, cat_b, strict=True):
            if fa["CONTABILIZADA"] != "":
                assert ra == rb, f"captured acta {fa['CLAVE_ACTA']} changed between cortes {k} and {k + 1}"
            elif ra != rb:
                assert fb["CONTABILIZADA"] in ("0", "1"), "an uncaptured row changed without being captured"
                nuevas += 1
        assert nuevas > 0
        fuera_a = [r for f, r in zip(a.filas, a.crudas, strict=True) if f["CLAVE_CASILLA"] == "-"]
        fuera_b = [r for f, r in zip(b.filas, b.crudas, strict=True) if f["CLAVE_CASILLA"] == "-"]
        assert fuera_b[: len(fuera_a)] == fuera_a
        # Fuera de catálogo rows come last.
        assert all(f["CLAVE_CASILLA"] == "-" for f in b.filas[len(cat_b):])


def test_uncaptured_rows_have_empty_votes(coahuila_csvs: list[dict[str, Csv]]) -> None:
    c = coahuila_csvs[0]["GUB"]
    sin = [f for f in c.filas if f["CONTABILIZADA"] == ""]
    assert sin
    for f in sin:
        assert all(f[col] == "" for col in columnas_voto(c.cabecera))
        assert f["TOTAL_VOTOS_CALCULADO"] == "" and f["CODIGO_INTEGRIDAD"] == ""
        assert f["LISTA_NOMINAL"].isdigit()


def test_arrival_curve(tmp_path: Path, coahuila_csvs: list[dict[str, Csv]]) -> None:
    shares = []
    for corte in coahuila_csvs:
        r = corte["GUB"].resumen
        shares.append(int(r["ACTAS_CAPTURADAS"]) / int(r["ACTAS_ESPERADAS"]))
    assert shares == sorted(shares)
    assert 0.90 <= shares[-1] <= 0.98
    assert shares[0] < 0.2
    assert sim._curva(3)[0] > 0.2 and sim._curva(1) == pytest.approx([0.95])


# --------------------------------------------------------------------------- summary and rows


def test_summary_equals_recount_coahuila(coahuila_csvs: list[dict[str, Csv]]) -> None:
    for corte in coahuila_csvs:
        for c in corte.values():
            assert c.resumen == recontar(c)


def test_summary_equals_recount_mini(mini: list[Path]) -> None:
    for ruta in mini:
        for c in csvs(ruta).values():
            assert c.resumen == recontar(c)


def test_rows_are_coherent(coahuila_csvs: list[dict[str, Csv]]) -> None:
    vistos: set[str] = set()
    difiere = 0
    for c in coahuila_csvs[-1].values():
        votos = columnas_voto(c.cabecera)
        for f in c.filas:
            if f["CLAVE_CASILLA"] == "-":
                assert f["OBSERVACIONES"] == "FUERA DE CATALOGO" and f["CONTABILIZADA"] == "2"
                continue
            if f["TIPO_CASILLA"] == "S":
                assert f["LISTA_NOMINAL"] == "0"
            marcadas = [col for col in votos if f[col] in VOTO_NO_NUMERO]
            if marcadas:
                assert f["OBSERVACIONES"] in ("ALGUN CAMPO ILEGIBLE O SIN DATO", "TODOS ILEGIBLES O SIN DATO")
            if f["CONTABILIZADA"] == "":
                continue
            vistos.add(f["OBSERVACIONES"])
            if f["OBSERVACIONES"].startswith("SIN ACTA"):
                assert f["CONTABILIZADA"] == "0" and f["CODIGO_INTEGRIDAD"] == ""
                continue
            assert len(f["CODIGO_INTEGRIDAD"]) == 64 and int(f["CODIGO_INTEGRIDAD"], 16) >= 0
            numeros = [int(f[col]) for col in votos if f[col] not in VOTO_NO_NUMERO and f[col] != ""]
            assert int(f["TOTAL_VOTOS_CALCULADO"]) == sum(numeros)
            ln = int(f["LISTA_NOMINAL"])
            if f["OBSERVACIONES"] == "EXCEDE LISTA NOMINAL":
                assert f["CONTABILIZADA"] == "0" and sum(numeros) > ln
            elif f["CONTABILIZADA"] == "1":
                assert f["TIPO_CASILLA"] == "S" or sum(numeros) <= ln
                if f["OBSERVACIONES"] == "" and f["TOTAL_VOTOS_ASENTADO"] != f["TOTAL_VOTOS_CALCULADO"]:
                    difiere += 1
                    assert abs(int(f["TOTAL_VOTOS_ASENTADO"]) - int(f["TOTAL_VOTOS_CALCULADO"])) <= 5
            # Times parse and the capture falls before the corte that first shows it.
            for col in ("FECHA_HORA_ACOPIO", "FECHA_HORA_CAPTURA", "FECHA_HORA_VERIFICACION"):
                assert datetime.strptime(f[col], "%d/%m/%Y %H:%M:%S") < datetime(2023, 6, 4, 20, 26)
    assert {"", "ALGUN CAMPO ILEGIBLE O SIN DATO", "TODOS ILEGIBLES O SIN DATO", "EXCEDE LISTA NOMINAL",
            "SIN ACTA POR PAQUETE ENTREGADO SIN BOLSA"} <= vistos
    assert difiere > 0


def test_candidaturas(coahuila: list[Path]) -> None:
    sello = coahuila[0].name[:13]
    paquete = leer_paquete(coahuila[0])
    gub = list(csv.DictReader(io.StringIO(
        paquete[f"{sello}_PREP_GUB_COAH.zip"]["COAH_GUB_CANDIDATURAS_2023.csv"].decode("utf-8"))))
    assert list(gub[0]) == ["ID_ESTADO", "PARTIDO_CI", "CANDIDATURA_PROPIETARIA"]
    codigos = [f["PARTIDO_CI"] for f in gub]
    assert {"SUM-PAN-PRI-PRD", "SUM-PT-PVEM-MORENA", "MC", "CNR", "NULOS"} <= set(codigos)
    assert all(f["CANDIDATURA_PROPIETARIA"] == "" for f in gub if f["PARTIDO_CI"] in ("PAN", "PRI", "PRD"))
    dip = list(csv.DictReader(io.StringIO(
        paquete[f"{sello}_PREP_DIP_LOC_COAH.zip"]["COAH_DIP_LOC_CANDIDATURAS_2023.csv"].decode("utf-8"))))
    assert list(dip[0]) == ["ID_ESTADO", "ID_DISTRITO_LOCAL", "PARTIDO_CI", "CANDIDATURA_PROPIETARIA",
                            "CANDIDATURA_SUPLENTE"]
    assert {f["ID_DISTRITO_LOCAL"] for f in dip} == {str(i) for i in range(1, 17)}
    ci = [f for f in dip if f["PARTIDO_CI"] == "CI1"]
    assert len(ci) == 1 and "'" in ci[0]["CANDIDATURA_PROPIETARIA"]
    nombres = " ".join(f["CANDIDATURA_PROPIETARIA"] for f in gub + dip)
    assert any(ch in nombres for ch in "ÁÉÍÓÚÑ") and '"' in nombres
    # The CI column carries votes only in the CI's district; elsewhere it is empty.
    filas = csvs(coahuila[-1])["DIP_LOC"].filas
    con_ci = {f["ID_DISTRITO_LOCAL"] for f in filas if f["CAND_IND_1"] not in ("", "-")}
    assert con_ci == {ci[0]["ID_DISTRITO_LOCAL"].zfill(2)}
    # A district without coalition A has no candidaturas row for it and empty C_PAN_* cells.
    sin_a = {f["ID_DISTRITO_LOCAL"] for f in dip} - {
        f["ID_DISTRITO_LOCAL"] for f in dip if f["PARTIDO_CI"] == "SUM-PAN-PRI-PRD"}
    for f in filas:
        if f["ID_DISTRITO_LOCAL"].lstrip("0") in sin_a and f["CONTABILIZADA"] == "1":
            assert f["C_PAN_PRI_PRD"] == "" and f["PAN"] != ""


# --------------------------------------------------------------------------- national (reduced)


def test_nacional_mini_smoke(mini: list[Path]) -> None:
    assert [p.name for p in mini] == ["20240602_2000_PREP.zip", "20240602_2005_PREP.zip", "20240602_2010_PREP.zip"]
    paquete = leer_paquete(mini[-1])
    assert sorted(paquete) == ["20240602_2010_PREP_DIP_FED.zip", "20240602_2010_PREP_PRES.zip",
                               "20240602_2010_PREP_SEN.zip"]
    assert sorted(paquete["20240602_2010_PREP_PRES.zip"]) == [
        "LEEME.txt", "PRES_2024.csv", "PRES_CANDIDATURAS_2024.csv"]
    c = csvs(mini[-1])
    pres = c["PRES"]
    assert all(linea != "" for linea in pres.lineas[:5])  # INE 2024: no blank lines in the header block
    assert pres.lineas[2].startswith("ACTAS_ESPERADAS,") and pres.lineas[4].startswith("CLAVE_CASILLA,")
    assert pres.cabecera[2:6] == ["ID_ENTIDAD", "ENTIDAD", "ID_DISTRITO_FEDERAL", "DISTRITO_FEDERAL"]
    cat = [f for f in pres.filas if f["CLAVE_CASILLA"] != "-"]
    assert len({f["ID_ENTIDAD"] for f in cat}) == 32
    remotas = [f for f in cat if f["TIPO_CASILLA"] in "MAP"]
    assert {f["TIPO_CASILLA"] for f in remotas} == {"M", "A", "P"}
    assert {f["ID_DISTRITO_FEDERAL"] for f in remotas} == {"00"}
    assert all(f["ID_DISTRITO_FEDERAL"] != "00" for f in cat if f["TIPO_CASILLA"] not in "MAP")
    # Section numbers repeat across entities: only (entity, section) is a key.
    por_seccion: dict[str, set[str]] = {}
    for f in cat:
        por_seccion.setdefault(f["SECCION"], set()).add(f["ID_ENTIDAD"])
    assert max(len(v) for v in por_seccion.values()) > 1
    assert any(f["TIPO_CASILLA"] == "S" and f["LISTA_NOMINAL"] == "0" for f in cat)
    assert not any(f["TIPO_CASILLA"] == "M" for f in c["DIP_FED"].filas)
    fuera = [f for f in pres.filas if f["CLAVE_CASILLA"] == "-"]
    assert all(f["CONTABILIZADA"] == "0" for f in fuera)
    cand = paquete["20240602_2010_PREP_SEN.zip"]["SEN_CANDIDATURAS_2024.csv"].decode("utf-8").splitlines()
    assert cand[0] == "ID_ESTADO,PARTIDO_CI,CANDIDATURA_PROPIETARIA,CANDIDATURA_SUPLENTE"
    cand = paquete["20240602_2010_PREP_DIP_FED.zip"]["DIP_FED_CANDIDATURAS_2024.csv"].decode("utf-8")
    assert cand.startswith("ID_ESTADO,ID_DISTRITO_FEDERAL,PARTIDO_CI,CANDIDATURA_PROPIETARIA,CANDIDATURA_SUPLENTE\n")
    assert "\nCI1," not in cand and ",CI1," in cand


# --------------------------------------------------------------------------- small pieces


def test_pct_truncates() -> None:
    assert sim._pct(2, 3) == "66.6666"
    assert sim._pct(1, 1) == "100.0000"
    assert sim._pct(0, 7) == "0.0000"
    assert sim._pct(5635206, 10_000_000) == "56.3520"  # 56.35206 -> 56.3520, not 56.3521
    assert sim._pct(1, 0) == ""


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        sim.simulate(tmp_path, "yucatan", 3, 1)
    with pytest.raises(ConfigError):
        sim.simulate(tmp_path, "coahuila", 0, 1)


def test_inicio_and_progress(tmp_path: Path) -> None:
    vistos: list[tuple[int, int, str]] = []
    inicio = datetime(2023, 6, 5, 2, 0, tzinfo=UTC)  # 20:00 in UTC-6, the day before
    rutas = sim.simulate(tmp_path, "coahuila", 2, 1, inicio=inicio,
                         progress=lambda i, n, p: vistos.append((i, n, p.name)))
    assert [p.name for p in rutas] == ["20230604_2000_PREP_COAH.zip", "20230604_2005_PREP_COAH.zip"]
    assert vistos == [(1, 2, rutas[0].name), (2, 2, rutas[1].name)]
