"""The render memo's printed pieces (section links, unit lists, candidate rows) against builds without it.

Real cortes only ever add actas; these edit a Campeche package so that between two cortes a section moves to
another district, one disappears, one appears, figures change, candidates and a district are renamed. After
each, every file and the state must equal what a build without the watcher's BuildCache writes.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from paths import CAMPECHE
from variants import rewrite_package

from prepgen.build import BuildCache, build
from prepgen.errors import BuildError
from prepgen.render import SiteOptions
from prepgen.writer import Writer

Row = dict[str, str]


def _rows(edit: Callable[[Row], Row | None]) -> Callable[[str], str]:
    """Pass every acta row of a results CSV through ``edit`` (None drops it); other lines stay byte for byte."""

    def fn(text: str) -> str:
        lines = text.split("\n")
        at = next(i for i, line in enumerate(lines) if line.startswith("CLAVE_CASILLA,"))
        header = next(csv.reader([lines[at]]))
        out = lines[: at + 1]
        for line in lines[at + 1 :]:
            if not line.strip():
                out.append(line)
                continue
            row = dict(zip(header, next(csv.reader([line])), strict=True))
            new = edit(dict(row))
            if new is None:
                continue
            if new == row:
                out.append(line)  # unchanged lines keep their bytes (and their memoised Acta)
            else:
                buf = io.StringIO()
                csv.writer(buf, lineterminator="").writerow([new[h] for h in header])
                out.append(buf.getvalue())
        return "\n".join(out)

    return fn


def _package(tmp: Path, name: str, edits: list[tuple[str, Callable[[str], str]]]) -> Path:
    """CAMPECHE's 20:00 corte with ``edits`` (member name part, text → text) applied in order."""

    def edit(member: str, data: bytes) -> bytes:
        text = data.decode("utf-8")
        for part, fn in edits:
            if part in member and member.endswith(".csv"):
                text = fn(text)
        return text.encode("utf-8")

    folder = tmp / name
    folder.mkdir()
    return rewrite_package(CAMPECHE[2], folder / CAMPECHE[2].name, edit)


def _move_0010(row: Row) -> Row:
    if row["SECCION"] == "0010":
        row["ID_DISTRITO_LOCAL"], row["DISTRITO_LOCAL"] = "002", "002. SAN FRANCISCO DE CAMPECHE"
    return row


def _one_more_vote_in_0004(row: Row) -> Row:
    if row["CLAVE_CASILLA"] == "040004C0100":  # counted, PAN 15
        row["PAN"] = str(int(row["PAN"]) + 1)
    return row


def _drop_0009(row: Row) -> Row | None:
    return None if row["SECCION"] == "0009" else row


def _renumber_0005(row: Row) -> Row:
    if row["SECCION"] == "0005":
        row["SECCION"] = "0999"
        row["CLAVE_CASILLA"] = row["CLAVE_CASILLA"].replace("0005", "0999", 1)
        row["CLAVE_ACTA"] = row["CLAVE_ACTA"].replace("0005", "0999", 1)
    return row


def _rename_003(row: Row) -> Row:
    if row["ID_DISTRITO_LOCAL"] == "003":
        row["DISTRITO_LOCAL"] = "003. CAMPECHE CENTRO"
    return row


def _renamed_candidates(text: str) -> str:
    return text.replace("GUSTAVO ADOLFO AKE CAB", "GUSTAVO ADOLFO AKÉ CAB").replace(
        "ELISEO FERNANDEZ MONTUFAR", "ELISEO FERNÁNDEZ MONTUFAR"
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_memo_pieces_follow_moved_added_removed_sections_and_renames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    monkeypatch.setenv("PREPGEN_WORKERS", workers)
    dip = "DIP_LOC_2021.csv"
    moved = [(dip, _rows(_move_0010)), (dip, _rows(_one_more_vote_in_0004))]
    reshaped = [(dip, _rows(_move_0010)), (dip, _rows(_drop_0009)), (dip, _rows(_renumber_0005))]
    renamed = [
        *reshaped, ("CANDIDATURA", _renamed_candidates), (dip, _rows(_rename_003)), ("GOB_2021.csv", _rows(_rename_003))
    ]
    cortes = [
        CAMPECHE[1],
        _package(tmp_path, "moved", moved),
        _package(tmp_path, "reshaped", reshaped),
        _package(tmp_path, "renamed", renamed),
        _package(tmp_path, "again", renamed),  # nothing changes: everything below the top is kept
    ]
    cache = BuildCache()
    warm, plain = tmp_path / "warm", tmp_path / "plain"
    for pkg in cortes:
        a = build(pkg, warm, SiteOptions(), cache=cache)
        b = build(pkg, plain, SiteOptions())
        ma = orjson.loads((warm / ".prepgen" / "manifest.json").read_bytes())["files"]
        mb = orjson.loads((plain / ".prepgen" / "manifest.json").read_bytes())["files"]
        assert ma == mb, pkg.parent.name
        assert (warm / ".prepgen" / "state.json").read_bytes() == (plain / ".prepgen" / "state.json").read_bytes()
        # Both builds start their state from the previous one: the sections that are gone must leave it.
        state = orjson.loads((warm / ".prepgen" / "state.json").read_bytes())["secciones"]
        assert state.keys() == {f"{e.slug}/{sid}" for e in a.elections for u in e.unidades.values() for sid in u.secciones}
        assert (a.written, a.unchanged) == (b.written, b.unchanged)
    assert cache.render.rows and cache.render.links and cache.render.lists  # the pieces were there to go wrong
    assert a.unchanged > 0.9 * a.files  # the last corte kept nearly everything
    # The edits took effect (else the comparison above proves little).
    unit = (warm / "dip-loc" / "distrito" / "002" / "index.html").read_text()
    assert "dip-loc/seccion/0010/" in unit and "dip-loc/seccion/0009/" not in unit
    assert "dip-loc/seccion/0999/" in (warm / "dip-loc" / "distrito" / "007" / "index.html").read_text()
    assert "CAMPECHE CENTRO" in (warm / "gob" / "index.html").read_text()
    candidates = list((warm / "dip-loc" / "candidatura").glob("*/index.html"))
    assert any("AKÉ" in p.read_text() for p in candidates)


def test_keep_many_refuses_two_outputs_on_one_path_and_unknown_files(tmp_path: Path) -> None:
    entry = {"sha256": "0" * 64, "size": 1, "type": "text/html", "class": "page"}
    previous = {"files": {p: entry for p in ("a/index.html", "b/index.html", "c/index.html")}}
    w = Writer(tmp_path / "out", previous)
    w.write("a/index.html", b"new")
    with pytest.raises(BuildError, match="a/index.html"):
        w.keep_many(["b/index.html", "a/index.html"])  # written, then kept
    w = Writer(tmp_path / "out2", previous)
    with pytest.raises(BuildError, match="c/index.html"):
        w.keep_many(["b/index.html", "c/index.html", "c/index.html"])  # kept twice
    w = Writer(tmp_path / "out3", previous)
    with pytest.raises(BuildError, match="d/index.html"):
        w.keep_many(["b/index.html", "d/index.html"])  # not in the previous build
    w = Writer(tmp_path / "out4", previous)
    w.keep_many(["b/index.html", "c/index.html"])
    assert w.files == {"b/index.html": entry, "c/index.html": entry} and w.unchanged == 2
    with pytest.raises(BuildError, match="c/index.html"):
        w.write("c/index.html", b"again")  # kept, then written


def test_the_watchers_template_environment_is_kept_and_still_sees_theme_edits(tmp_path: Path) -> None:
    base = (Path(__file__).resolve().parent.parent / "themes" / "zocalo" / "templates" / "base.html").read_text()
    override = tmp_path / "tema" / "templates" / "base.html"
    override.parent.mkdir(parents=True)
    override.write_text(base.replace("</footer>", "<p>marca-uno</p></footer>"))
    options = SiteOptions(tema=str(tmp_path / "tema"))
    cache = BuildCache()
    out = tmp_path / "site"
    build(CAMPECHE[0], out, options, cache=cache)
    env = cache.render.environment(options.tema)
    assert "marca-uno" in (out / "gob" / "index.html").read_text()
    # Edited between two cortes (a newsroom fixing its theme mid-night): the kept environment reloads it.
    override.write_text(base.replace("</footer>", "<p>marca-dos</p></footer>"))
    later = override.stat().st_mtime_ns + 2_000_000_000
    os.utime(override, ns=(later, later))
    build(CAMPECHE[1], out, options, cache=cache)
    assert cache.render.environment(options.tema) is env
    for page in (out / "gob" / "index.html", next((out / "gob" / "seccion").glob("*/index.html"))):
        text = page.read_text()
        assert "marca-dos" in text and "marca-uno" not in text, page
    assert cache.render.environment(None) is not env  # another theme, another environment
