from __future__ import annotations

import dataclasses
import io
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from paths import CAMPECHE, CAMPECHE_ZERO, PUEBLA
from variants import only_csv, rewrite_package

from prepgen.errors import PackageError
from prepgen.reader import Limits, _multi_entidad, read_package

GOB = "CAMP_GOB_2021.csv"


@pytest.mark.parametrize("path", [*CAMPECHE, CAMPECHE_ZERO, PUEBLA], ids=lambda p: p.name)
def test_every_real_package_reads(path: Path) -> None:
    pkg = read_package(path)
    assert pkg.elecciones
    for e in pkg.elecciones:
        assert e.corte.texto.endswith("(UTC-5)")
        assert e.geo_tipo in {"distrito", "municipio"}
        assert e.actas and all(a.clave_casilla and not a.clave_casilla.startswith("'") for a in e.actas)
        assert e.resumen["ACTAS_ESPERADAS"] > 0


def test_corte_and_summary_as_published() -> None:
    pkg = read_package(CAMPECHE[-1])
    assert pkg.corte.texto == "07/06/2021 20:00 (UTC-5)"
    assert pkg.corte.iso == "2021-06-07T20:00:00-05:00"
    assert pkg.corte.id == "20210607_2000"
    gob = pkg.elecciones[0]
    assert gob.codigo == "GOB" and gob.nombre == "Gubernatura"
    assert gob.resumen["ACTAS_CONTABILIZADAS"] == 1050
    assert gob.resumen["PORCENTAJE_PARTICIPACION_CIUDADANA"] == Decimal("63.2564")
    assert gob.resumen_texto["PORCENTAJE_ACTAS_INCONSISTENCIAS"] == "2.4369"


def test_zero_corte_apostrophes_and_empty_summary_fields() -> None:
    pkg = read_package(CAMPECHE_ZERO)
    assert [e.codigo for e in pkg.elecciones] == ["GOB", "DIP_LOC", "AYUN", "JUNTAS"]
    ayun = next(e for e in pkg.elecciones if e.codigo == "AYUN")
    assert ayun.geo_columna == "ID_MUNICIPIO" and ayun.geo_tipo == "municipio"
    assert ayun.actas[0].clave_casilla == "040001B0100"
    assert ayun.actas[0].unidad_id == "001"
    assert ayun.resumen["TOTAL_VOTOS_C_CS"] is None  # empty in the zero corte, not 0
    assert "CAND_IND_1" in ayun.vote_columns


def test_special_values_are_not_zero() -> None:
    pkg = read_package(PUEBLA)
    gob = pkg.elecciones[0]
    sin_acta = [a for a in gob.actas if a.observaciones == "Sin Acta"]
    assert sin_acta
    assert all(v is None for v in sin_acta[0].votos)
    dash = [a for a in gob.actas if a.contabilizada == "-"]
    assert dash, "Puebla has CONTABILIZADA '-' rows"
    assert not any(a.contada for a in dash)


def test_old_and_new_column_names_are_equivalent(tmp_path: Path) -> None:
    def modernise(text: str) -> str:
        return (
            text.replace("ID_ESTADO,ESTADO", "ID_ENTIDAD,ENTIDAD")
            .replace(",SHA,", ",CODIGO_INTEGRIDAD,")
            .replace("NO_REGISTRADOS", "NO_REGISTRADAS")
        )

    pkg = read_package(rewrite_package(CAMPECHE[-1], tmp_path / "p.zip", only_csv("_2021.csv", modernise)))
    ref = read_package(CAMPECHE[-1])
    for a, b in zip(pkg.elecciones[0].actas, ref.elecciones[0].actas, strict=True):
        assert (a.sha, a.no_registrados, a.entidad) == (b.sha, b.no_registrados, b.entidad)


def test_blank_lines_moved_crlf_latin1_and_markers(tmp_path: Path) -> None:
    """Coahuila 2023 puts blanks at lines 3 and 6; others use CRLF/Latin-1 and write SIN DATO/ILEGIBLE."""

    def coahuila_style(name: str, data: bytes) -> bytes:
        if not name.endswith(GOB):
            return data
        lines = data.decode().splitlines()
        lines.insert(2, "")
        text = "\r\n".join(lines).replace(",TODOS ILEGIBLES O SIN DATO,", ",Todos ilegibles o sin datö,")
        # Put markers into the first counted acta's vote cells.
        out = []
        done = False
        for ln in text.split("\r\n"):
            cells = ln.split(",")
            if not done and len(cells) > 40 and cells[-9] == "1":
                cells[16], cells[17] = "SIN DATO", "Ilegible"
                done = True
            out.append(",".join(cells))
        return "\r\n".join(out).encode("latin-1")

    pkg = read_package(rewrite_package(CAMPECHE[-1], tmp_path / "p.zip", coahuila_style))
    gob = pkg.elecciones[0]
    marked = [a for a in gob.actas if a.marcas]
    assert marked and marked[0].votos[0] is None and marked[0].marcas["PAN"] == "SIN DATO"
    assert marked[0].marcas["PRI"] == "Ilegible"
    assert any(a.observaciones == "Todos ilegibles o sin datö" for a in gob.actas)


def test_pipe_delimited_layout(tmp_path: Path) -> None:
    pkg = read_package(
        rewrite_package(CAMPECHE[-1], tmp_path / "p.zip", only_csv(GOB, lambda t: t.replace(",", "|")))
    )
    ref = read_package(CAMPECHE[-1])
    assert [a.votos for a in pkg.elecciones[0].actas] == [a.votos for a in ref.elecciones[0].actas]


def test_inner_zip_and_unpacked_folder(tmp_path: Path) -> None:
    with zipfile.ZipFile(CAMPECHE[-1]) as outer:
        inner_name = next(n for n in outer.namelist() if "_GOB_" in n)
        inner = outer.read(inner_name)
        (tmp_path / inner_name).write_bytes(inner)
        folder = tmp_path / "unpacked"
        for n in outer.namelist():
            with zipfile.ZipFile(io.BytesIO(outer.read(n))) as z:
                z.extractall(folder / n.removesuffix(".zip"))
    one = read_package(tmp_path / inner_name)
    assert [e.codigo for e in one.elecciones] == ["GOB"]
    unpacked = read_package(folder)
    assert [e.codigo for e in unpacked.elecciones] == ["GOB", "DIP_LOC"]
    ref = read_package(CAMPECHE[-1])
    assert [a.votos for a in unpacked.elecciones[1].actas] == [a.votos for a in ref.elecciones[1].actas]


# --- bad input: one clear line naming file/line/what ----------------------------------------------


def _bad(tmp_path: Path, fn) -> str:
    path = rewrite_package(CAMPECHE[-1], tmp_path / "bad.zip", only_csv(GOB, fn))
    with pytest.raises(PackageError) as exc:
        read_package(path)
    msg = exc.value.format_message()
    assert "\n" not in msg
    return msg


def test_vote_cell_abc(tmp_path: Path) -> None:
    def poison(text: str) -> str:
        lines = text.splitlines()
        cells = lines[10].split(",")
        cells[16] = "abc"
        lines[10] = ",".join(cells)
        return "\n".join(lines)

    msg = _bad(tmp_path, poison)
    assert GOB in msg and "line 11" in msg and "PAN" in msg and "'abc'" in msg


@pytest.mark.parametrize("cell", ["²", "1²", "³"])
def test_a_digit_that_is_no_number_is_a_clear_error(cell: str, tmp_path: Path) -> None:
    """str.isdigit() takes superscripts, int() does not: a vote, total or list cell holding one is reported,
    not a traceback (the fast paths check isdecimal)."""
    for name in ("PAN", "NULOS", "LISTA_NOMINAL"):  # a party's votes; the other counted cells

        def poison(text: str, name: str = name) -> str:
            lines = text.splitlines()
            header = next(ln for ln in lines if ln.startswith("CLAVE_CASILLA"))
            cells = lines[10].split(",")
            cells[header.split(",").index(name)] = cell
            lines[10] = ",".join(cells)
            return "\n".join(lines)

        msg = _bad(tmp_path, poison)
        assert GOB in msg and "line 11" in msg and repr(cell) in msg and "neither a whole number" in msg


def test_row_with_missing_columns(tmp_path: Path) -> None:
    msg = _bad(tmp_path, lambda t: "\n".join(ln if i != 20 else ",".join(ln.split(",")[:30]) for i, ln in enumerate(t.splitlines())))
    assert "line 21" in msg and "30 fields" in msg


def test_missing_corte_line(tmp_path: Path) -> None:
    msg = _bad(tmp_path, lambda t: "\n".join(t.splitlines()[:1] + t.splitlines()[2:]))
    assert "no corte line" in msg and GOB in msg


def test_unknown_layout(tmp_path: Path) -> None:
    msg = _bad(tmp_path, lambda t: t.replace("CLAVE_CASILLA", "CLAVE"))
    assert "no acta header" in msg
    msg = _bad(tmp_path, lambda t: t.replace(",LISTA_NOMINAL,", ",LN,"))
    assert "LISTA_NOMINAL" in msg and "line 6" in msg


def test_truncated_zip(tmp_path: Path) -> None:
    data = CAMPECHE[-1].read_bytes()
    bad = tmp_path / "20210607_2000_PREP_CAMP.zip"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(PackageError, match="not a readable zip"):
        read_package(bad)


def test_not_a_zip_and_missing(tmp_path: Path) -> None:
    (tmp_path / "x.zip").write_text("hola")
    with pytest.raises(PackageError, match="not a readable zip"):
        read_package(tmp_path / "x.zip")
    with pytest.raises(PackageError, match="no such file"):
        read_package(tmp_path / "nope.zip")


def test_zip_slip_and_bomb_refused(tmp_path: Path) -> None:
    slip = tmp_path / "slip.zip"
    with zipfile.ZipFile(slip, "w") as z:
        z.writestr("../../evil.csv", "x")
    with pytest.raises(PackageError, match="escapes the archive"):
        read_package(slip)
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z, z.open("X_GOB_2021.csv", "w") as fh:
        chunk = b"0" * (1 << 20)
        for _ in range(64):
            fh.write(chunk)
    with pytest.raises(PackageError, match="zip bomb"):
        read_package(bomb)


def _repack(src: Path, dst: Path, inner_edit: dict[str, tuple[str, bytes | None]]) -> Path:
    """Copy a nested package; ``inner_edit[inner zip name] = (member, bytes)`` adds or replaces one member
    of that inner zip, stored uncompressed with one byte of its data flipped when ``bytes`` is None."""
    with zipfile.ZipFile(src) as outer, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as out:
        for name in outer.namelist():
            data = outer.read(name)
            if name in inner_edit:
                member, new = inner_edit[name]
                buf = io.BytesIO()
                with zipfile.ZipFile(io.BytesIO(data)) as inner, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as w:
                    body = new if new is not None else inner.read(member) if member in inner.namelist() else b"A,B\n1,2\n"
                    for m in inner.namelist():
                        if m != member:
                            w.writestr(m, inner.read(m))
                    w.writestr(member, body, compress_type=zipfile.ZIP_STORED)
                data = bytearray(buf.getvalue())
                if new is None:
                    at = data.find(body) + len(body) // 2  # the member's stored bytes: its CRC no longer matches
                    data[at] ^= 0x01
                data = bytes(data)
            out.writestr(name, data)
    return dst


def test_a_damaged_member_refuses_the_package_named_whichever_thread_inflated_it(tmp_path: Path) -> None:
    """CSVs are inflated in threads while earlier ones parse: a damaged one is still one error naming it,
    also when nothing would use it (a candidaturas file of an election the package does not have)."""
    inner = {n: n for n in zipfile.ZipFile(CAMPECHE[-1]).namelist()}
    dip = next(n for n in inner if "DIP_LOC" in n)
    gob = next(n for n in inner if "_GOB_" in n)
    bad = _repack(CAMPECHE[-1], tmp_path / "20210607_2000_PREP_CAMP.zip", {dip: ("CAMP_DIP_LOC_2021.csv", None)})
    with pytest.raises(PackageError, match=r"CAMP_DIP_LOC_2021\.csv'? is damaged .*Bad CRC"):
        read_package(bad)
    unused = _repack(CAMPECHE[-1], tmp_path / "unused.zip", {gob: ("CAMP_PRES_CANDIDATURA_2021.csv", None)})
    with pytest.raises(PackageError, match=r"CAMP_PRES_CANDIDATURA_2021\.csv'? is damaged"):
        read_package(unused)
    fine = _repack(CAMPECHE[-1], tmp_path / "fine.zip", {gob: ("CAMP_PRES_CANDIDATURA_2021.csv", b"A,B\n1,2\n")})
    assert [e.codigo for e in read_package(fine).elecciones] == [e.codigo for e in read_package(CAMPECHE[-1]).elecciones]


def test_the_size_budget_counts_every_member_whichever_thread_inflated_it(tmp_path: Path) -> None:
    """The package's total cap covers the inner zips and every CSV, inflated concurrently: one byte under
    their sum refuses the package, their sum reads it."""
    total = 0
    with zipfile.ZipFile(CAMPECHE[-1]) as outer:
        for info in outer.infolist():
            total += info.file_size
            with zipfile.ZipFile(io.BytesIO(outer.read(info))) as inner:
                total += sum(i.file_size for i in inner.infolist() if i.filename.endswith(".csv"))
    assert read_package(CAMPECHE[-1], limits=Limits(max_total_bytes=total)).elecciones
    with pytest.raises(PackageError, match="decompresses past the size cap"):
        read_package(CAMPECHE[-1], limits=Limits(max_total_bytes=total - 1))


def test_more_than_one_entity_is_told_by_the_number_not_its_zero_padding() -> None:
    a = read_package(CAMPECHE[0]).elecciones[0].actas[0]
    one = [dataclasses.replace(a, entidad=e) for e in ("04", "4", "", "04")]
    assert not _multi_entidad(one)
    # A fuera de catálogo acta's entity does not count; a catalogued one does, wherever it is.
    assert not _multi_entidad([*one, dataclasses.replace(a, entidad="05", fuera_catalogo=True)])
    assert _multi_entidad([*one, dataclasses.replace(a, entidad="5")])
    assert _multi_entidad([dataclasses.replace(a, entidad="0"), dataclasses.replace(a, entidad="00"), *one])
