"""The compiled pages (prepgen.fastpage) must print exactly what jinja2 + minify-html prints."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from paths import CAMPECHE, CAMPECHE_ZERO
from variants import rewrite_package

import prepgen.render as render
from prepgen.fastpage import TEMPLATES_SHA256, template_names, templates_digest
from prepgen.model import build_elections
from prepgen.reader import read_package
from prepgen.render import Renderer, SiteOptions, make_env
from prepgen.simulate import simulate


@pytest.mark.parametrize("kind", ["seccion", "ambito", "candidatura"])
def test_fast_path_matches_the_bundled_templates(kind: str) -> None:
    env = make_env(None)
    sources = [env.loader.get_source(env, n)[0] for n in template_names(kind)]
    assert templates_digest(sources) == TEMPLATES_SHA256[kind], (
        f"themes/zocalo {'/'.join(template_names(kind))} changed: update prepgen/fastpage.py to print the new "
        f"markup, then set TEMPLATES_SHA256[{kind!r}] to the new digest (the tests below compare both paths "
        "page by page)"
    )


def _reference(self: Renderer, name: str, var: str, full: Any, fast: Any, **ctx: Any) -> bytes:
    return self._page(name, **ctx, **{var: full()})


def _render(pkg: Path, fast: bool, monkeypatch: pytest.MonkeyPatch, **opts: object) -> tuple[dict[str, bytes], int]:
    files, r = _renderer(pkg, fast, monkeypatch, **opts)
    return files, r.fast_pages


def _renderer(pkg: Path, fast: bool, monkeypatch: pytest.MonkeyPatch, **opts: object) -> tuple[dict[str, bytes], Any]:
    with monkeypatch.context() as mp:
        if not fast:
            mp.setattr(render, "TEMPLATES_SHA256", {})
            mp.setattr(Renderer, "_spliced", _reference)
        package = read_package(pkg)
        r = Renderer(build_elections(package), package.corte, SiteOptions(**opts))  # type: ignore[arg-type]
        files = dict(r.render())
    return files, r


def _shells(files: dict[str, bytes]) -> int:
    """Unit and candidate pages: every one has a shell to print."""
    return sum(1 for p in files if p.endswith("/index.html") and p.count("/") == 3 and "/seccion/" not in p)


@pytest.mark.parametrize("pkg", [CAMPECHE[-1], CAMPECHE_ZERO], ids=lambda p: p.name)
@pytest.mark.parametrize(
    "opts",
    [{}, {"aviso": "El PREP se reanudará en breve", "final": True, "final_texto": "Último corte del PREP"},
     {"final": True}],
    ids=["plain", "aviso-final", "final-sin-texto"],
)
def test_fast_pages_equal_jinja(pkg: Path, opts: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    fast, r = _renderer(pkg, True, monkeypatch, **opts)
    slow, r_slow = _renderer(pkg, False, monkeypatch, **opts)
    assert r_slow.fast_pages == r_slow.fast_shells == 0
    assert r.fast_pages == sum(1 for p in fast if "/seccion/" in p)
    assert r.fast_shells == _shells(fast) > 0
    assert fast.keys() == slow.keys()
    for path in fast:
        assert fast[path] == slow[path], path


def test_fast_pages_equal_jinja_on_a_national_simulacro(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # PRES/SEN/DIP_FED layout, multi-entity unit ids, and candidate names with quotes of both kinds.
    (pkg,) = simulate(tmp_path, "nacional-mini", 1, 5)
    fast, r = _renderer(pkg, True, monkeypatch)
    slow, _ = _render(pkg, False, monkeypatch)
    assert r.fast_pages == sum(1 for p in fast if "/seccion/" in p) > 500
    # Names with quotes in a candidate's title go through jinja2; every other shell is printed.
    assert _shells(fast) >= r.fast_shells > 0.9 * _shells(fast)
    assert fast == slow


def test_values_that_are_not_plain_fall_back_to_jinja(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Markup, quotes and doubled spaces in names, marks and observaciones: minify-html re-encodes or
    # collapses them, so those pages must take the reference path and still come out identical.
    def edit(name: str, data: bytes) -> bytes:
        text = data.decode()
        if name.endswith("CAMP_GOB_CANDIDATURA_2021.csv"):
            text = text.replace("ELISEO FERNANDEZ MONTUFAR", 'ELISEO "<b>" O\'HARA  & CO')
        if name.endswith("CAMP_GOB_2021.csv"):
            lines = text.splitlines()
            assert ",TODOS ILEGIBLES O SIN DATO," in lines[8]
            lines[8] = lines[8].replace(",TODOS ILEGIBLES O SIN DATO,", ",<i>TODOS  ILEGIBLES</i> & 'x',")
            text = "\n".join(lines)
        return text.encode()

    pkg = rewrite_package(CAMPECHE[-1], tmp_path / "20210607_2000_PREP_CAMP.zip", edit)
    fast, _ = _render(pkg, True, monkeypatch, titulo="Resultados \"PREP\" <2021>")
    slow, _ = _render(pkg, False, monkeypatch, titulo="Resultados \"PREP\" <2021>")
    assert fast == slow
    fast, n = _render(pkg, True, monkeypatch, base_path="/prep 2021/")
    slow, _ = _render(pkg, False, monkeypatch, base_path="/prep 2021/")
    assert fast == slow
    # An aviso with markup: section pages (no banner) stay fast, every unit and candidate shell falls back.
    aviso = {"aviso": "<b>Aviso</b>  & 'más'", "final": True, "final_texto": 'Final "<i>"'}
    fast, r = _renderer(pkg, True, monkeypatch, **aviso)
    slow, _ = _render(pkg, False, monkeypatch, **aviso)
    assert fast == slow
    assert r.fast_shells == 0 and r.fast_pages > 0
    # The candidate with markup in its name falls back alone.
    fast, r = _renderer(pkg, True, monkeypatch)
    assert 0 < r.fast_shells < _shells(fast)


def test_unit_and_candidate_lists_are_spliced() -> None:
    """Unit and candidate pages print their long list already minified (the tests above compare bytes)."""
    package = read_package(CAMPECHE[-1])
    r = Renderer(build_elections(package), package.corte, SiteOptions(), workers=1)
    files = dict(r.render())
    assert r._splice_ok == {"ambito": True, "candidatura": True}
    assert render.SPLICE_TOKEN.encode() not in b"".join(files.values())


def test_a_theme_that_moves_the_list_turns_the_splice_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # In an attribute minify-html keeps the list quoted: splicing the unquoted fast form there would differ,
    # so the first page's check must switch the splice off and every page must equal the reference path.
    theme = tmp_path / "tema" / "templates"
    theme.mkdir(parents=True)
    (theme / "ambito.html").write_text(
        '{% extends "zocalo:ambito.html" %}{% block content %}<p title="{{ lista_secciones }}">x</p>{% endblock %}'
    )
    package = read_package(CAMPECHE[-1])
    r = Renderer(build_elections(package), package.corte, SiteOptions(tema=tmp_path / "tema"), workers=1)
    files = dict(r.render())
    assert r._splice_ok == {"ambito": False, "candidatura": True}
    with monkeypatch.context() as mp:
        mp.setattr(Renderer, "_spliced", _reference)
        ref = Renderer(build_elections(package), package.corte, SiteOptions(tema=tmp_path / "tema"), workers=1)
        assert files == dict(ref.render())
    assert any(b'<p title="<li>' in v for v in files.values())


class _Probe(Renderer):
    def _probe(self, e: Any, key: int) -> Any:
        yield from ()
        return (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT))


def test_render_workers_die_on_sigterm_under_a_handler_that_does_not() -> None:
    """Pool.terminate() ends workers with SIGTERM: a worker that inherited the watcher's "stop later"
    handler survived it, and the watcher waited for it forever."""
    package = read_package(CAMPECHE[-1])
    r = _Probe(build_elections(package), package.corte, SiteOptions(), workers=2)
    # Without the fix the pool's exit hangs: kill its workers after a while so the test fails instead.
    watchdog = threading.Timer(60, lambda: [os.kill(p.pid, signal.SIGKILL) for p in multiprocessing.active_children()])
    previous = signal.signal(signal.SIGTERM, lambda *_: None)  # as prepgen watch installs
    watchdog.start()
    try:
        gen = r._map(r.elections[0], "_probe", list(range(40)))
        while True:
            try:
                next(gen)
            except StopIteration as stop:
                seen = stop.value
                break
        r._close_pool()  # as render() does at the end of a build: terminate() its workers
    finally:
        watchdog.cancel()
        signal.signal(signal.SIGTERM, previous)
    assert seen == [(signal.SIG_DFL, signal.SIG_IGN)] * 40
