"""Simulacros through the real pipeline: reader, incremental builds equal to cold builds, the CLI."""

from __future__ import annotations

import copy
import csv
import io
import multiprocessing
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import variants
from click.testing import CliRunner
from paths import CAMPECHE

from prepgen import model, render
from prepgen.build import BuildCache, build, build_model, load_and_model
from prepgen.cli import main
from prepgen.errors import BuildError
from prepgen.model import Cifras, Eleccion, SectionMemo, build_elections
from prepgen.reader import RowMemo, read_package
from prepgen.render import SiteOptions
from prepgen.simulate import simulate
from prepgen.writer import Writer


@pytest.fixture(scope="module")
def coahuila(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return simulate(tmp_path_factory.mktemp("coah"), "coahuila", 3, 11)


def test_simulated_packages_read_like_real_ones(coahuila: list[Path]) -> None:
    for pkg in coahuila:
        package = read_package(pkg)
        assert [e.codigo for e in package.elecciones] == ["GUB", "DIP_LOC"]
        for e in build_elections(package):
            # The summary line equals the recount of the rows: no discrepancia of any kind.
            assert e.discrepancias == [], (pkg.name, e.codigo, e.discrepancias)
            r = e.data.resumen
            assert r["ACTAS_ESPERADAS"] == e.cifras.esperadas > 4000
            assert r["ACTAS_CONTABILIZADAS"] == e.cifras.contabilizadas
            assert r["TOTAL_VOTOS_C_CS"] == e.cifras.total_calculado == e.cifras.total_votos


def _build(pkg: Path, out: Path) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["-q", "build", str(pkg), "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return orjson.loads((out / ".prepgen" / "manifest.json").read_bytes())


def _tree(root: Path, url: str, stamps: list[tuple[str, str]], seen: dict[str, Any]) -> Any:
    """The JSON tree from ``url`` with every ``json`` link replaced by the (normalised) object it names."""
    if url in seen:
        return seen[url]
    text = (root / url.lstrip("/")).read_text()
    for old, new in stamps:
        text = text.replace(old, new)

    def link(obj: dict[str, Any], url: str) -> Any:
        target = _tree(root, url, stamps, seen)
        # A section's json is a chunk of changed sections (docs/JSON.md); which chunk depends on when
        # the section last changed, so compare the section itself, not the chunk's other members. Units
        # and candidates come in bundles too: compare the member.
        if obj.get("tipo") == "seccion":
            return target["secciones"][obj["id"]]
        if "unidades" in target:
            return target["unidades"][obj["id"]]
        if isinstance(target.get("candidaturas"), dict):
            return target["candidaturas"][obj["clave"]]
        return target

    def expand(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: link(obj, v) if k == "json" and isinstance(v, str) else expand(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [expand(v) for v in obj]
        return obj

    seen[url] = expand(orjson.loads(text))
    return seen[url]


def test_incremental_corte_equals_cold_build(coahuila: list[Path], tmp_path: Path) -> None:
    inc, cold = tmp_path / "inc", tmp_path / "cold"
    first = _build(coahuila[1], inc)
    second = _build(coahuila[2], inc)
    fresh = _build(coahuila[2], cold)
    pages = {p for p in second["files"] if p.endswith(".html")}
    assert pages == {p for p in fresh["files"] if p.endswith(".html")}
    assert {p for p in second["files"] if not p.startswith("json/")} == {
        p for p in fresh["files"] if not p.startswith("json/")
    }
    # Only the stamps of sections that did not change may differ ("the corte their figures last changed
    # in"), and with them the content-addressed bundle paths that embed them.
    stamps = [(first[k], second[k]) for k in ("corte_texto", "corte", "corte_id")]
    kept = {p for p in pages if "/seccion/" in p and first["files"].get(p) == second["files"][p]}
    assert kept and len(kept) < len(pages)

    def norm(text: str, stamped: bool) -> str:
        text = re.sub(r"/json/[a-z-]+/[0-9a-f]{20}\.json", "/json/X.json", text)
        if stamped:
            for old, new in stamps:
                text = text.replace(old, new)
        return text

    for p in sorted(pages):
        a, b = (inc / p).read_text(), (cold / p).read_text()
        assert norm(a, p in kept) == norm(b, False), p
    # Same figures and the same link structure through the whole JSON tree.
    assert _tree(inc, "/json/main.json", stamps, {}) == _tree(cold, "/json/main.json", [], {})


def test_a_corte_packs_its_sections_units_and_candidates(coahuila: list[Path], tmp_path: Path) -> None:
    """Object budget (DECISIONS): a corte's changed sections go into chunks shared by several units, and
    unit and candidate objects into bundles, not one object per unit or per candidate."""
    out = tmp_path / "site"
    before = _build(coahuila[1], out)["files"]
    after = _build(coahuila[2], out)["files"]
    new = [p for p in after if p.startswith("json/") and p not in before and p != "json/main.json"]
    objects = {p: orjson.loads((out / p).read_bytes()) for p in new}
    chunks = {p: o for p, o in objects.items() if "secciones" in o}
    pages = [p for p in after if "/seccion/" in p and before.get(p) != after[p]]
    units = {(o["eleccion"], s["ambito"]["id"]) for o in chunks.values() for s in o["secciones"].values()}
    # Every changed section page comes with its section in a new chunk, and those chunks are few.
    assert sum(len(o["secciones"]) for o in chunks.values()) == len(pages) > 0
    assert 2 <= len(chunks) < len(units) / 4, (len(chunks), len(units))
    for e in orjson.loads((out / "json" / "main.json").read_bytes())["elecciones"]:
        root = orjson.loads((out / e["json"].lstrip("/")).read_bytes())
        links = [c["json"] for c in root["candidaturas_paginas"]]
        bundles = {u: orjson.loads((out / u.lstrip("/")).read_bytes()) for u in links}
        # Each candidate's link names the bundle that holds it, and no bundle holds anyone else.
        assert all(bundles[c["json"]]["candidaturas"][c["clave"]]["id"] == c["clave"] for c in root["candidaturas_paginas"])
        assert sorted(k for b in bundles.values() for k in b["candidaturas"]) == sorted(
            c["clave"] for c in root["candidaturas_paginas"]
        )
        assert len(bundles) < max(2, len(links) / 4), (e["id"], len(bundles), len(links))
        # Units too: each unit's link names the bundle holding it.
        held = {a["json"]: orjson.loads((out / a["json"].lstrip("/")).read_bytes()) for a in root["ambitos"]}
        assert all(held[a["json"]]["unidades"][a["id"]]["id"] == a["id"] for a in root["ambitos"])
        assert sum(len(b["unidades"]) for b in held.values()) == len(root["ambitos"])
        assert len(held) < len(root["ambitos"]) / 4, (e["id"], len(held), len(root["ambitos"]))


def test_simulate_command(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    result = CliRunner().invoke(
        main, ["simulate", str(out), "--escala", "coahuila", "--cortes", "2", "--semilla", "3"]
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["20230604_2000_PREP_COAH.zip", "20230604_2005_PREP_COAH.zip"]
    again = simulate(tmp_path / "again", "coahuila", 2, 3)
    assert [p.read_bytes() for p in again] == [(out / n).read_bytes() for n in names]
    bad = CliRunner().invoke(main, ["simulate", str(out), "--escala", "marte"])
    assert bad.exit_code == 2


@pytest.mark.parametrize("workers", ["1", "2"])
def test_warm_cache_builds_the_same_bytes(
    coahuila: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    """The watcher's BuildCache only skips work: corte after corte, every file equals a build without it.

    On a derived corte the sections the model did not change are kept without being looked at (see
    Renderer._unchanged); most of every unit's are."""
    monkeypatch.setenv("PREPGEN_WORKERS", workers)
    cache = BuildCache()
    unlooked: list[int] = []  # per corte: sections kept unlooked at
    real_unchanged = render.Renderer._unchanged

    def unchanged(self: render.Renderer, e: Any, u: Any, *args: Any) -> Any:
        found = real_unchanged(self, e, u, *args)
        if found is not None:
            unlooked[-1] += len(u.secciones) - len(found[0])
        return found

    monkeypatch.setattr(render.Renderer, "_unchanged", unchanged)
    warm, plain = tmp_path / "warm", tmp_path / "plain"
    for k, pkg in enumerate(coahuila):
        unlooked.append(0)
        a = build(pkg, warm, SiteOptions(), cache=cache)
        b = build(pkg, plain, SiteOptions())
        if k:
            # Only the lines that changed since the previous corte were parsed.
            changed = _changed_lines(coahuila[k - 1], pkg)
            assert 0 < cache.rows.parsed == changed < sum(len(e.data.actas) for e in a.elections)
            # Corte 1 has half of its actas new (modelled afresh); corte 2 ~10 %, as most cortes: derived.
            assert cache.sections.derived == ({"GUB", "DIP_LOC"} if k == 2 else set())
        ma = orjson.loads((warm / ".prepgen" / "manifest.json").read_bytes())["files"]
        mb = orjson.loads((plain / ".prepgen" / "manifest.json").read_bytes())["files"]
        assert ma == mb, pkg.name
        assert (a.written, a.unchanged) == (b.written, b.unchanged)
        assert (a.pages, a.files) == (b.pages, b.files)
    assert (warm / ".prepgen" / "state.json").read_bytes() == (plain / ".prepgen" / "state.json").read_bytes()
    # Only the derived corte keeps sections unlooked at (with one worker too: the parent renders the units
    # then, in the same code), most of the ~2,900 sections of its two elections.
    sections = sum(len(u.secciones) for e in a.elections for u in e.unidades.values())
    assert unlooked[:2] == [0, 0] and sections // 2 < unlooked[2] < sections, (unlooked, sections)


def test_a_build_that_fails_half_way_leaves_the_render_memo_untrusted(
    coahuila: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The render memo keeps sections unlooked at only next to the state and files it was recorded with; a
    build that dies after its first pages must not leave it trusted, and the next corte is built as it
    is without the cache (after the same failure)."""
    cache = BuildCache()
    warm, plain = tmp_path / "warm", tmp_path / "plain"
    build(coahuila[1], warm, SiteOptions(), cache=cache)
    build(coahuila[1], plain, SiteOptions())
    assert cache.manifest is not None and cache.render.trusts(cache.state, cache.manifest[1]["files"])
    real_write = Writer.write

    def write(self: Writer, path: str, data: bytes) -> None:
        if path == "gub/index.html":
            raise BuildError("disk full")
        real_write(self, path, data)

    monkeypatch.setattr(Writer, "write", write)
    with pytest.raises(BuildError):
        build(coahuila[2], warm, SiteOptions(), cache=cache)
    with pytest.raises(BuildError):
        build(coahuila[2], plain, SiteOptions())
    assert not cache.render.trusts(cache.state, cache.manifest[1]["files"])
    monkeypatch.undo()
    again = build(coahuila[2], warm, SiteOptions(), cache=cache)
    assert again.manifest["files"] == build(coahuila[2], plain, SiteOptions()).manifest["files"]
    assert (warm / ".prepgen" / "state.json").read_bytes() == (plain / ".prepgen" / "state.json").read_bytes()


def test_a_deferred_build_is_the_caches_previous_build_only_once_settled(coahuila: list[Path], tmp_path: Path) -> None:
    """The watcher's build writes its state and manifest in a thread while the corte uploads: until
    settle() returns, the cache keeps describing the previous build (the files on disk may still be its)."""
    cache, out = BuildCache(), tmp_path / "warm"
    build(coahuila[1], out, SiteOptions(), cache=cache)
    before = cache.manifest
    pkg, elections, timings = load_and_model(coahuila[2], cache=cache)
    built = build_model(pkg, elections, timings, out, SiteOptions(), cache=cache, deferred=True)
    assert cache.manifest is before and not cache.render.trusts(cache.state, built.manifest["files"])
    built.settle()
    assert cache.manifest is not None and cache.manifest[1] is built.manifest
    assert cache.render.trusts(cache.state, built.manifest["files"])
    assert orjson.loads((out / ".prepgen" / "manifest.json").read_bytes()) == built.manifest
    assert not (out / ".prepgen" / "incompleto").exists()
    built.cleanup()
    built.settle()  # again: nothing more to do


def test_render_workers_write_the_same_bytes_as_one_process(
    coahuila: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Corte after corte with the watcher's cache, two render processes write what one does.

    At Coahuila size every unit run and candidate bundle fits in a handful of jobs, which the parent
    renders itself: with the packing constants made small, each election's units and candidates are
    spread over the forked workers (all of them handed out before the first is taken, see
    Renderer._plan), as a national build's are."""
    monkeypatch.setattr(render, "UNIT_GROUP_ACTAS", 150)
    monkeypatch.setattr(render, "CHUNK_TARGET", 24 * 1024)
    planned: list[int] = []
    _after(monkeypatch, "_plan", lambda self: planned.append(len(self._planned)))
    caches = {"1": BuildCache(), "2": BuildCache()}
    for pkg in coahuila:
        manifests, states = {}, {}
        for workers, cache in caches.items():
            monkeypatch.setenv("PREPGEN_WORKERS", workers)
            out = tmp_path / f"w{workers}"
            build(pkg, out, SiteOptions(), cache=cache)
            manifests[workers] = orjson.loads((out / ".prepgen" / "manifest.json").read_bytes())["files"]
            states[workers] = (out / ".prepgen" / "state.json").read_bytes()
        assert manifests["1"] == manifests["2"], pkg.name
        assert states["1"] == states["2"], pkg.name
        # Both elections' units and the district candidates went to the workers (the few governor
        # candidates fit in fewer bundles than two workers need), every corte.
        assert planned[-1] >= 3, planned
    assert len(planned) == 2 * len(coahuila) and planned[::2] == [0] * len(coahuila)


def test_a_cold_build_renders_the_first_election_while_reading_the_rest(
    coahuila: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Into an empty folder the first election's units go to forked workers as soon as it is modelled, and
    the second is read meanwhile: the same files and state as one process writes once all is read. A build
    over an existing one (or any non-empty folder) starts nothing before the whole package is modelled."""
    monkeypatch.setattr(render, "UNIT_GROUP_ACTAS", 150)
    monkeypatch.setattr(render, "CHUNK_TARGET", 24 * 1024)
    started: list[tuple[int, int]] = []  # per start(): elections modelled by then, jobs handed out
    _after(monkeypatch, "start", lambda self: started.append((len(self.elections), len(self._planned))))
    pkg = coahuila[-1]
    monkeypatch.setenv("PREPGEN_WORKERS", "2")
    early = build(pkg, tmp_path / "early", SiteOptions())
    assert started == [(1, 1)]  # GUB's units (its few candidates the parent renders); DIP_LOC not read yet
    monkeypatch.setenv("PREPGEN_WORKERS", "1")
    plain = build(pkg, tmp_path / "plain", SiteOptions())
    assert [e.codigo for e in early.elections] == [e.codigo for e in plain.elections] == ["GUB", "DIP_LOC"]
    for name in ("manifest.json", "state.json"):
        assert (tmp_path / "early" / ".prepgen" / name).read_bytes() == (tmp_path / "plain" / ".prepgen" / name).read_bytes()
    assert (early.files, early.pages, early.written) == (plain.files, plain.pages, plain.written)
    monkeypatch.setenv("PREPGEN_WORKERS", "2")
    started.clear()
    build(pkg, tmp_path / "early", SiteOptions())  # over the previous build: kept pages, nothing early
    other = tmp_path / "other"
    other.mkdir()
    (other / "LEEME.txt").write_text("not a build")
    build(pkg, other, SiteOptions())
    assert started == []
    assert (other / "LEEME.txt").read_text() == "not a build"
    # A first election too small for workers of its own: the whole site still gets them once it is read.
    monkeypatch.delenv("PREPGEN_WORKERS")
    monkeypatch.setattr(render, "default_workers", lambda elections: 2 if len(elections) > 1 else 1)
    planned: list[int] = []
    _after(monkeypatch, "_plan", lambda self: planned.append(self.workers))
    late = build(pkg, tmp_path / "late", SiteOptions())
    assert started == [(1, 0)] and planned == [2]
    assert (tmp_path / "late" / ".prepgen" / "manifest.json").read_bytes() == (
        tmp_path / "plain" / ".prepgen" / "manifest.json"
    ).read_bytes()
    assert late.files == plain.files


@pytest.mark.parametrize("folder", ["missing", "empty"])
def test_a_cold_build_whose_later_election_fails_leaves_the_folder_as_found(
    coahuila: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folder: str
) -> None:
    """The first election was already rendering when the second turned out bad: one line naming the cell,
    the workers ended, and nothing of the half-built site left behind."""
    monkeypatch.setattr(render, "UNIT_GROUP_ACTAS", 150)
    monkeypatch.setenv("PREPGEN_WORKERS", "2")

    def poison(text: str) -> str:
        lines = text.splitlines()
        at = next((i for i, ln in enumerate(lines) if ln.startswith("CLAVE_CASILLA")), None)
        if at is None:
            return text  # the candidaturas file
        cells = lines[at + 500].split(",")
        cells[lines[at].split(",").index("LISTA_NOMINAL")] = "12a"
        lines[at + 500] = ",".join(cells)
        return "\n".join(lines)

    bad = variants.rewrite_package(coahuila[-1], tmp_path / coahuila[-1].name, variants.only_csv("DIP_LOC", poison))
    forked: list[int] = []
    _after(monkeypatch, "start", lambda self: forked.append(len(self._planned)))
    out = tmp_path / "site"
    if folder == "empty":
        out.mkdir()
    result = CliRunner().invoke(main, ["build", str(bad), "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert "DIP_LOC" in result.output and "'12a'" in result.output and "Traceback" not in result.output
    assert forked and forked[0] > 0  # GUB had gone to the workers
    assert multiprocessing.active_children() == []
    assert (list(out.iterdir()) == []) if folder == "empty" else not out.exists()


def _after(monkeypatch: pytest.MonkeyPatch, method: str, then: Callable[[render.Renderer], Any]) -> None:
    """Run ``then(renderer)`` after each call of ``Renderer.<method>`` (to record what it did)."""
    real = getattr(render.Renderer, method)

    def spy(self: render.Renderer) -> None:
        real(self)
        then(self)

    monkeypatch.setattr(render.Renderer, method, spy)


def _changed_lines(before: Path, after: Path) -> int:
    old = {line for e in read_package(before).elecciones for line in _rows(before, e.archivo)}
    return sum(1 for e in read_package(after).elecciones for line in _rows(after, e.archivo) if line not in old)


def _rows(pkg: Path, archivo: str) -> list[str]:
    """An election CSV's acta lines (below the CLAVE_CASILLA header), straight from the nested zips."""
    outer, inner, member = archivo.split(":")
    with zipfile.ZipFile(pkg) as zo, zipfile.ZipFile(io.BytesIO(zo.read(inner))) as zi:
        lines = zi.read(member).decode("utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("CLAVE_CASILLA"))
    return [line for line in lines[at + 1 :] if line.strip()]


def test_row_memo_matches_a_plain_read_and_falls_back_on_multiline_quotes(tmp_path: Path) -> None:
    memo = RowMemo()
    src = CAMPECHE[1]
    first = read_package(CAMPECHE[0], memo=memo)
    plain = read_package(src)
    warm = read_package(src, memo=memo)
    for p, w in zip(plain.elecciones, warm.elecciones, strict=True):
        assert p.actas == w.actas and p.multi_entidad == w.multi_entidad
    assert memo.parsed < sum(len(e.actas) for e in warm.elecciones)
    assert first.elecciones[0].archivo != warm.elecciones[0].archivo  # a different outer zip, same layout
    # A quoted OBSERVACIONES spanning two lines cannot be matched line by line: the whole-file reader runs.
    pkg = variants.rewrite_package(CAMPECHE[1], tmp_path / CAMPECHE[1].name, variants.only_csv("GOB", _multiline))
    actas = read_package(pkg, memo=memo).elecciones[0].actas
    assert actas == read_package(pkg).elecciones[0].actas
    assert actas[0].observaciones == "PRIMERA LINEA\nSEGUNDA LINEA"  # the break is kept
    # The rows after it keep their physical line numbers (error messages name them).
    original = plain.elecciones[0].actas
    assert [a.line for a in actas[1:]] == [a.line + 1 for a in original[1:]]
    assert actas[0].line == original[0].line


def _multiline(text: str) -> str:
    """The first acta's OBSERVACIONES as a quoted field with a line break inside (valid CSV)."""
    lines = text.splitlines()
    at = next((i for i, line in enumerate(lines) if line.startswith("CLAVE_CASILLA")), None)
    if at is None:
        return text  # the candidaturas file
    col = next(csv.reader([lines[at]])).index("OBSERVACIONES")
    row = next(csv.reader([lines[at + 1]]))
    row[col] = "PRIMERA LINEA\nSEGUNDA LINEA"
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(row)  # quotes the field: it holds the line terminator
    return "\n".join([*lines[: at + 1], buf.getvalue().rstrip("\n"), *lines[at + 2 :]]) + "\n"


def test_section_memo_late_corte_figures_equal_a_fresh_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Late in the night a unit's figures are last corte's corrected by the sections that changed: equal to
    summing every section again."""
    late = simulate(tmp_path / "sim", "coahuila", 36, 11)[-3:]
    memo, rows = SectionMemo(), RowMemo()
    corrected = 0
    real_copy = Cifras.copy

    def counting_copy(self: Cifras) -> Cifras:
        nonlocal corrected
        corrected += 1
        return real_copy(self)

    monkeypatch.setattr(Cifras, "copy", counting_copy)
    monkeypatch.setattr(model, "_derive", lambda *args: None)  # the path taken when the model is not derived
    for pkg in late:
        warm = build_elections(read_package(pkg, memo=rows), memo)
        fresh = build_elections(read_package(pkg))
        for w, f in zip(warm, fresh, strict=True):
            assert w.cifras == f.cifras
            for uid, u in f.unidades.items():
                assert w.unidades[uid].cifras == u.cifras, (pkg.name, uid)
                assert {k: s.cifras for k, s in w.unidades[uid].secciones.items()} == {
                    k: s.cifras for k, s in u.secciones.items()
                }
    assert corrected > 0  # the corrected path ran (it is taken when fewer than half the sections changed)


def _same_model(warm: list[Eleccion], fresh: list[Eleccion]) -> None:
    """Field by field (so a failure names what differs), then as a whole."""
    for w, f in zip(warm, fresh, strict=True):
        assert w.data.actas == f.data.actas and w.data.multi_entidad == f.data.multi_entidad, w.codigo
        assert list(w.unidades) == list(f.unidades), w.codigo
        for uid, fu in f.unidades.items():
            wu = w.unidades[uid]
            assert (wu.tipo, wu.nombre, wu.pseudo) == (fu.tipo, fu.nombre, fu.pseudo), uid
            assert wu.cifras == fu.cifras, uid
            assert wu.contendientes == fu.contendientes, uid
            assert list(wu.secciones) == list(fu.secciones), uid
            for sid, fs in fu.secciones.items():
                ws = wu.secciones[sid]
                assert (ws.id, ws.unidad_id, ws.cifras, ws.actas) == (fs.id, fs.unidad_id, fs.cifras, fs.actas), sid
        assert w.cifras == f.cifras, w.codigo
        assert w.contendientes == f.contendientes, w.codigo
        assert w.discrepancias == f.discrepancias and w.advertencias == f.advertencias, w.codigo
        assert (w.por_unidad, w.participacion_formula) == (f.por_unidad, f.participacion_formula), w.codigo
        assert w == f


def test_next_corte_model_is_derived_from_the_previous_one(coahuila: list[Path]) -> None:
    """A normal next corte: rows line up with the previous corte's, so the model is derived from the previous
    model (only changed sections, units and the state are new), equal to a fresh one, and the previous model
    it came from is left exactly as it was (the renderer and the memos still hold it)."""
    rows, memo = RowMemo(), SectionMemo()
    previous = build_elections(read_package(coahuila[1], memo=rows), memo)
    assert memo.derived == set()  # nothing to derive from yet
    snapshot = copy.deepcopy(previous)
    warm = build_elections(read_package(coahuila[2], memo=rows), memo)
    assert rows.aligned == 2 and memo.derived == {"GUB", "DIP_LOC"}
    _same_model(warm, build_elections(read_package(coahuila[2])))
    assert previous == snapshot
    for p, w in zip(previous, warm, strict=True):
        # What did not change is shared, not copied; what changed is new.
        kept = [s for uid, u in w.unidades.items() for sid, s in u.secciones.items()
                if p.unidades[uid].secciones[sid] is s]
        assert 0 < len(kept) < sum(len(u.secciones) for u in w.unidades.values())
        assert p.cifras is not w.cifras


def _edit_rows(fn: Callable[[list[str], list[list[str]], list[str]], None]) -> Callable[[str], str]:
    """An edit of the GUB CSV's acta rows: ``fn(header, rows, candidaturas lines)`` changes them in place."""

    def edit(text: str) -> str:
        lines = text.splitlines()
        at = next((i for i, line in enumerate(lines) if line.startswith("CLAVE_CASILLA")), None)
        if at is None:  # the candidaturas file
            body = lines[1:]
            fn([], [], body)
            return "\n".join([lines[0], *body]) + "\n"
        header = next(csv.reader([lines[at]]))
        rows = [next(csv.reader([line])) for line in lines[at + 1 :]]
        fn(header, rows, [])
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([header, *rows])
        return "\n".join(lines[:at]) + "\n" + buf.getvalue()

    return edit


def _swap(header: list[str], rows: list[list[str]], cands: list[str]) -> None:
    if rows:
        rows[10], rows[2000] = rows[2000], rows[10]


def _insert(header: list[str], rows: list[list[str]], cands: list[str]) -> None:
    if rows:
        rows.insert(11, list(rows[10]))


def _remove(header: list[str], rows: list[list[str]], cands: list[str]) -> None:
    if rows:
        del rows[10]


def _move(header: list[str], rows: list[list[str]], cands: list[str]) -> None:
    if rows:
        col = header.index("SECCION")
        assert rows[10][col] != rows[2000][col]
        rows[10][col] = rows[2000][col]


def _rename_candidate(header: list[str], rows: list[list[str]], cands: list[str]) -> None:
    if cands:
        cands[0] = cands[0].rsplit(",", 1)[0] + ",OTRO NOMBRE"


def _new_column(header: list[str], rows: list[list[str]], cands: list[str]) -> None:
    if rows:
        at = next(i for i, c in enumerate(header) if c.startswith("NO_REGISTRAD"))  # the vote block ends here
        counted = header.index("CONTABILIZADA")
        for row in rows:
            row.insert(at, "7" if row[counted] == "1" else "")
        header.insert(at, "PES")


def _fuera(row: list[str], header: list[str]) -> None:
    row[header.index("CLAVE_CASILLA")] = "-"
    row[header.index("CONTABILIZADA")] = "2"


def _append_fuera(header: list[str], rows: list[list[str]], cands: list[str]) -> None:
    if rows:
        rows.append(list(rows[-1]))
        _fuera(rows[-1], header)


def _becomes_fuera(header: list[str], rows: list[list[str]], cands: list[str]) -> None:
    if rows:
        row = next(r for r in rows if r[header.index("CONTABILIZADA")] != "1")
        _fuera(row, header)


@pytest.mark.parametrize(
    ("edit", "derived"),
    [
        (_swap, False),
        (_insert, False),
        (_remove, False),
        (_move, False),
        (_new_column, False),
        (_becomes_fuera, False),
        (_rename_candidate, True),  # contenders are made again from the rows; figures still derived
        (_append_fuera, True),  # the way fuera de catálogo actas arrive
    ],
)
def test_model_derived_or_not_equals_a_fresh_one(
    coahuila: list[Path], tmp_path: Path, edit: Callable[..., None], derived: bool
) -> None:
    """Whatever differs from the previous corte, the warm model equals a fresh one; what the derivation
    cannot follow (rows reordered, inserted or removed, an acta moving section or in or out of the catalogue,
    another vote column) is modelled afresh, for that election only."""
    pkg = variants.rewrite_package(coahuila[2], tmp_path / coahuila[2].name, variants.only_csv("GUB", _edit_rows(edit)))
    rows, memo = RowMemo(), SectionMemo()
    build_elections(read_package(coahuila[1], memo=rows), memo)
    warm = build_elections(read_package(pkg, memo=rows), memo)
    assert ("GUB" in memo.derived) == derived and "DIP_LOC" in memo.derived
    fresh = build_elections(read_package(pkg))
    _same_model(warm, fresh)
    if edit is _append_fuera:
        assert warm[0].discrepancias and warm[0].discrepancias[0]["campo"] == "ACTAS_FUERA_CATALOGO"
