"""Rendering: the election model → HTML pages (jinja2 + minify-html) and public JSON (orjson).

Output is yielded as ``(path, bytes)`` in dependency order: content-addressed JSON children before the
parents that name their paths, and ``json/main.json`` last.

Stamps (DECISIONS "Stamp and progress per page"): pages above section level carry the newest corte;
a section page carries the corte in which its figures last changed (tracked in ``state``), so an
unchanged section renders to identical bytes and is not re-uploaded.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import jinja2
import minify_html
import orjson
from markupsafe import Markup, escape

from . import __version__, extras
from .fastpage import TEMPLATES_SHA256, FastPages, NotPlain, attr, template_names, templates_digest, text
from .headers import CSP
from .model import Cifras, Contendiente, Eleccion, Resultado, Seccion, Unidad, pct
from .reader import Acta, Corte

T = TypeVar("T")
_ACTAS = attrgetter("actas")

THEMES_DIR = Path(__file__).resolve().parent.parent / "themes"
DEFAULT_THEME = THEMES_DIR / "zocalo"

LEGEND = (
    "Los resultados presentados tienen un carácter preliminar e informativo; no son definitivos "
    "ni tienen efectos jurídicos."
)


def theme_dirs(override: str | Path | None) -> list[Path]:
    dirs = []
    if override:
        dirs.append(Path(override))
    dirs.append(_bundled_theme())
    return dirs


def _bundled_theme() -> Path:
    # Installed (non-editable) copies carry the theme as package data next to the module.
    packaged = Path(__file__).resolve().parent / "themes" / "zocalo"
    return packaged if packaged.is_dir() else DEFAULT_THEME


def make_env(override: str | Path | None = None) -> jinja2.Environment:
    """Ordered loader (override first, zocalo last) + ``zocalo:`` prefix so overrides can extend it."""
    dirs = theme_dirs(override)
    zocalo = jinja2.FileSystemLoader(str(dirs[-1] / "templates"))
    loader = jinja2.ChoiceLoader(
        [
            jinja2.PrefixLoader({"zocalo": zocalo}, delimiter=":"),
            jinja2.FileSystemLoader([str(d / "templates") for d in dirs]),
        ]
    )
    env = jinja2.Environment(loader=loader, autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["n"] = fmt_int
    env.filters["pct"] = fmt_pct
    env.filters["pctj"] = fmt_pct_json
    env.filters["bar"] = bar_width
    env.globals["pct_of"] = pct
    return env


# Stands in for a page's long list while the rest is minified (plain text minify-html leaves alone).
SPLICE_TOKEN = "prepgen-lista-c9f1e7"
# A corte's changed sections go into chunks of about this many bytes (see Renderer._units), and unit
# and candidate objects into bundles of about as many (_units, _candidates): fewer objects a corte, and
# still a small download for whoever follows one section's, unit's or candidate's link. Sizes estimated from a
# section's JSON without its actas and one acta's (~1.6 KB and ~0.6-0.9 KB in the real packages), ...
CHUNK_TARGET = 256 * 1024
UNIT_GROUP_ACTAS = 8_000  # units rendered together, whose changed sections share chunks (Renderer._units)
SECTION_BYTES = 1_600
ACTA_BYTES = 700
# ... and a candidate's object without its rows and one row (a unit, or a section of its district).
CANDIDATE_BYTES = 600
CANDIDATE_ROW_BYTES = 110
# ... and a unit's object without its section links, and one link.
UNIT_BYTES = 2_000
LINK_BYTES = 130


def fmt_int(v: int | None) -> str:
    """es-MX: comma thousands separator."""
    return "—" if v is None else f"{v:,}"


def fmt_pct(v: Decimal | None) -> str:
    return "—" if v is None else f"{v:.4f} %"


def fmt_pct_json(v: float | Decimal | None) -> str:
    # JSON carries 4-decimal values (56.352 == 56.3520); printing with 4 decimals restores the digits.
    return "—" if v is None else f"{v:.4f} %"


def bar_width(v: Decimal | None) -> str:
    return "0" if v is None else f"{v:.4f}"


def _num(v: Decimal | None) -> float | None:
    # A 4-decimal Decimal → the JSON number with the same decimal value (56.3520 → 56.352).
    return None if v is None else float(v)


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class SiteOptions:
    base_path: str = "/"
    titulo: str = "Resultados preliminares"
    institucion: str = "el Instituto Electoral"
    tema: str | Path | None = None
    aviso: str | None = None
    final: bool = False
    final_texto: str = ""
    base_url: str = ""  # absolute origin for the feed and the embed code, e.g. https://example.mx


@dataclass
class SectionState:
    """Per-section memory across cortes: figures hash → corte in which they last changed."""

    entries: dict[str, list[str]] = field(default_factory=dict)  # key -> [hash, corte_id, corte_iso, corte_texto]
    fingerprint: str = ""

    @classmethod
    def load(cls, path: Path) -> SectionState:
        if not path.exists():
            return cls()
        try:
            raw = orjson.loads(path.read_bytes())
            return cls(entries=raw.get("secciones", {}), fingerprint=raw.get("fingerprint", ""))
        except (orjson.JSONDecodeError, AttributeError):
            return cls()  # an unreadable state only costs a full re-render

    def dump(self) -> bytes:
        return dumps({"fingerprint": self.fingerprint, "secciones": self.entries})


class Renderer:
    """Turns elections into files. One instance per build."""

    def __init__(
        self,
        elections: list[Eleccion],
        corte: Corte,
        options: SiteOptions,
        state: SectionState | None = None,
        reuse: Callable[[str], bool] | None = None,
        can_reuse: Callable[[str], bool] | None = None,
        workers: int | None = None,
        memo: RenderMemo | None = None,
        direct: Callable[[str, bytes], tuple[str, int, bool]] | None = None,
        keep_many: Callable[[list[str]], None] | None = None,
        previous: dict[str, Any] | None = None,
    ) -> None:
        self.elections = elections
        self.memo = memo
        # Forked workers write their files themselves with this (the Writer's put) and send back only what
        # the Writer records, so the file system work runs on every core; without it they send the bytes.
        self.direct = direct
        self.corte = corte
        self.o = options
        # The watcher's memo keeps one environment corte after corte: its templates are compiled once, not
        # again in the parent and in every forked worker each corte (auto_reload still notices an edit).
        self.env = memo.environment(options.tema) if memo is not None else make_env(options.tema)
        self.base = options.base_path
        self.prev = state or SectionState()
        # ``previous``: the files of the build this one replaces (the Writer's). When they and the state are
        # the very ones the memo was recorded with, a section the model did not touch keeps its page, chunk
        # and link as the memo has them, unlooked at (see _unchanged). Trusted by this build only: a
        # build that fails half way leaves the memo untrusted until the next one records it.
        self._trusted = memo is not None and memo.trusts(self.prev, previous)
        if memo is not None:
            memo.distrust()
        self.reuse = reuse or (lambda path: False)
        # Units only ask whether a file can be kept (forked workers cannot claim it); the parent then claims
        # what they kept in bulk with keep_many() (by default reuse() on each, which must not fail).
        self.can_reuse = can_reuse or (lambda path: False)
        self.keep_many = keep_many or self._keep_each
        self._kept_chunks: set[str] = set()  # a chunk spans units: several of them may keep it (see _settle)
        self.workers = workers if workers is not None else default_workers(elections)
        self._workers_given = workers is not None
        # Starts as the previous state: a kept section's entry is its previous one, so only the sections
        # rendered set theirs, and those that are gone are dropped at the end (see render()).
        self.state = SectionState(entries=dict(self.prev.entries))
        self.static: dict[str, str] = {}
        self.skipped: list[str] = []  # section pages kept from the previous build (identical bytes)
        self._side = _Side()
        if memo is not None:
            memo.printed_under(self.base)
        self._tpl = {
            n: self.env.get_template(n + ".html")
            for n in ("index", "eleccion", "ambito", "seccion", "candidatura", "embed", "embed_index")
        }
        self.state.fingerprint = self._fingerprint()
        self.fast_pages = 0  # section pages written by fastpage (the rest went through jinja2 + minify-html)
        self.fast_shells = 0  # unit and candidate pages whose shell fastpage wrote (see _spliced)
        self._pool: Any = None  # the render processes of this build (see _worker_pool)
        self._unsettled: list[tuple[Eleccion, dict[str, Any], _Side]] = []  # see _map
        self._planned: dict[tuple[int, str], tuple[list[Any], int]] = {}  # see _plan
        self._results: Iterator[_WorkOut] = iter(())
        self._started = 0  # elections handed to workers by start(), before the rest were modelled
        self._static_files_out: list[tuple[str, bytes]] | None = None  # what start() took from _static_files
        # The page kinds fastpage prints: those whose templates are still the ones it was written from.
        self._fast_kinds = {
            kind
            for kind, digest in TEMPLATES_SHA256.items()
            if templates_digest([self.env.loader.get_source(self.env, n)[0] for n in template_names(kind)])  # type: ignore[union-attr]
            == digest
        }
        self._fast: FastPages | None = None
        self._splice_ok: dict[str, bool] = {}  # see _spliced

    # --- helpers -----------------------------------------------------------------------------------
    def _keep_each(self, paths: list[str]) -> None:
        for path in paths:
            if not self.reuse(path):
                raise RuntimeError(f"{path}: a file found reusable could not be kept")

    def url(self, path: str) -> str:
        return self.base + path.lstrip("/")

    def _fingerprint(self) -> str:
        # Anything that changes every page's bytes (theme files, base path, version) forces a re-render.
        h = hashlib.sha256(f"{__version__}|{self.base}|{self.o.titulo}|{self.o.institucion}".encode())
        for d in theme_dirs(self.o.tema):
            for p in sorted(d.rglob("*")):
                if p.is_file():
                    h.update(str(p.relative_to(d)).encode() + p.read_bytes())
        return h.hexdigest()

    def _page(self, name: str, **ctx: Any) -> bytes:
        html = self._tpl[name].render(
            site=self.o,
            base=self.base,
            static=self.static,
            csp=CSP,
            legend=LEGEND,
            url=self.url,
            **ctx,
        )
        return minify_html.minify(html, minify_css=False, minify_js=False, keep_closing_tags=True).encode()

    def _spliced(self, name: str, var: str, full: Callable[[], Markup], fast: Callable[[], str], **ctx: Any) -> bytes:
        """A page whose long list (``var``) is printed already minified and spliced into the minified rest.

        Unit and candidate pages carry ~240-entry lists and are all rebuilt every corte; minify-html
        re-parsing those lists was most of their cost. The rest of the page goes through jinja2 +
        minify-html with a placeholder where the list goes. ``fast`` raises NotPlain for a value it cannot
        print as minify-html would; the first page of each kind in each process is also built the
        reference way and compared, so an overriding theme that puts the list in another context (or a
        minify-html that prints differently) turns the splice off instead of changing any byte.
        """
        ok = self._splice_ok.get(name)
        if ok is not False:
            try:
                items = fast()
            except NotPlain:
                items = None
            if items is not None:
                shell = self._fast_shell(name, ctx)
                if shell is None:
                    shell = self._page(name, **ctx, **{var: Markup(SPLICE_TOKEN)})
                if shell.count(SPLICE_TOKEN.encode()) == 1:
                    page = shell.replace(SPLICE_TOKEN.encode(), items.encode())
                    if ok:
                        return page
                    reference = self._page(name, **ctx, **{var: full()})
                    self._splice_ok[name] = page == reference
                    return reference
                self._splice_ok[name] = False
        return self._page(name, **ctx, **{var: full()})

    def _printer(self) -> FastPages | None:
        # Built on first use: it needs the content-addressed static paths, known once they are yielded.
        if self._fast is None and self._fast_kinds:
            o = self.o
            try:
                self._fast = FastPages(
                    base=self.base, titulo=o.titulo, institucion=o.institucion, static=self.static,
                    csp=CSP, legend=LEGEND, url=self.url, aviso=o.aviso, final=o.final, final_texto=o.final_texto,
                )
            except (NotPlain, KeyError):
                self._fast_kinds = set()  # e.g. a title with quotes: every page through jinja2
        return self._fast

    def _fast_section(self) -> FastPages | None:
        return self._printer() if "seccion" in self._fast_kinds else None

    def _fast_shell(self, name: str, ctx: dict[str, Any]) -> bytes | None:
        """The shell of a unit or candidate page from fastpage, with the splice token where its list goes
        (None: through jinja2 + minify-html)."""
        fast = self._printer() if name in self._fast_kinds else None
        if fast is None:
            return None
        try:
            shell = fast.shell(name, ctx, SPLICE_TOKEN)
        except NotPlain:
            return None
        self.fast_shells += 1
        return shell

    def _map(self, e: Eleccion, method: str, keys: list[Any]) -> Iterator[tuple[str, bytes | Written]]:
        """Run ``method(e, key)`` for every key, yielding its files in key order; return its results.

        With more than one worker the keys were handed to the forked processes beforehand (see _plan; the
        model and this renderer are inherited, not pickled); each sends back its files, its section-state
        entries and the pages it would keep, and the parent yields them in the same order as a sequential
        run, so the output and the Writer's view are identical.
        """
        results: list[Any] = []
        if self.workers <= 1 or len(keys) < 2 * self.workers:
            for key in keys:
                results.append((yield from getattr(self, method)(e, key)))
                side, self._side = self._side, _Side()
                self._settle(e, side)
            return results
        ei = self.elections.index(e)
        planned = self._planned.get((ei, method))
        if planned is not None and planned[0] is keys:
            outs: Iterator[_WorkOut] = (next(self._results) for _ in range(planned[1]))
        else:  # keys _plan did not hand out (a direct call): queued after whatever it did
            outs = self._worker_pool().imap(_work, [(ei, method, chunk) for chunk in _chunks(keys, self.workers)])
        for out in outs:
            for files, result in out.results:
                yield from files
                results.append(result)
            self.fast_pages += out.fast_pages
            self.fast_shells += out.fast_shells
            # Applied once the workers are gone (render() closes the pool): while they live, the parent's
            # pages are shared copy-on-write with them, and updating the state, the memo and the Writer's
            # files in place here faulted and copied them, on the cores the workers render on.
            self._unsettled.append((e, out.state, out.side))
        return results

    def _keys(self, e: Eleccion, method: str) -> list[Any]:
        """What _map runs ``method`` over for ``e``: its runs of units, or its candidates in bundles."""
        planned = self._planned.get((self.elections.index(e), method))
        if planned is not None:
            return planned[0]
        return self._unit_groups(e) if method == "_units" else self._candidate_packs(e)

    def _plan(self) -> None:
        """Hand the workers every election's units and candidates at once, in the order _map takes them.

        One map after another, each waited for its slowest chunk with the other worker idle, and the
        parent's work between two maps (an election's links, JSON and page, the next election's runs)
        ran with both workers idle. Submitted up front, the workers go on from one map to the next while
        the parent takes the results in the same order as before: the same files, the same bytes.
        Elections start() already handed out are not planned again.
        """
        if self.workers <= 1:
            return
        if self._pool is not None:
            # start()'s pool: _map has taken all its results by now, so its workers are done. They saw only
            # the elections modelled then; the rest need a fork that sees them. Joined first: no thread of
            # that pool is alive when the next one forks.
            self._pool.close()
            self._pool.join()
            self._pool = None
        jobs: list[tuple[int, str, list[Any]]] = []
        for ei, e in enumerate(self.elections):
            if ei < self._started:
                continue
            for method in ("_units", "_candidate_bundle"):
                keys = self._keys(e, method)
                if len(keys) < 2 * self.workers:
                    continue  # _map runs these in the parent
                chunks = _chunks(keys, self.workers)
                self._planned[(ei, method)] = (keys, len(chunks))
                jobs.extend((ei, method, chunk) for chunk in chunks)
        if jobs:
            self._results = self._worker_pool().imap(_work, jobs)

    def _worker_pool(self) -> Any:
        """The render processes, forked once per build (twice when start() ran; render() ends them).

        Forking a ~3 GB parent costs ~0.3 s of page-table copying a time, and every new worker takes the
        copy-on-write faults on the model again: six pools a national build (units and candidates of three
        elections) paid that six times. The workers see this renderer as it was at the fork: the models,
        the static paths and the section page printer are all in place by then; what the workers send back
        for the memo, the section state and the Writer is applied after they are gone (see _map).
        """
        if self._pool is None:
            self._printer()  # built once here so every worker inherits it
            global _FORKED
            _FORKED = self
            try:
                # Pool() forks its workers before returning: after that they hold their own reference.
                self._pool = multiprocessing.get_context("fork").Pool(self.workers, initializer=_worker_signals)
            finally:
                _FORKED = None
        return self._pool

    def _close_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()  # idle by now, or the build failed: either way nothing is left to wait for
            pool.join()

    def _settle(self, e: Eleccion, side: _Side) -> None:
        """Claim in bulk what units or candidates kept, and take their printed pieces into the memo."""
        kept = [c for c in dict.fromkeys(side.kept_files) if c not in self._kept_chunks]
        self._kept_chunks.update(kept)
        pages = side.kept_pages
        if side.bulk:  # the pages of the sections units kept unlooked at (see _unchanged)
            prefix = f"{e.slug}/seccion/"
            pages = pages + [
                f"{prefix}{sid}/index.html"
                for uid, changed in side.bulk
                for sid in e.unidades[uid].secciones
                if sid not in changed
            ]
        if kept or pages:
            self.keep_many(kept + pages)
        self.skipped.extend(pages)
        memo = self.memo
        if memo is None:
            return
        # Updated in place where only a few entries changed: nothing else holds the memo's own containers
        # (units and candidates copy what they take from it), and copying ~900 × 240 entries every corte
        # was most of this method.
        for kind, key, value in side.memo:
            if kind == "links":
                secciones = e.unidades[key[1]].secciones
                links = memo.links.setdefault(key, {})
                links.update(value)
                if len(links) != len(secciones):
                    memo.links[key] = {sid: links[sid] for sid in secciones}
            elif kind == "list":
                memo.lists[key] = (tuple(e.unidades[key[1]].secciones), value)
            else:
                c = e.contendientes[key[1]]
                ckey = (e.slug, c.clave)
                if isinstance(value, tuple):
                    keys, cifras, _ = _candidate_source(e, c)
                    memo.rows[ckey] = CandidateRows(c.columnas, keys, cifras, *value)
                    continue
                old = memo.rows[ckey]  # only the rows that changed; the rest point to the same figures
                for i, row, frag in value:
                    old.rows[i], old.frags[i], old.cifras[i] = row, frag, _row_cifras(e, c, old.keys[i])

    def _json_path(self, slug: str, data: bytes) -> str:
        return f"json/{slug}/{sha(data)[:20]}.json"

    # --- figures -----------------------------------------------------------------------------------
    def _actas(self, c: Cifras) -> dict[str, Any]:
        return {
            "esperadas": c.esperadas,
            "capturadas": c.capturadas,
            "contabilizadas": c.contabilizadas,
            "porcentaje_capturadas": _num(pct(c.capturadas, c.esperadas)),
            "porcentaje_contabilizadas": _num(pct(c.contabilizadas, c.esperadas)),
        }

    def _candidaturas(self, e: Eleccion, res: list[Resultado]) -> list[dict[str, Any]]:
        return [
            {
                "clave": r.contendiente.clave,
                "codigo": r.contendiente.codigo,
                "nombre": r.contendiente.nombre,
                "partidos": list(r.contendiente.partidos),
                "votos": r.votos,
                "porcentaje": _num(r.porcentaje),
                "html": self.url(f"{e.slug}/candidatura/{r.contendiente.clave}/"),
            }
            for r in res
        ]

    def _figures(self, e: Eleccion, c: Cifras, res: list[Resultado]) -> dict[str, Any]:
        return {
            "actas": self._actas(c),
            "lista_nominal": c.lista_nominal,
            "participacion": _num(e.participacion(c)),
            "participacion_formula": e.participacion_formula,
            "candidaturas": self._candidaturas(e, res),
            "no_registrados": c.no_registrados,
            "nulos": c.nulos,
            "total_votos": c.total_votos,
        }

    def _acta_json(self, e: Eleccion, a: Acta) -> dict[str, Any]:
        return {
            "clave_casilla": a.clave_casilla,
            "clave_acta": a.clave_acta,
            "tipo_casilla": a.tipo_casilla,
            "id_casilla": a.id_casilla,
            "ext_contigua": a.ext_contigua,
            "votos": dict(zip(e.data.vote_columns, a.votos, strict=True)),
            "marcas": a.marcas,
            "no_registrados": a.no_registrados,
            "nulos": a.nulos,
            "total_votos_asentado": a.total_asentado,
            "total_votos_calculado": a.total_calculado,
            "lista_nominal": a.lista_nominal,
            "contabilizada": a.contabilizada == "1",
            "estado": acta_estado(a),
            "observaciones": a.observaciones,
            "sha256": a.sha,
            "fecha_hora_acopio": a.acopio,
            "fecha_hora_captura": a.captura,
        }

    def _acta_row(self, a: Acta, contendientes: list) -> dict[str, Any]:
        """One casilla's acta in contender terms (raw per-column values are in the JSON bundle)."""
        votos = []
        cols = self._cols
        for c in contendientes:
            cells = [a.votos[i] for i in c.columnas]
            if cells and all(v is None for v in cells):
                votos.append(a.marcas.get(cols[c.columnas[0]]) or "—")
            else:
                votos.append(fmt_int(sum(v for v in cells if v)))

        def cell(v: int | None, name: str) -> str:
            return fmt_int(v) if v is not None else (a.marcas.get(name) or "—")

        return {
            "clave": a.clave_casilla,
            "tipo": a.tipo_casilla,
            "id_casilla": a.id_casilla,
            "ext": a.ext_contigua,
            "votos": votos,
            "nr": cell(a.no_registrados, "NO_REGISTRADOS"),
            "nulos": cell(a.nulos, "NULOS"),
            "total": cell(a.total_calculado, "TOTAL_VOTOS_CALCULADO"),
            "ln": cell(a.lista_nominal, "LISTA_NOMINAL"),
            "estado": acta_estado(a),
            "obs": "" if a.observaciones in ("", "-") else a.observaciones,
            "sha": a.sha if a.sha not in ("", "-") else "",
        }

    # --- pages -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Fork workers on the elections modelled so far and hand them their units and candidates now.

        A cold build calls this once the first election is modelled: its pages render on the core the
        parent leaves idle while it reads and models the others (~8 s nationally). Those elections are
        appended to ``self.elections`` meanwhile; render() hands them to a second pool, forked once the
        first is done (see _plan). Nothing is yielded or recorded until render() runs.
        """
        if self.workers <= 1 or self._started or self._pool is not None:
            return
        self._static_files_out = list(self._static_files())  # the pages link the static paths: known before the fork
        self._plan()
        self._started = len(self.elections)

    def close(self) -> None:
        """End the workers start() forked, for a build that stops before render() (its package failed)."""
        self._close_pool()

    def render(self) -> Iterator[tuple[str, bytes | Written]]:
        yield from self._static_files_out if self._static_files_out is not None else self._static_files()
        if not self._workers_given and not self._started:
            # Made before the other elections were modelled (see start()), it counted the first one's sections.
            self.workers = default_workers(self.elections)
        summaries = []
        try:
            for i, e in enumerate(self.elections):
                if i == self._started:
                    self._plan()  # the workers fork here, once the static paths the pages link are known
                epath, summary = yield from self._election(e)
                summaries.append((e, epath, summary))
        finally:
            self._close_pool()
        for e, entries, side in self._unsettled:
            self.state.entries.update(entries)
            self._settle(e, side)
        self._unsettled.clear()
        self._drop_gone_sections()
        main = {
            "version": 2,  # the JSON contract (docs/JSON.md): 2 since units, chunks and candidates come in bundles
            "corte": self.corte.iso,
            "corte_texto": self.corte.texto,
            "corte_id": self.corte.id,
            "aviso": self.o.aviso,
            "final": self.o.final,
            "elecciones": [
                {
                    "id": e.codigo,
                    "nombre": e.nombre,
                    "json": self.url(epath),
                    "html": self.url(f"{e.slug}/"),
                }
                for e, epath, _ in summaries
            ],
        }
        yield from self._extras(summaries)
        yield "index.html", self._page(
            "index", corte=self.corte, current=self.corte, elecciones=[(e, s) for e, _, s in summaries]
        )
        yield "json/main.json", dumps(main)

    def _drop_gone_sections(self) -> None:
        """The state began as the previous one (see __init__): drop the sections no longer in any unit."""
        entries = self.state.entries
        if len(entries) != sum(len(u.secciones) for e in self.elections for u in e.unidades.values()):
            # Every current section has its entry (kept ones the previous, the others set), so equal counts
            # mean nothing else is left.
            self.state.entries = {
                f"{e.slug}/{sid}": entries[f"{e.slug}/{sid}"]
                for e in self.elections
                for u in e.unidades.values()
                for sid in u.secciones
            }

    def _extras(self, summaries: list) -> Iterator[tuple[str, bytes]]:
        """Embeds, CSV downloads and the feed (see prepgen.extras)."""
        for e, _, payload in summaries:
            yield extras.csv_path(e, self.corte), extras.election_csv(e, self.corte)
            yield f"embed/{e.slug}/index.html", self._page(
                "embed", e=e, p=payload, corte=self.corte, current=self.corte
            )
        yield "embed/index.html", self._page(
            "embed_index", corte=self.corte, current=self.corte, elecciones=[e for e, _, _ in summaries],
            origin=self.o.base_url.rstrip("/"),
        )
        yield "feed.xml", extras.atom_feed(
            self.elections, self.corte, self.url, self.o.base_url, self.o.titulo, self.o.aviso, self.o.final
        )

    def _static_files(self) -> Iterator[tuple[str, bytes]]:
        seen: set[str] = set()
        for d in theme_dirs(self.o.tema):
            sdir = d / "static"
            if not sdir.is_dir():
                continue
            for p in sorted(sdir.rglob("*")):
                rel = p.relative_to(sdir).as_posix()
                if not p.is_file() or rel in seen:
                    continue
                seen.add(rel)
                data = p.read_bytes()
                stem, dot, ext = rel.rpartition(".")
                path = f"static/{stem}.{sha(data)[:12]}.{ext}" if dot else f"static/{rel}"
                self.static[rel] = self.url(path)
                yield path, data

    def _election(self, e: Eleccion) -> Iterator[tuple[str, bytes | Written]]:
        corte = self.corte
        unit_links = []
        units = list(e.unidades.values())
        upaths = [path for group in (yield from self._map(e, "_units", self._keys(e, "_units"))) for path in group]
        for u, upath in zip(units, upaths, strict=True):
            unit_links.append(
                {
                    "tipo": u.tipo,
                    "id": u.id,
                    "nombre": u.nombre,
                    "json": self.url(upath),
                    "html": self.url(f"{e.slug}/{u.tipo}/{u.id}/"),
                }
            )
        cand_links = yield from self._candidates(e)
        res = e.resultados_estatales()
        r = e.data.resumen
        payload = {
            "id": e.codigo,
            "tipo": "eleccion",
            "nombre": e.nombre,
            "corte": corte.iso,
            "corte_texto": corte.texto,
            # The state level shows the published summary line as published.
            "actas": {
                "esperadas": r["ACTAS_ESPERADAS"],
                "registradas": r["ACTAS_REGISTRADAS"],
                "fuera_catalogo": r["ACTAS_FUERA_CATALOGO"],
                "capturadas": r["ACTAS_CAPTURADAS"],
                "contabilizadas": r["ACTAS_CONTABILIZADAS"],
                "no_contabilizadas": r["ACTAS_NO_CONTABILIZADAS"],
                "porcentaje_capturadas": _num(r["PORCENTAJE_ACTAS_CAPTURADAS"]),
                "porcentaje_contabilizadas": _num(r["PORCENTAJE_ACTAS_CONTABILIZADAS"]),
                "porcentaje_inconsistencias": _num(r["PORCENTAJE_ACTAS_INCONSISTENCIAS"]),
            },
            "lista_nominal": r["LISTA_NOMINAL_ACTAS_CONTABILIZADAS"],
            "participacion": _num(r["PORCENTAJE_PARTICIPACION_CIUDADANA"]),
            "participacion_formula": e.participacion_formula,
            "total_votos": r["TOTAL_VOTOS_C_CS"],
            "total_votos_sin_casillas_especiales": r["TOTAL_VOTOS_S_CS"],
            "resumen_publicado": e.data.resumen_texto,
            "candidaturas": self._candidaturas(e, res) if not e.por_unidad else [
                {
                    "clave": x.contendiente.clave,
                    "codigo": x.contendiente.codigo,
                    "nombre": x.contendiente.nombre,
                    "partidos": list(x.contendiente.partidos),
                    "votos": x.votos,
                    "porcentaje": _num(x.porcentaje),
                }
                for x in res
            ],
            "recuento": {
                "total_votos": e.cifras.total_votos,
                "no_registrados": e.cifras.no_registrados,
                "nulos": e.cifras.nulos,
                "actas": self._actas(e.cifras),
                "lista_nominal": e.cifras.lista_nominal,
            },
            "no_registrados": e.cifras.no_registrados,
            "nulos": e.cifras.nulos,
            "discrepancias": e.discrepancias,
            "candidaturas_paginas": cand_links,
            "descargas": {"csv": self.url(extras.csv_path(e, corte)), "embed": self.url(f"embed/{e.slug}/")},
            "ambitos": unit_links,
        }
        data = dumps(payload)
        path = self._json_path(e.slug, data)
        yield path, data
        yield f"{e.slug}/index.html", self._page(
            "eleccion",
            e=e,
            p=payload,
            resultados=res,
            unidades=unit_links,
            corte=corte,
            current=corte,
            json_url=self.url(path),
        )
        return path, payload

    def _unit_groups(self, e: Eleccion) -> list[list[str]]:
        """The election's units in runs of about UNIT_GROUP_ACTAS actas, whose changed sections share chunks
        (see _units). Decided from the model alone, so a build with or without the watcher's caches groups
        alike and writes the same bytes."""
        units = list(e.unidades.values())
        # map in C, not a generator per unit: 213,000 sections nationally, every corte, before any worker starts.
        weights = [sum(map(len, map(_ACTAS, u.secciones.values()))) for u in units]
        return [[u.id for u in run] for run in _runs(units, weights, UNIT_GROUP_ACTAS)]

    def _units(self, e: Eleccion, uids: list[str]) -> Iterator[tuple[str, bytes]]:
        """Some units' pages, their sections' pages, new chunks holding the sections of all of them that
        changed, and their objects in bundles.

        Section JSON is log-structured (docs/JSON.md): a section whose figures did not change stays in the
        chunk it was written to in an earlier corte (its page, which links that chunk, is kept as is); the
        sections that changed are packed, in order, into new content-addressed chunks of about
        CHUNK_TARGET bytes. A mid-night national corte changes a few sections per district: one chunk for
        ~14 districts instead of one each.
        """
        passes = [self._unit_sections(e, e.unidades[uid]) for uid in uids]
        fresh = [item for p in passes for item in p.fresh.items()]
        # Estimated sizes (a chunk's JSON is printed once, in _chunk): they only decide where a chunk ends.
        weights = [SECTION_BYTES + ACTA_BYTES * len(body["casillas"]) for _, body in fresh]
        for run in _runs(fresh, weights, CHUNK_TARGET):
            yield from self._chunk(e, dict(run), passes)
        self._side.kept_files.extend(c for p in passes for c, ok in p.chunk_ok.items() if ok)  # deduped in _settle
        units = []
        for p in passes:
            units.append((yield from self._unit_pages(e, p)))
        # Unit objects carry the live corte, so all of them are new every corte: packed like the chunks,
        # ~40 objects per national election instead of 300.
        paths = []
        for run in _runs(units, [UNIT_BYTES + LINK_BYTES * len(x.links) for x in units], CHUNK_TARGET):
            path = yield from self._unit_bundle(e, run)
            paths.extend(path for _ in run)
        return paths

    def _chunk(self, e: Eleccion, sections: dict[str, dict[str, Any]], passes: list[_UnitPass]) -> Iterator[tuple[str, bytes]]:
        data = dumps({"eleccion": e.codigo, "secciones": sections})
        path = self._json_path(e.slug, data)
        yield path, data
        for p in passes:
            for sid in sections.keys() & p.fresh.keys():
                p.entries[sid][4] = path

    def _unit_sections(self, e: Eleccion, u: Unidad) -> _UnitPass:
        """Which of a unit's sections keep their page and chunk, and the stamped bodies of those that changed.

        A warm corte keeps ~97 % of the sections as they were: for those this only checks that they can be
        kept and notes them in ``self._side``, which the parent claims in bulk (see _settle).
        """
        self._cols = e.data.vote_columns
        same_render = self.prev.fingerprint == self.state.fingerprint
        memo = self.memo
        ukey = (e.slug, u.id)
        before = memo.unit(e, u, unit_signature(e, u)) if memo is not None and same_render else {}
        old_links = memo.links.get(ukey, {}) if memo is not None else {}
        side = self._side
        kept_pages = side.kept_pages
        can_keep = self.can_reuse
        corte = self.corte
        entries: dict[str, list[Any]] = {}  # sections whose page is rendered
        bodies: dict[str, dict[str, Any]] = {}
        fresh: dict[str, dict[str, Any]] = {}  # the new chunk's sections
        chunk_ok: dict[str, bool] = {}
        prev_entries = self.prev.entries
        prefix = f"{e.slug}/"
        pages = f"{e.slug}/seccion/"
        links: list[Any] = []  # the unit JSON's "ambitos", in section order
        new_links: dict[str, tuple[str, dict[str, str]]] = {}
        pending: list[tuple[int, Seccion]] = []  # (index in links, section) of the pages to render
        secciones = u.secciones
        unchanged = self._unchanged(e, u, before, old_links)
        if unchanged is not None:
            side.bulk.append((u.id, unchanged[0]))
        for sid in secciones:
            if unchanged is not None and sid not in unchanged[0]:
                # As the memo has it (see _unchanged): what the loop below would find, in ~1/30 of the time
                # and without touching the section (the forked workers' copy-on-write faults).
                chunk, link = old_links[sid]
                chunk_ok[chunk] = True
                links.append(link)
                continue
            s = secciones[sid]
            key = prefix + sid
            prev = prev_entries.get(key)
            b = before.get(sid)
            if prev is not None and b is not None and b.actas == s.actas:
                entry = prev  # the very same actas as last corte (see RenderMemo.same): nothing to recompute
            else:
                body = bodies[sid] = self._section_body(e, u, s)
                digest = sha(dumps(body))
                if prev is not None and prev[0] == digest:
                    entry = prev
                else:
                    entry = [digest, corte.id, corte.iso, corte.texto, None]
            chunk = entry[4] if len(entry) > 4 and same_render else None
            if chunk is not None:
                ok = chunk_ok.get(chunk)
                if ok is None:
                    ok = chunk_ok[chunk] = can_keep(chunk)
                if ok:
                    # A kept chunk means the page's JSON link did not change either: the page is the same bytes.
                    page = f"{pages}{sid}/index.html"
                    if can_keep(page):
                        kept_pages.append(page)
                        if len(entry) != 5:  # else the state already has it (see __init__)
                            self.state.entries[key] = entry[:4] + [chunk]
                        cached = old_links.get(sid)
                        if cached is None or cached[0] != chunk:
                            cached = new_links[sid] = (chunk, self._section_link(e, sid, chunk))
                        links.append(cached[1])
                        continue
                    entries[sid] = entry[:4] + [chunk]
                    pending.append((len(links), s))
                    links.append(None)
                    continue
            entry = entries[sid] = entry[:4] + [None]
            if sid not in bodies:
                bodies[sid] = self._section_body(e, u, s)
            fresh[sid] = _stamped(bodies[sid], entry)
            pending.append((len(links), s))
            links.append(None)
        return _UnitPass(u, entries, bodies, fresh, chunk_ok, links, new_links, pending, old_links)

    def _unchanged(
        self, e: Eleccion, u: Unidad, before: dict[str, Seccion], old_links: dict[str, tuple[str, dict[str, str]]]
    ) -> tuple[frozenset[str]] | None:
        """(the ids of the unit's sections the model changed,) when all the others can be kept unlooked at.

        That holds when the section state and the previous build's files are the ones the memo was
        recorded with (self._trusted), the unit's signature and the render fingerprint did not change
        (``before`` is then the previous corte's sections), the model says which sections changed since
        exactly those (its sections dict is the previous one, or Eleccion.cambios names it), and the memo
        has every section's chunk and link. An unchanged section then holds the very same actas as last
        corte, so its entry, chunk, link and page are the previous build's, all of them in its files.
        """
        if not self._trusted or not before or len(old_links) != len(u.secciones):
            return None
        if u.secciones is before:
            return (frozenset(),)
        cambio = e.cambios.get(u.id) if e.cambios is not None else None
        if cambio is None or cambio[0] is not before:
            return None
        return (frozenset(cambio[1]),)

    def _unit_pages(self, e: Eleccion, p: _UnitPass) -> Iterator[tuple[str, bytes]]:
        """A unit's section pages that changed, once its new sections have a chunk, and its object."""
        u, entries, bodies, fresh, links, new_links, pending, old_links = (
            p.u, p.entries, p.bodies, p.fresh, p.links, p.new_links, p.pending, p.old_links
        )
        memo = self.memo
        side = self._side
        corte = self.corte
        prefix = f"{e.slug}/"
        pages = f"{e.slug}/seccion/"
        ukey = (e.slug, u.id)
        fast = self._fast_section()
        parts = None
        if fast is not None and pending:
            try:
                parts = fast.unit(e, u, u.contendientes)
            except NotPlain:
                parts = None
        state_entries = self.state.entries
        for i, s in pending:
            sid = s.id
            entry = state_entries[prefix + sid] = entries[sid]
            json_url = self.url(entry[4])
            link = links[i] = self._section_link(e, sid, entry[4])
            new_links[sid] = (entry[4], link)
            sp = fresh.get(sid) or _stamped(bodies.get(sid) or self._section_body(e, u, s), entry)
            filas = [self._acta_row(a, u.contendientes) for a in s.actas]
            html = None
            if parts is not None:
                try:
                    html = fast.page(  # type: ignore[union-attr]
                        parts, sid, sp, (sp["corte_id"], sp["corte"], sp["corte_texto"]), corte.id, json_url, filas,
                    )
                    self.fast_pages += 1
                except NotPlain:
                    html = None
            if html is None:
                stamp = Corte(texto=sp["corte_texto"], fecha=_parse_iso(sp["corte"]))
                html = self._page(
                    "seccion",
                    e=e,
                    u=u,
                    s=s,
                    p=sp,
                    corte=stamp,
                    current=corte,
                    json_url=json_url,
                    contendientes=u.contendientes,
                    filas=filas,
                )
            yield f"{pages}{sid}/index.html", html
        if memo is not None and (new_links or len(old_links) != len(links)):
            side.memo.append(("links", ukey, new_links))
        # The list on the unit page links section pages only: same sections, same list (the chunks may move).
        sids = tuple(u.secciones)
        cached_list = memo.lists.get(ukey) if memo is not None else None
        if cached_list is not None and cached_list[0] == sids:
            list_min = cached_list[1]
        else:
            try:
                list_min = section_list_min(links)
            except NotPlain:
                list_min = None
            if memo is not None:
                side.memo.append(("list", ukey, list_min))
        res = e.resultados(u.cifras, u.contendientes)
        payload = {
            "id": u.id,
            "tipo": u.tipo,
            "nombre": u.nombre,
            "eleccion": e.codigo,
            "corte": corte.iso,
            "corte_texto": corte.texto,
            **self._figures(e, u.cifras, res),
            "ambitos": links,
        }
        return _UnitObject(u, payload, res, links, list_min)

    def _unit_bundle(self, e: Eleccion, units: list[_UnitObject]) -> Iterator[tuple[str, bytes]]:
        """Some units' objects as one JSON bundle, then each unit's page linking it; the bundle's path."""
        data = dumps({"eleccion": e.codigo, "unidades": {x.u.id: x.payload for x in units}})
        path = self._json_path(e.slug, data)
        yield path, data
        json_url = self.url(path)
        corte = self.corte
        for x in units:
            yield f"{e.slug}/{x.u.tipo}/{x.u.id}/index.html", self._spliced(
                "ambito", "lista_secciones", lambda links=x.links: section_list(links), _given(x.list_min),
                e=e, u=x.u, p=x.payload, resultados=x.res, corte=corte, current=corte, json_url=json_url,
            )
        return path

    def _section_link(self, e: Eleccion, sid: str, chunk: str) -> dict[str, str]:
        return {
            "tipo": "seccion",
            "id": sid,
            "nombre": f"Sección {sid}",
            "json": self.url(chunk),
            "html": self.url(f"{e.slug}/seccion/{sid}/"),
        }

    def _section_body(self, e: Eleccion, u: Unidad, s: Seccion) -> dict[str, Any]:
        """A section's JSON without its stamp (the stamp depends on when these figures first appeared)."""
        res = e.resultados(s.cifras, u.contendientes)
        body = {
            "id": s.id,
            "tipo": "seccion",
            "nombre": f"Sección {s.id}",
            "eleccion": e.codigo,
            "ambito": {"tipo": u.tipo, "id": u.id, "nombre": u.nombre},
            **self._figures(e, s.cifras, res),
            "casillas": [self._acta_json(e, a) for a in s.actas],
            "ambitos": [],
        }
        # The operator's participation formula can flip between cortes (Campeche 2021 did); it is stated
        # on the election and unit JSON. Here only the value counts, so a section without special
        # casillas does not "change" when the formula does.
        del body["participacion_formula"]
        return body

    def _candidates(self, e: Eleccion) -> Iterator[tuple[str, bytes | Written]]:
        """Candidate pages, and their JSON packed into bundles of about CHUNK_TARGET bytes (docs/JSON.md).

        Every candidate object carries the live corte, so all of them are new every corte: one object per
        district deputy was ~1,130 PUTs of a national corte, ~11 % of them; packed, ~100.
        """
        links: list[dict[str, str]] = []
        for group in (yield from self._map(e, "_candidate_bundle", self._keys(e, "_candidate_bundle"))):
            links.extend(group)
        return links

    def _candidate_packs(self, e: Eleccion) -> list[list[int]]:
        """The election's candidates (indexes) in bundles of about CHUNK_TARGET bytes, from the model alone."""
        weights = [
            CANDIDATE_BYTES + CANDIDATE_ROW_BYTES * (len(e.unidades if c.unidad is None else e.unidades[c.unidad].secciones))
            for c in e.contendientes
        ]
        return _runs(list(range(len(e.contendientes))), weights, CHUNK_TARGET)

    def _candidate_bundle(self, e: Eleccion, ks: list[int]) -> Iterator[tuple[str, bytes]]:
        """Some candidates' objects as one JSON bundle, then each candidate's page linking it."""
        payloads = [self._candidate(e, k) for k in ks]
        bundle = dumps({"eleccion": e.codigo, "candidaturas": {p["id"]: p for p, _ in payloads}})
        path = self._json_path(e.slug, bundle)
        yield path, bundle
        json_url = self.url(path)
        links = []
        for k, (payload, (rows, frags)) in zip(ks, payloads, strict=True):
            c = e.contendientes[k]
            html = f"{e.slug}/candidatura/{c.clave}/"
            yield html + "index.html", self._spliced(
                "candidatura", "filas", lambda rows=rows: candidate_rows(rows),
                _given(None if None in frags else "".join(frags)),
                e=e, c=c, p=payload, corte=self.corte, current=self.corte, json_url=json_url,
            )
            links.append({"clave": c.clave, "nombre": c.nombre, "json": json_url, "html": self.url(html)})
        return links

    def _candidate(self, e: Eleccion, k: int) -> tuple[dict[str, Any], tuple[list[dict[str, Any]], list[str | None]]]:
        """A candidate's object (docs/JSON.md) and its rows as printed (see _candidate_rows)."""
        c = e.contendientes[k]
        keys, cifras, total_c = _candidate_source(e, c)
        rows, frags = self._candidate_rows(e, k, keys, cifras)
        votos = sum(total_c.columnas[i] for i in c.columnas)
        payload = {
            "id": c.clave,
            "tipo": "candidatura",
            "eleccion": e.codigo,
            "nombre": c.nombre,
            "candidatura": c.candidato,
            "codigo": c.codigo,
            "partidos": list(c.partidos),
            "columnas": [e.data.vote_columns[i] for i in c.columnas],
            "ambito": None
            if c.unidad is None
            else {"tipo": e.unidades[c.unidad].tipo, "id": c.unidad, "nombre": e.unidades[c.unidad].nombre},
            "corte": self.corte.iso,
            "corte_texto": self.corte.texto,
            "votos": votos,
            "porcentaje": _num(pct(votos, total_c.total_votos)),
            "total_votos": total_c.total_votos,
            "ambitos": rows,
        }
        return payload, (rows, frags)

    def _candidate_rows(
        self, e: Eleccion, k: int, keys: list[Any], cifras: list[Cifras]
    ) -> tuple[list[dict[str, Any]], list[str | None]]:
        """A candidate's rows (one per unit, or per section of its district) and each row as minify-html
        prints it (None where it cannot tell).

        A row depends only on where it points (``keys``) and on its figures, so last corte's rows are kept
        for the figures that are the same object (an unchanged section shares its Cifras, see
        model.SectionMemo) or equal; a district candidate has ~240 rows of which a corte changes a few.
        """
        c = e.contendientes[k]
        old = self.memo.rows.get((e.slug, c.clave)) if self.memo is not None else None
        if old is not None and old.columnas == c.columnas and old.keys == keys:
            changed = [i for i, (a, b) in enumerate(zip(cifras, old.cifras, strict=True)) if a is not b and a != b]
            rows, frags = list(old.rows), list(old.frags)
            for i in changed:
                rows[i], frags[i] = self._candidate_row(e, c, keys[i], cifras[i])
            self._side.memo.append(("rows", (e.slug, k), [(i, rows[i], frags[i]) for i in changed]))
        else:
            rows, frags = [], []
            for key, cif in zip(keys, cifras, strict=True):
                row, frag = self._candidate_row(e, c, key, cif)
                rows.append(row)
                frags.append(frag)
            if self.memo is not None:
                self._side.memo.append(("rows", (e.slug, k), (rows, frags)))
        return rows, frags

    def _candidate_row(self, e: Eleccion, c: Contendiente, key: Any, cif: Cifras) -> tuple[dict[str, Any], str | None]:
        v = sum(cif.columnas[i] for i in c.columnas)
        if isinstance(key, str):
            tipo, rid, nombre, html = "seccion", key, f"Sección {key}", self.url(f"{e.slug}/seccion/{key}/")
        else:
            tipo, rid, nombre = key
            html = self.url(f"{e.slug}/{tipo}/{rid}/")
        porcentaje = _num(pct(v, cif.total_votos))
        row = {"tipo": tipo, "id": rid, "nombre": nombre, "votos": v, "porcentaje": porcentaje, "html": html}
        try:
            return row, candidate_row_min(row)
        except NotPlain:
            return row, None


def _candidate_source(e: Eleccion, c: Contendiente) -> tuple[list[Any], list[Cifras], Cifras]:
    """What a candidate's rows point to (unit (tipo, id, nombre) or section id), their figures, and the total."""
    if c.unidad is None:
        units = list(e.unidades.values())
        return [(u.tipo, u.id, u.nombre) for u in units], [u.cifras for u in units], e.cifras
    u = e.unidades[c.unidad]
    return list(u.secciones), [s.cifras for s in u.secciones.values()], u.cifras


def _row_cifras(e: Eleccion, c: Contendiente, key: Any) -> Cifras:
    """The figures behind one row of _candidate_source."""
    return e.unidades[c.unidad].secciones[key].cifras if c.unidad is not None else e.unidades[key[1]].cifras


def _given(value: str | None) -> Callable[[], str]:
    """The ``fast`` of Renderer._spliced for a list printed beforehand (None: it could not be)."""

    def fast() -> str:
        if value is None:
            raise NotPlain("list")
        return value

    return fast


def candidate_rows(rows: list[dict[str, Any]]) -> Markup:
    """A candidate page's table rows. Printed here rather than looped over in the template: a district
    candidate lists every section of the district (~240 rows nationally, ~950 pages every corte)."""
    return Markup(
        "".join(
            f'<tr><th scope="row"><a href="{escape(r["html"])}">{escape(r["id"])} '
            f'{escape(r["nombre"]) if r["tipo"] != "seccion" else ""}</a></th>'
            f'<td class="num">{fmt_int(r["votos"])}</td><td class="num">{fmt_pct_json(r["porcentaje"])}</td></tr>'
            for r in rows
        )
    )


def candidate_row_min(r: dict[str, Any]) -> str:
    """One row of candidate_rows as minify-html prints it (see Renderer._spliced); NotPlain if it cannot tell."""
    return (
        f'<tr><th scope=row><a href={attr(r["html"])}>{text(r["id"])} '
        f'{text(r["nombre"]) if r["tipo"] != "seccion" else ""}</a></th>'
        f'<td class=num>{fmt_int(r["votos"])}</td><td class=num>{fmt_pct_json(r["porcentaje"])}</td></tr>'
    )


def section_list_min(links: list[dict[str, Any]]) -> str:
    """section_list as minify-html prints it (see Renderer._spliced); NotPlain if it cannot tell."""
    return "".join(f'<li><a href={attr(s["html"])}>{text(s["id"])}</a></li>' for s in links)


def section_list(links: list[dict[str, Any]]) -> Markup:
    """A unit page's list of section links (printed here for the same reason as candidate_rows)."""
    return Markup("".join(f'<li><a href="{escape(s["html"])}">{escape(s["id"])}</a></li>' for s in links))


def _stamped(body: dict[str, Any], entry: list[Any]) -> dict[str, Any]:
    return {**body, "corte": entry[2], "corte_texto": entry[3], "corte_id": entry[1]}


def unit_signature(e: Eleccion, u: Unidad) -> tuple[Any, ...]:
    """Everything besides its actas that a section's JSON depends on (see RenderMemo)."""
    return (
        e.codigo, tuple(e.data.vote_columns), e.participacion_formula, u.tipo, u.id, u.nombre,
        tuple((c.clave, c.codigo, c.nombre, c.partidos, c.columnas, c.candidato) for c in u.contendientes),
    )


class RenderMemo:
    """The previous corte's model, for a process building corte after corte (the watcher). A section holding
    the very same Acta objects as last time (the reader shares unchanged rows between cortes, see
    reader.RowMemo) in a unit with the same signature has the same JSON, so its payload is neither rebuilt
    nor hashed again. Valid only together with the state it was recorded with (see build.BuildCache).
    """

    def __init__(self) -> None:
        self.elections: dict[str, Eleccion] = {}
        self.signatures: dict[tuple[str, str], tuple[Any, ...]] = {}
        # Pieces of the last pages printed, each stored with what it was printed from and used only while
        # that is unchanged (so, unlike the above, they hold whatever state is on disk), under one base path:
        # (slug, unit id) -> section id -> (chunk, link in the unit JSON)
        self.links: dict[tuple[str, str], dict[str, tuple[str, dict[str, str]]]] = {}
        # (slug, unit id) -> (section ids, the unit page's list as section_list_min printed it, or None)
        self.lists: dict[tuple[str, str], tuple[tuple[str, ...], str | None]] = {}
        self.rows: dict[tuple[str, str], CandidateRows] = {}  # (slug, candidate clave) -> its rows
        self.base: str | None = None
        # The section state and the build's files this memo was recorded with (see Renderer._unchanged).
        self._recorded: tuple[SectionState, dict[str, Any]] | None = None
        self._env: tuple[str | Path | None, jinja2.Environment] | None = None

    def environment(self, tema: str | Path | None) -> jinja2.Environment:
        """The jinja2 environment for this theme override, made once."""
        if self._env is None or self._env[0] != tema:
            self._env = (tema, make_env(tema))
        return self._env[1]

    def printed_under(self, base: str) -> None:
        """Forget the printed pieces if they were printed under another base path (every URL in them)."""
        if base != self.base:
            self.links, self.lists, self.rows = {}, {}, {}
            self.base = base

    def unit(self, e: Eleccion, u: Unidad, sig: tuple[Any, ...]) -> dict[str, Seccion]:
        """The previous corte's sections of this unit, or nothing when anything besides actas changed."""
        prev = self.elections.get(e.slug)
        if prev is None or self.signatures.get((e.slug, u.id)) != sig:
            return {}
        pu = prev.unidades.get(u.id)
        return pu.secciones if pu is not None else {}

    @staticmethod
    def same(prev: Seccion | None, s: Seccion) -> bool:
        # List equality compares by identity first (in C): the shared actas of an unchanged section are
        # the very same objects. Distinct but equal actas (every field, line number included) would give
        # the same JSON too, so equality is as safe as identity here.
        return prev is not None and prev.actas == s.actas

    def trusts(self, state: SectionState, files: dict[str, Any] | None) -> bool:
        """Whether this memo was recorded with this very state and these very files (identity, not equality:
        the build that recorded it made both, and nothing changes them afterwards)."""
        return self._recorded is not None and self._recorded[0] is state and self._recorded[1] is files

    def distrust(self) -> None:
        self._recorded = None

    def record(
        self, elections: list[Eleccion], state: SectionState | None = None, files: dict[str, Any] | None = None
    ) -> None:
        """Remember the corte just built; ``state`` and ``files`` are what that build left (see trusts())."""
        self._recorded = (state, files) if state is not None and files is not None else None
        # A reference, not a copy: recording costs nothing per section.
        self.elections = {e.slug: e for e in elections}
        self.signatures = {(e.slug, u.id): unit_signature(e, u) for e in elections for u in e.unidades.values()}
        # Units and candidates that are gone: their pieces would only take memory.
        units = self.signatures.keys()
        self.links = {k: v for k, v in self.links.items() if k in units}
        self.lists = {k: v for k, v in self.lists.items() if k in units}
        claves = {(e.slug, c.clave) for e in elections for c in e.contendientes}
        self.rows = {k: v for k, v in self.rows.items() if k in claves}


@dataclass
class CandidateRows:
    """A candidate's rows as last printed (see Renderer._candidate_rows), with what they were printed from."""

    columnas: tuple[int, ...]
    keys: list[Any]
    cifras: list[Cifras]
    rows: list[dict[str, Any]]
    frags: list[str | None]


class Written(NamedTuple):
    """A file a forked worker already wrote (see Renderer.direct): what the Writer records for it."""

    sha256: str
    size: int
    written: bool


@dataclass
class _Side:
    """What rendering units or candidates leaves for the parent besides files (see Renderer._settle)."""

    kept_pages: list[str] = field(default_factory=list)  # section pages kept as they are
    kept_files: list[str] = field(default_factory=list)  # section chunks kept
    # (unit id, ids of its sections the model changed): every other section's page is kept (see _unchanged)
    bulk: list[tuple[str, frozenset[str]]] = field(default_factory=list)
    memo: list[tuple[str, Any, Any]] = field(default_factory=list)  # printed pieces for the RenderMemo


@dataclass
class _UnitPass:
    """A unit between Renderer._unit_sections and Renderer._unit_pages."""

    u: Unidad
    entries: dict[str, list[Any]]  # section id -> state entry, for the sections whose page is rendered
    bodies: dict[str, dict[str, Any]]  # section JSON computed this corte (without stamps)
    fresh: dict[str, dict[str, Any]]  # the stamped sections that go into the new chunk
    chunk_ok: dict[str, bool]  # earlier chunks looked at: whether the build can keep them
    links: list[Any]  # the unit JSON's "ambitos", None where a page is still to render
    new_links: dict[str, tuple[str, dict[str, str]]]
    pending: list[tuple[int, Seccion]]  # (index in links, section) of the pages to render
    old_links: dict[str, tuple[str, dict[str, str]]]


class _UnitObject(NamedTuple):
    """A unit's object and what its page is printed from (Renderer._unit_pages to _unit_bundle)."""

    u: Unidad
    payload: dict[str, Any]
    res: list[Resultado]
    links: list[Any]
    list_min: str | None


@dataclass
class _WorkOut:
    results: list[tuple[list[tuple[str, bytes | Written]], Any]]
    state: dict[str, list[str]]
    side: _Side
    fast_pages: int
    fast_shells: int


_FORKED: Renderer | None = None  # the renderer a forked worker inherits
_INHERITED: list[Any] = [None]  # see _work


def _runs(items: list[T], weights: list[int], limit: int) -> list[list[T]]:
    """``items`` in consecutive runs, each closed once its weights add up to ``limit`` (the last may be lighter)."""
    runs: list[list[T]] = []
    run: list[T] = []
    total = 0
    for item, w in zip(items, weights, strict=True):
        run.append(item)
        total += w
        if total >= limit:
            runs.append(run)
            run, total = [], 0
    if run:
        runs.append(run)
    return runs


def _chunks(keys: list[T], workers: int) -> list[list[T]]:
    """Keys in chunks for the workers: a unit is ~1 ms of work; fewer round trips, still a fair split."""
    size = max(1, min(64, len(keys) // (workers * 8)))
    return [keys[i : i + size] for i in range(0, len(keys), size)]


def _worker_signals() -> None:
    """A render worker dies on SIGTERM and leaves SIGINT to its parent.

    Forked workers inherit the parent's Python signal handlers. Under ``prepgen watch`` SIGTERM only sets a
    "stop after this corte" flag, so a worker inherited that and survived the SIGTERM with which
    Pool.terminate() ends its workers: the watcher then waited for it forever (seen in the national
    bench, mid-build). Ctrl-C reaches the whole process group; the parent decides what it means.
    """
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _work(job: tuple[int, str, list[Any]]) -> _WorkOut:
    ei, method, keys = job
    r = _FORKED
    assert r is not None
    if _INHERITED[0] is None:
        # The first job of this process holds the inherited copy of the whole state: freeing it here would
        # write to every page it lies on.
        _INHERITED[0] = r.state.entries
    r.state.entries = {}
    r._side = _Side()
    r.fast_pages = r.fast_shells = 0
    e = r.elections[ei]
    results = []
    for key in keys:
        gen = getattr(r, method)(e, key)
        files: list[tuple[str, bytes | Written]] = []
        while True:
            try:
                path, data = next(gen)
            except StopIteration as stop:
                results.append((files, stop.value))
                break
            files.append((path, Written(*r.direct(path, data)) if r.direct is not None else data))
    return _WorkOut(results, r.state.entries, r._side, r.fast_pages, r.fast_shells)


def default_workers(elections: list[Eleccion]) -> int:
    """Both cores for big sites; one process below ~8,000 sections, where forking costs more than it saves.

    ``PREPGEN_WORKERS`` overrides it (benchmarks, tests, a machine shared with other jobs).
    """
    forced = os.environ.get("PREPGEN_WORKERS", "").strip()
    if forced.isdigit() and int(forced) > 0:
        return int(forced)
    sections = sum(len(u.secciones) for e in elections for u in e.unidades.values())
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cpus, 4) if sections >= 8000 else 1


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def acta_estado(a: Acta) -> str:
    if a.fuera_catalogo:
        return "fuera de catálogo"
    if a.contabilizada == "1":
        return "contabilizada"
    if a.contabilizada == "0":
        return "no contabilizada"
    return "pendiente"
