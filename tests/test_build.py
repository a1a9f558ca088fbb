from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from paths import ALL_PACKAGES, CAMPECHE, CAMPECHE_ZERO, PUEBLA
from recount import election_rows
from sitecheck import check_links
from variants import rewrite_package

from prepgen.cli import main
from prepgen.errors import BuildError
from prepgen.writer import Writer

GOLDEN = Path(__file__).parent / "golden"


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for pkg in ALL_PACKAGES:
        d = tmp_path_factory.mktemp(pkg.stem)
        result = CliRunner().invoke(main, ["-q", "build", str(pkg), "-o", str(d)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        out[pkg.name] = d
    return out


@pytest.mark.parametrize("pkg", ALL_PACKAGES, ids=lambda p: p.name)
def test_every_page_has_the_corte_and_every_link_exists(built, pkg: Path) -> None:
    root = built[pkg.name]
    main_json = orjson.loads((root / "json" / "main.json").read_bytes())
    corte = main_json["corte_texto"]
    assert re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d \(UTC-\d\)", corte)
    pages = list(root.rglob("*.html"))
    assert len(pages) > 100
    for page in pages:
        html = page.read_text()
        # Section pages carry the corte their figures last changed in; a cold build has one corte.
        assert corte in html, page
        assert "preliminar" in html and "Content-Security-Policy" in html
    assert check_links(root) > len(pages)
    manifest = orjson.loads((root / ".prepgen" / "manifest.json").read_bytes())
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and ".prepgen" not in p.parts}
    assert on_disk == set(manifest["files"])


@pytest.mark.parametrize("pkg", ALL_PACKAGES, ids=lambda p: p.name)
def test_state_pages_show_the_published_summary(built, pkg: Path) -> None:
    root = built[pkg.name]
    main_json = orjson.loads((root / "json" / "main.json").read_bytes())
    for e in main_json["elecciones"]:
        data = orjson.loads((root / e["json"].lstrip("/")).read_bytes())
        _, _, summary = election_rows(pkg, e["id"])
        clean = {k: v.lstrip("'") for k, v in summary.items()}
        assert data["actas"]["esperadas"] == int(clean["ACTAS_ESPERADAS"])
        assert data["actas"]["contabilizadas"] == int(clean["ACTAS_CONTABILIZADAS"])
        ln = clean["LISTA_NOMINAL_ACTAS_CONTABILIZADAS"]
        assert data["lista_nominal"] == (int(ln) if ln else None)
        tv = clean["TOTAL_VOTOS_C_CS"]
        assert data["total_votos"] == (int(tv) if tv else None)
        html = (root / e["html"].lstrip("/") / "index.html").read_text()
        if tv:
            assert f"{int(tv):,}" in html
        part = clean["PORCENTAJE_PARTICIPACION_CIUDADANA"]
        if part:
            assert f"{float(part):.4f} %" in html


def test_campeche_dip_discrepancy_is_flagged(built) -> None:
    root = built[CAMPECHE[-1].name]
    main_json = orjson.loads((root / "json" / "main.json").read_bytes())
    dip = next(e for e in main_json["elecciones"] if e["id"] == "DIP_LOC")
    data = orjson.loads((root / dip["json"].lstrip("/")).read_bytes())
    assert {"campo": "ACTAS_CONTABILIZADAS", "publicado": 1060, "recuento": 1056} in data["discrepancias"]
    assert data["actas"]["contabilizadas"] == 1060  # the published figure is what is shown
    html = (root / "dip-loc" / "index.html").read_text()
    assert "no coincide" in html and "1,060" in html
    report = orjson.loads((root / ".prepgen" / "report.json").read_bytes())
    assert report["elecciones"][1]["discrepancias"]


def test_section_page_lists_casillas_with_anchor_and_sha(built) -> None:
    root = built[CAMPECHE[-1].name]
    html = (root / "gob" / "seccion" / "0001" / "index.html").read_text()
    assert re.search(r'id="?040001B0100[" >]', html)
    bundle_url = re.search(r'href="?(/json/gob/[0-9a-f]+\.json)', html)[1]
    bundle = orjson.loads((root / bundle_url.lstrip("/")).read_bytes())
    sec = bundle["secciones"]["0001"]
    for c in sec["casillas"]:
        if c["sha256"]:
            assert c["sha256"] in html
    assert sec["corte_texto"] == "07/06/2021 20:00 (UTC-5)"


def test_zero_corte_has_no_percentages(built) -> None:
    root = built[CAMPECHE_ZERO.name]
    data = orjson.loads((root / "json" / "main.json").read_bytes())
    gob = orjson.loads((root / data["elecciones"][0]["json"].lstrip("/")).read_bytes())
    assert all(c["porcentaje"] is None for c in gob["candidaturas"])
    assert gob["participacion"] is None
    assert "—" in (root / "gob" / "index.html").read_text()


def test_main_json_contract(built) -> None:
    root = built[PUEBLA.name]
    m = orjson.loads((root / "json" / "main.json").read_bytes())
    assert m["corte"] == "2018-07-02T20:00:00-05:00" and m["corte_texto"] == "02/07/2018 20:00 (UTC-5)"
    assert [e["id"] for e in m["elecciones"]] == ["GOB", "DIP_LOC"]
    e = orjson.loads((root / m["elecciones"][0]["json"].lstrip("/")).read_bytes())
    for key in ("id", "nombre", "corte", "actas", "lista_nominal", "participacion", "candidaturas", "no_registrados",
                "nulos", "total_votos", "ambitos"):
        assert key in e
    assert set(e["actas"]) >= {"esperadas", "capturadas", "contabilizadas", "porcentaje_capturadas",
                               "porcentaje_contabilizadas"}
    assert {a["id"] for a in e["ambitos"]} >= {"027"}
    bundle = orjson.loads((root / e["ambitos"][0]["json"].lstrip("/")).read_bytes())
    unit = bundle["unidades"][e["ambitos"][0]["id"]]
    assert unit["ambitos"][0]["tipo"] == "seccion"
    assert all(isinstance(c["votos"], int) for c in unit["candidaturas"])


def test_candidate_names_are_escaped(tmp_path: Path) -> None:
    evil = '<script>alert(1)</script> & <b>'

    def edit(name: str, data: bytes) -> bytes:
        if name.endswith("CAMP_GOB_CANDIDATURA_2021.csv"):
            return data.decode().replace("ELISEO FERNANDEZ MONTUFAR", evil).encode()
        return data

    pkg = rewrite_package(CAMPECHE[-1], tmp_path / "20210607_2000_PREP_CAMP.zip", edit)
    result = run("-q", "build", str(pkg), "-o", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    html = (tmp_path / "out" / "gob" / "index.html").read_text()
    assert "<script>alert" not in html and "<b>" not in html
    # The minifier may leave '>' bare in text (harmless); '<' is always escaped.
    assert "&lt;script>alert(1)&lt;/script>" in html.replace("&gt;", ">")
    assert "&lt;b>" in html.replace("&gt;", ">")


BAD_INPUTS = {
    "truncated": lambda src, dst: dst.write_bytes(src.read_bytes()[:5000]),
    "abc": lambda src, dst: rewrite_package(src, dst, _cell_edit(10, 16, "abc")),
    "missing-columns": lambda src, dst: rewrite_package(src, dst, _row_cut(12)),
    "no-corte": lambda src, dst: rewrite_package(src, dst, _drop_line(1)),
    "unknown-layout": lambda src, dst: rewrite_package(src, dst, _replace("CLAVE_CASILLA", "CASILLA")),
}


def _csv_edit(fn):
    def edit(name: str, data: bytes) -> bytes:
        return fn(data.decode()).encode() if name.endswith("CAMP_GOB_2021.csv") else data

    return edit


def _cell_edit(line: int, col: int, value: str):
    def fn(text: str) -> str:
        lines = text.splitlines()
        cells = lines[line].split(",")
        cells[col] = value
        lines[line] = ",".join(cells)
        return "\n".join(lines)

    return _csv_edit(fn)


def _row_cut(line: int):
    return _csv_edit(lambda t: "\n".join(ln if i != line else ",".join(ln.split(",")[:20]) for i, ln in enumerate(t.splitlines())))


def _drop_line(line: int):
    return _csv_edit(lambda t: "\n".join(ln for i, ln in enumerate(t.splitlines()) if i != line))


def _replace(a: str, b: str):
    return _csv_edit(lambda t: t.replace(a, b))


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_bad_input_one_line_exit_1_nothing_written(tmp_path: Path, kind: str) -> None:
    bad = tmp_path / "20210607_2000_PREP_CAMP.zip"
    BAD_INPUTS[kind](CAMPECHE[-1], bad)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["build", str(bad), "-o", str(out)])
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    assert str(bad) in lines[0]
    assert not out.exists()


def test_bad_input_keeps_previous_build(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("-q", "build", str(CAMPECHE[0]), "-o", str(out)).exit_code == 0
    before = (out / ".prepgen" / "manifest.json").read_bytes()
    bad = tmp_path / "20210607_2000_PREP_CAMP.zip"
    BAD_INPUTS["abc"](CAMPECHE[-1], bad)
    assert CliRunner().invoke(main, ["build", str(bad), "-o", str(out)]).exit_code == 1
    assert (out / ".prepgen" / "manifest.json").read_bytes() == before


def test_usage_error_exits_2() -> None:
    result = CliRunner().invoke(main, ["build", "--nope"])
    assert result.exit_code == 2


def test_the_prepgen_command_ends_a_build_at_once_with_all_its_output(tmp_path: Path) -> None:
    """`prepgen build` (the console entry, not CliRunner) skips freeing its heap at exit (cli._exit_at_once):
    exit 0, every line printed, the manifest and state on disk; a bad package still exits 1 in one line."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "prepgen.cli", "build"]
    done = subprocess.run([*cmd, str(CAMPECHE[-1]), "-o", str(out)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"corte .*: \d+ files \(\d+ pages\), \d+ written, 0 unchanged in [\d.]+ s", done.stderr.splitlines()[-1])
    manifest = orjson.loads((out / ".prepgen" / "manifest.json").read_bytes())
    assert len(manifest["files"]) > 100 and (out / ".prepgen" / "state.json").stat().st_size > 0
    bad = tmp_path / "20210607_2000_PREP_CAMP.zip"
    BAD_INPUTS["abc"](CAMPECHE[-1], bad)
    failed = subprocess.run([*cmd, str(bad), "-o", str(out)], env=env, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 1 and failed.stderr.count("Error:") == 1 and "Traceback" not in failed.stderr
    assert orjson.loads((out / ".prepgen" / "manifest.json").read_bytes()) == manifest


def test_build_without_arguments_uses_newest_package_in_data(tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for p in CAMPECHE:
        (data / p.name).write_bytes(p.read_bytes())
    monkeypatch.chdir(tmp_path)
    result = run("build")
    assert result.exit_code == 0, result.output
    assert orjson.loads((tmp_path / "build" / "json" / "main.json").read_bytes())["corte_id"] == "20210607_2000"


def test_base_path_prefixes_every_link(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run("-q", "build", str(CAMPECHE[0]), "-o", str(out), "--base-path", "prep2021")
    assert result.exit_code == 0, result.output
    assert check_links(out, "/prep2021/") > 0
    html = (out / "gob" / "index.html").read_text()
    hrefs = [h for h in re.findall(r'(?:href|src)="?([^"\s>]+)', html) if not h.startswith("#")]
    assert hrefs and all(h.startswith("/prep2021/") for h in hrefs), hrefs


def test_incremental_build_keeps_stamps_of_unchanged_sections(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("-q", "build", str(CAMPECHE[1]), "-o", str(out)).exit_code == 0
    first = orjson.loads((out / ".prepgen" / "manifest.json").read_bytes())["files"]
    assert run("-q", "build", str(CAMPECHE[2]), "-o", str(out)).exit_code == 0
    second = orjson.loads((out / ".prepgen" / "manifest.json").read_bytes())["files"]
    sections = [p for p in second if "/seccion/" in p]
    same = [p for p in sections if first.get(p, {}).get("sha256") == second[p]["sha256"]]
    changed = [p for p in sections if p not in same]
    assert same and changed
    for p in same[:20]:
        assert "07/06/2021 13:20 (UTC-5)" in (out / p).read_text()
    for p in changed[:20]:
        assert "07/06/2021 20:00 (UTC-5)" in (out / p).read_text()
    # Pages above section level always carry the newest corte.
    assert "07/06/2021 20:00 (UTC-5)" in (out / "gob" / "distrito" / "001" / "index.html").read_text()
    # A cold build of the same corte has the same pages and links; only unchanged section stamps differ.
    cold = tmp_path / "cold"
    assert run("-q", "build", str(CAMPECHE[2]), "-o", str(cold)).exit_code == 0
    cold_files = orjson.loads((cold / ".prepgen" / "manifest.json").read_bytes())["files"]
    assert {p for p in cold_files if p.endswith(".html")} == {p for p in second if p.endswith(".html")}
    # Changed sections render identically, except the link to their unit's content-addressed bundle,
    # whose hash covers its unchanged neighbours' (older) stamps.
    def norm(text: str) -> str:
        return re.sub(r"/json/[a-z-]+/[0-9a-f]{20}\.json", "/json/BUNDLE.json", text)

    for p in changed:
        assert norm((cold / p).read_text()) == norm((out / p).read_text()), p


def test_rebuild_same_package_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("-q", "build", str(CAMPECHE[0]), "-o", str(out)).exit_code == 0
    result = run("build", str(CAMPECHE[0]), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert " 0 written" in result.output


def test_a_rebuild_restores_folders_removed_by_hand(tmp_path: Path) -> None:
    """The writer skips creating the folders of files the previous build had: when one was removed by hand
    anyway, its changed page still gets written (and an unchanged one comes back)."""
    import shutil

    out = tmp_path / "out"
    assert run("-q", "build", str(CAMPECHE[1]), "-o", str(out)).exit_code == 0
    before = orjson.loads((out / ".prepgen" / "manifest.json").read_bytes())["files"]
    assert run("-q", "build", str(CAMPECHE[2]), "-o", str(out)).exit_code == 0
    after = orjson.loads((out / ".prepgen" / "manifest.json").read_bytes())["files"]
    changed = sorted(p for p in before if p.endswith("/index.html") and p in after and before[p] != after[p])
    assert changed
    # Back to the first corte with one changed page's folder and one whole unit folder gone.
    shutil.rmtree((out / changed[0]).parent)
    unit = (out / changed[-1]).parent.parent
    shutil.rmtree(unit)
    assert run("-q", "build", str(CAMPECHE[1]), "-o", str(out)).exit_code == 0
    files = orjson.loads((out / ".prepgen" / "manifest.json").read_bytes())["files"]
    assert files == before
    wrong = [p for p, e in files.items() if hashlib.sha256((out / p).read_bytes()).hexdigest() != e["sha256"]]
    assert wrong == []


def test_writer_replaces_whole_files_new_or_shrinking(tmp_path: Path) -> None:
    """A new file is opened truncating (a stray longer file left at its path must not keep a tail); a file
    the previous build had is rewritten in place and trimmed to the new length."""
    out = tmp_path / "out"
    first = Writer(out)
    first.write("a/index.html", b"<p>long page of the previous build</p>")
    manifest = first.finish({"corte_id": "1"}, {})
    (out / "b").mkdir()
    (out / "b" / "index.html").write_bytes(b"stray bytes from a build that never made it into a manifest")
    second = Writer(out, manifest)
    second.write("a/index.html", b"<p>short</p>")
    second.write("b/index.html", b"<p>new</p>")
    second.finish({"corte_id": "2"}, {})
    assert (out / "a" / "index.html").read_bytes() == b"<p>short</p>"
    assert (out / "b" / "index.html").read_bytes() == b"<p>new</p>"
    # An existing file is written up to a whole page and trimmed: no zeros left, whatever the length.
    third = Writer(out, orjson.loads((out / ".prepgen" / "manifest.json").read_bytes()))
    grown = bytes(range(256)) * 37  # 9,472 bytes: ends inside a page
    third.write("a/index.html", grown)
    third.write("b/index.html", b"x" * 8192)  # a whole number of pages
    third.finish({"corte_id": "3"}, {})
    assert (out / "a" / "index.html").read_bytes() == grown
    assert (out / "b" / "index.html").read_bytes() == b"x" * 8192


def test_writer_finish_in_the_background_completes_the_build_only_once_written(tmp_path: Path) -> None:
    """finish(background=True) hands back the manifest at once; the build is complete (manifest on disk,
    marker gone) only once wait() returns, and a failed write is raised by wait(), every time it is asked."""
    out = tmp_path / "out"
    marker = out / ".prepgen" / "incompleto"

    def full_disk() -> bytes:
        raise OSError(28, "No space left on device")

    failing = Writer(out)
    failing.write("a/index.html", b"<p>a</p>")
    manifest = failing.finish({"corte_id": "1"}, {"state.json": full_disk}, background=True)
    assert list(manifest["files"]) == ["a/index.html"]
    for _ in range(2):
        with pytest.raises(OSError, match="No space left"):
            failing.wait()
    assert marker.exists() and not (out / ".prepgen" / "manifest.json").exists()

    writer = Writer(out)
    writer.write("a/index.html", b"<p>a</p>")
    manifest = writer.finish({"corte_id": "1"}, {"state.json": lambda: b"{}"}, background=True)
    writer.wait()
    assert not marker.exists() and (out / ".prepgen" / "state.json").read_bytes() == b"{}"
    assert orjson.loads((out / ".prepgen" / "manifest.json").read_bytes()) == manifest


def test_a_build_that_dies_half_way_does_not_poison_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files replaced by a build that failed are not trusted to match the old manifest afterwards."""
    real_write = Writer.write
    calls = 0
    die_at = 0

    def dying_write(self: Writer, path: str, data: bytes) -> None:
        nonlocal calls
        calls += 1
        if calls == die_at:
            raise BuildError("simulated failure half way through the build")
        real_write(self, path, data)

    monkeypatch.setattr(Writer, "write", dying_write)
    # How many files the second corte writes over the first, so the failure lands half way through it.
    counted = tmp_path / "counted"
    assert run("-q", "build", str(CAMPECHE[1]), "-o", str(counted)).exit_code == 0
    calls = 0
    assert run("-q", "build", str(CAMPECHE[2]), "-o", str(counted)).exit_code == 0
    half = calls // 2
    assert half > 100
    out = tmp_path / "out"
    assert run("-q", "build", str(CAMPECHE[1]), "-o", str(out)).exit_code == 0
    die_at, calls = half, 0
    result = run("-q", "build", str(CAMPECHE[2]), "-o", str(out))
    assert result.exit_code == 1 and "simulated failure" in result.output
    monkeypatch.setattr(Writer, "write", real_write)
    assert (out / ".prepgen" / "incompleto").exists()
    assert run("-q", "build", str(CAMPECHE[1]), "-o", str(out)).exit_code == 0
    files = orjson.loads((out / ".prepgen" / "manifest.json").read_bytes())["files"]
    wrong = [p for p, e in files.items() if hashlib.sha256((out / p).read_bytes()).hexdigest() != e["sha256"]]
    assert wrong == [] and not (out / ".prepgen" / "incompleto").exists()


def test_validate_reports_without_writing(tmp_path: Path) -> None:
    result = run("validate", str(CAMPECHE[-1]))
    assert result.exit_code == 0, result.output
    assert "ACTAS_CONTABILIZADAS publicado 1060 ≠ recuento 1056" in result.output
    result = run("validate", "--json", str(CAMPECHE[-1]))
    report = orjson.loads(result.output)
    assert report["corte"] == "2021-06-07T20:00:00-05:00"
    assert list(tmp_path.iterdir()) == []
    bad = tmp_path / "bad.zip"
    BAD_INPUTS["abc"](CAMPECHE[-1], bad)
    result = CliRunner().invoke(main, ["validate", str(bad)])
    assert result.exit_code == 1 and "'abc'" in result.output


def test_serve_previews_a_build(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("-q", "build", str(CAMPECHE[0]), "-o", str(out)).exit_code == 0
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "prepgen.cli", "serve", str(out), "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/gob/", timeout=2) as r:
                    body = r.read().decode()
                    assert r.headers["Cache-Control"].startswith("public, max-age=10")
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "serve did not answer"
                time.sleep(0.2)
        assert "Gubernatura" in body
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/main.json", timeout=2) as r:
            assert r.headers["Cache-Control"] == "no-cache"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # also closes the pipe (ResourceWarning otherwise)


def test_every_command_has_help_with_an_example() -> None:
    for name, cmd in main.commands.items():
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0, name
        assert "Example" in result.output and f"prepgen {name}" in result.output, name
        assert cmd.help


def _golden(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("PREPGEN_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
    assert path.exists(), f"golden file {name} missing: run with PREPGEN_UPDATE_GOLDEN=1 and review it"
    assert data == path.read_bytes(), f"{name} differs from the reviewed golden file"


def test_golden_output_campeche_2240(built) -> None:
    """The first corte of the night: the election JSON, one district, its section chunk, one district's candidates."""
    root = built[CAMPECHE[0].name]
    m = orjson.loads((root / "json" / "main.json").read_bytes())
    _golden("campeche_2240_main.json", orjson.dumps(m, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    gob = orjson.loads((root / m["elecciones"][0]["json"].lstrip("/")).read_bytes())
    _golden("campeche_2240_gob.json", orjson.dumps(gob, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    d = next(a for a in gob["ambitos"] if a["id"] == "002")
    units = orjson.loads((root / d["json"].lstrip("/")).read_bytes())
    assert set(units) == {"eleccion", "unidades"} and len(units["unidades"]) > 1  # units come in bundles
    unit = units["unidades"]["002"]
    _golden("campeche_2240_gob_distrito_002.json", orjson.dumps(unit, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    chunk = orjson.loads((root / unit["ambitos"][0]["json"].lstrip("/")).read_bytes())
    assert set(chunk) == {"eleccion", "secciones"}
    # A chunk holds the changed sections of several units (render.CHUNK_TARGET): the golden keeps this one's.
    mine = {sid: sec for sid, sec in chunk["secciones"].items() if sec["ambito"]["id"] == "002"}
    assert set(mine) == {a["id"] for a in unit["ambitos"]} and len(mine) < len(chunk["secciones"])
    _golden("campeche_2240_gob_secciones_002.json", orjson.dumps(mine, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    dip = next(x for x in m["elecciones"] if x["id"] == "DIP_LOC")
    dip = orjson.loads((root / dip["json"].lstrip("/")).read_bytes())
    links = {c["json"] for c in dip["candidaturas_paginas"] if c["clave"].startswith("002-")}
    assert len(links) == 1  # the district's contenders are packed together here (render.CHUNK_TARGET)
    cands = orjson.loads((root / links.pop().lstrip("/")).read_bytes())
    assert set(cands) == {"eleccion", "candidaturas"} and cands["eleccion"] == "DIP_LOC"
    mine = {k: c for k, c in cands["candidaturas"].items() if c["ambito"]["id"] == "002"}
    assert len(mine) < len(cands["candidaturas"]) and all(k.startswith("002-") for k in mine)
    _golden("campeche_2240_dip_loc_candidaturas_002.json", orjson.dumps(mine, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))


def test_downloads_embeds_and_feed(built) -> None:
    import csv
    import io
    import xml.etree.ElementTree as ET

    root = built[CAMPECHE[-1].name]
    m = orjson.loads((root / "json" / "main.json").read_bytes())
    gob = orjson.loads((root / m["elecciones"][0]["json"].lstrip("/")).read_bytes())
    # CSV: the corte is in the file name and the per-unit figures add up to the page's recount.
    csv_url = gob["descargas"]["csv"]
    assert csv_url == "/datos/gob_20210607_2000.csv"
    text = (root / csv_url.lstrip("/")).read_bytes().decode("utf-8-sig")
    assert text.startswith("# Gubernatura · corte 07/06/2021 20:00 (UTC-5)")
    rows = list(csv.DictReader(io.StringIO(text.split("\r\n", 1)[1])))
    assert len(rows) == len(gob["ambitos"])
    for c in gob["candidaturas"]:
        assert sum(int(r[c["codigo"]]) for r in rows) == c["votos"], c["codigo"]
    assert sum(int(r["TOTAL_VOTOS"]) for r in rows) == gob["recuento"]["total_votos"]
    # Embed: light, stamped, framable page per election; the index prints the iframe code.
    embed = (root / "embed" / "gob" / "index.html").read_text()
    assert "07/06/2021 20:00 (UTC-5)" in embed and "LAYDA ELENA SANSORES SAN ROMAN" in embed
    code = re.search(r"<textarea[^>]*>(.*?)</textarea>", (root / "embed" / "index.html").read_text(), re.S)[1]
    assert re.search(r'(<|&lt;)iframe src="?/embed/gob/', code), code
    # Feed: valid Atom whose entry names the corte.
    feed = ET.fromstring((root / "feed.xml").read_bytes())
    ns = {"a": "http://www.w3.org/2005/Atom"}
    entry = feed.find("a:entry", ns)
    assert "07/06/2021 20:00 (UTC-5)" in entry.find("a:title", ns).text
    assert entry.find("a:updated", ns).text == "2021-06-07T20:00:00-05:00"
