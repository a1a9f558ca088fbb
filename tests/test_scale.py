"""Simulacros through the real pipeline: reader, incremental builds equal to cold builds, the CLI."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from prepgen.cli import main
from prepgen.model import build_elections
from prepgen.reader import read_package
from prepgen.simulate import simulate


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

    def expand(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {
                k: _tree(root, v, stamps, seen) if k == "json" and isinstance(v, str) else expand(v)
                for k, v in obj.items()
            }
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
