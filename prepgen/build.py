"""The `prepgen build` stage: package → model → render → writer, with timings and a build report."""

from __future__ import annotations

import contextlib
import gc
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .errors import BuildError, ConfigError
from .model import Eleccion, SectionMemo, build_election, build_elections
from .reader import PACKAGE_NAME_RE, Corte, ElectionData, Package, RowMemo, read_package
from .render import Renderer, RenderMemo, SectionState, SiteOptions, Written
from .writer import META_DIR, Writer, load_manifest

Progress = Callable[[str, float], None]


@dataclass
class BuildResult:
    package: Package
    elections: list[Eleccion]
    outdir: Path
    files: int
    written: int
    unchanged: int
    pages: int
    timings: dict[str, float] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    # What build_model(deferred=True) left for later: remove the replaced files, release the frozen heap.
    cleanup: Callable[[], None] = lambda: None  # noqa: E731 - a do-nothing default
    # Wait until build_model(deferred=True) has its state and manifest on disk; raises what writing them
    # raised. Before the corte goes live (publish's ``before_record``); cleanup() waits too, raising nothing.
    settle: Callable[[], None] = lambda: None  # noqa: E731 - a do-nothing default
    # What the build wrote to .prepgen/manifest.json, for a publish in the same process (not read again).
    manifest: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def seconds(self) -> float:
        return sum(self.timings.values())


@dataclass
class BuildCache:
    """What a process building corte after corte (the watcher) keeps between builds into one folder.

    Between cortes only newly captured actas change. With this cache an unchanged acta row is not parsed
    again (RowMemo), an unchanged section's figures are not summed again (SectionMemo; when the rows line up
    with the previous corte's, the model is derived from the previous model) and its JSON is not rebuilt or
    hashed again (RenderMemo), so a corte costs what changed plus the levels above. The render
    memo is only trusted next to the state file it was recorded with; if that file changed meanwhile
    (another process built into the folder), it is dropped. ``prepgen build`` runs without one.
    """

    rows: RowMemo = field(default_factory=RowMemo)
    sections: SectionMemo = field(default_factory=SectionMemo)
    render: RenderMemo = field(default_factory=RenderMemo)
    state_file: tuple[str, int, int] | None = None
    state: SectionState | None = None  # the state (and manifest) this process last wrote, with its file token
    manifest: tuple[tuple[str, int, int] | None, dict[str, Any]] | None = None


def _file_token(path: Path) -> tuple[str, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (str(path), st.st_size, st.st_mtime_ns)


def newest_package(folder: Path) -> Path:
    """The newest corte in a folder of packages, by the corte in the file name (YYYYMMDD_HHMM_PREP...)."""
    if not folder.is_dir():
        raise ConfigError(
            f"{folder}: no data folder; pass a PACKAGE path or set [sitio] datos in prepgen.toml"
        )
    found = [
        p
        for p in folder.iterdir()
        if PACKAGE_NAME_RE.match(p.name.split(".")[0]) and (p.suffix.lower() == ".zip" or p.is_dir())
    ]
    if not found:
        raise ConfigError(
            f"{folder}: no PREP package (YYYYMMDD_HHMM_PREP_*.zip) found; pass a PACKAGE path"
        )
    return max(found, key=lambda p: (re.sub(r"\D", "", p.name)[:12], p.name))


def report_of(package: Package, elections: list[Eleccion]) -> dict[str, Any]:
    return {
        "paquete": package.nombre,
        "sha256": package.sha256,
        "corte": package.corte.iso,
        "corte_texto": package.corte.texto,
        "elecciones": [
            {
                "id": e.codigo,
                "nombre": e.nombre,
                "archivo": e.data.archivo,
                "actas": len(e.data.actas),
                "discrepancias": e.discrepancias,
                "advertencias": e.advertencias,
                "participacion_formula": e.participacion_formula,
            }
            for e in elections
        ],
    }


def load_and_model(
    package_path: Path,
    progress: Progress | None = None,
    cache: BuildCache | None = None,
    on_first: Callable[[list[Eleccion], Corte], None] | None = None,
) -> tuple[Package, list[Eleccion], dict]:
    """Read and model a package. ``on_first(elections, corte)``: called once the first election is modelled,
    with the list the others are appended to as they are (a cold build starts rendering it then, see build)."""
    timings: dict[str, float] = {}
    # Reading allocates millions of small objects and none of them form cycles worth collecting: without
    # this the cyclic GC rescans the growing heap again and again (half the modelling time nationally).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        t = time.perf_counter()
        if on_first is None:
            package = read_package(package_path, memo=cache.rows if cache else None)
            timings["leer"] = time.perf_counter() - t
            if progress:
                progress("leer", timings["leer"])
            t = time.perf_counter()
            elections = build_elections(package, cache.sections if cache else None)
            timings["modelo"] = time.perf_counter() - t
        else:
            elections = []
            modelling = 0.0

            def modelled(data: ElectionData) -> None:
                nonlocal modelling
                t = time.perf_counter()
                elections.append(build_election(data, cache.sections if cache else None))
                if len(elections) == 1:
                    # The forked workers get the collector as the render stage has it (see below), not off.
                    gc.freeze()
                    gc.enable()
                    try:
                        on_first(elections, data.corte)
                    finally:
                        gc.disable()
                modelling += time.perf_counter() - t

            package = read_package(package_path, memo=cache.rows if cache else None, on_election=modelled)
            timings["leer"] = time.perf_counter() - t - modelling
            timings["modelo"] = modelling
            if progress:
                progress("leer", timings["leer"])
    finally:
        if gc_was_enabled:
            gc.enable()
    # The model lives until the build ends: keep the collector from walking it during rendering.
    gc.freeze()
    if progress:
        progress("modelo", timings["modelo"])
    return package, elections, timings


def release_heap(collect: bool = False) -> None:
    """Give the collector back the heap load_and_model froze.

    Unfrozen, the model (millions of objects nationally) lands in the oldest generation and the next full
    collection walks all of it: ~2-4 s of CPU with the GIL held, which stalls whatever runs then (the
    upload threads of a publish). ``collect``: pay that now, at a moment the caller chose.
    """
    gc.unfreeze()
    if collect:
        gc.collect()


def build(
    package_path: Path,
    outdir: Path,
    options: SiteOptions,
    progress: Progress | None = None,
    state_dir: Path | None = None,
    tick: Callable[[int], None] | None = None,
    cache: BuildCache | None = None,
    bar: Callable[[int], contextlib.AbstractContextManager[Callable[[int], None]]] | None = None,
) -> BuildResult:
    """Build one package into ``outdir``. Nothing is kept unless the package reads and models cleanly.

    Into a missing or empty folder (a cold build) the first election renders while the others are read
    and modelled, on the core the reading leaves idle; should the package then fail, the folder is left as
    it was found. Elsewhere nothing is written before the whole package is modelled: the build it replaces
    stays intact. ``bar(total)``: a progress bar over the files written, entered once the total is known
    (stage timings are then reported after it, not over it).
    """
    begun: _Begun | None = None
    fresh = cache is None and _empty_folder(outdir)
    existed = outdir.exists()

    def start(elections: list[Eleccion], corte: Corte) -> None:
        nonlocal begun
        begun = _begin(elections, corte, outdir, options, state_dir, cache)
        begun.renderer.start()

    try:
        package, elections, timings = load_and_model(package_path, progress, cache, start if fresh else None)
    except BaseException:
        if begun is not None:
            begun.renderer.close()
            _undo(outdir, existed)
        raise
    with bar(expected_files(elections)) if bar else contextlib.nullcontext(tick) as update:
        result = build_model(
            package, elections, timings, outdir, options, progress=None if bar else progress,
            state_dir=state_dir, tick=update, cache=cache, begun=begun,
        )
    if bar and progress:
        for stage in ("render", "escribir"):
            progress(stage, result.timings[stage])
    return result


def _empty_folder(path: Path) -> bool:
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is None
    except FileNotFoundError:
        return True
    except NotADirectoryError:
        return False


def _undo(outdir: Path, existed: bool) -> None:
    """Take back what a cold build that failed wrote into the folder it found missing or empty."""
    if not existed:
        shutil.rmtree(outdir, ignore_errors=True)
        return
    for entry in os.scandir(outdir):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


@dataclass
class _Begun:
    """A build's writer and renderer, made before rendering (by build, before the whole package is read)."""

    writer: Writer
    renderer: Renderer
    state_path: Path
    manifest_path: Path


def _begin(
    elections: list[Eleccion],
    corte: Corte,
    outdir: Path,
    options: SiteOptions,
    state_dir: Path | None,
    cache: BuildCache | None,
) -> _Begun:
    state_dir = state_dir or outdir / META_DIR
    state_path = state_dir / "state.json"
    if cache is not None and cache.state_file != _file_token(state_path):
        cache.render = RenderMemo()  # recorded against another state than the one on disk now
    manifest_path = outdir / META_DIR / "manifest.json"
    if cache is not None and cache.manifest is not None and cache.manifest[0] == _file_token(manifest_path):
        previous = cache.manifest[1]  # what the last build wrote there (80 MB of JSON nationally not parsed again)
    else:
        previous = load_manifest(outdir)
    prev_corte = previous.get("corte_id")
    # Section stamps are "the corte in which the figures last changed": an older package on top of
    # newer state would stamp sections with the future. Then that folder's memory starts afresh.
    if prev_corte and prev_corte > corte.id:
        state = SectionState()
    elif cache is not None and cache.state is not None and cache.state_file == _file_token(state_path):
        state = cache.state
    else:
        state = SectionState.load(state_path)
    writer = Writer(outdir, previous)
    renderer = Renderer(
        elections, corte, options, state=state, reuse=writer.keep, can_reuse=writer.can_keep,
        memo=cache.render if cache else None, direct=writer.put, keep_many=writer.keep_many,
        previous=writer.previous,
    )
    return _Begun(writer, renderer, state_path, manifest_path)


def expected_files(elections: list[Eleccion]) -> int:
    """About how many files a build writes (for a progress bar): pages, bundles and unit JSON."""
    return sum(
        2 * len(e.unidades) + sum(len(u.secciones) for u in e.unidades.values()) + 2 * len(e.contendientes) + 4
        for e in elections
    )


def build_model(
    package: Package,
    elections: list[Eleccion],
    timings: dict[str, float],
    outdir: Path,
    options: SiteOptions,
    progress: Progress | None = None,
    state_dir: Path | None = None,
    tick: Callable[[int], None] | None = None,
    cache: BuildCache | None = None,
    deferred: bool = False,
    on_file: Callable[[str, dict[str, Any]], None] | None = None,
    begun: _Begun | None = None,
) -> BuildResult:
    """Render and write an already read and modelled package (the watcher validates it before building).

    ``deferred``: leave the heap frozen (see load_and_model) and the files this build replaced on disk, for
    the caller to run ``result.cleanup()`` once the corte is live — the watcher does, so neither a full
    collection of the model nor ~1,900 unlinks run between the package and the pointer (nationally). The
    replaced files are in no manifest: publish never reads them. The state and manifest files are written
    in a thread meanwhile (Writer.finish): ``result.settle()`` waits for them, and the process's cache
    (``cache``) takes this build as its previous one only then.

    ``on_file(path, entry)``: called with each file's manifest entry as soon as it is on disk (the watcher
    starts uploading content-addressed files then, see publish.EarlyUploads).

    ``begun``: the writer and renderer _begin made before the package was all read (see build).
    """
    t = time.perf_counter()
    b = begun or _begin(elections, package.corte, outdir, options, state_dir, cache)
    writer, renderer, state_path, manifest_path = b.writer, b.renderer, b.state_path, b.manifest_path
    state_dir = state_path.parent
    pages = 0
    # Closed on the way out even when the Writer refuses a file: the renderer's worker pool ends with it.
    with contextlib.closing(renderer.render()) as files:
        for done, (path, data) in enumerate(files, start=1):
            if isinstance(data, Written):
                writer.record(path, *data)
            else:
                writer.write(path, data)
            if on_file is not None:
                on_file(path, writer.files[path])
            if path.endswith(".html"):
                pages += 1
            if tick and done % 200 == 0:
                tick(200)
    timings["render"] = time.perf_counter() - t
    if progress:
        progress("render", timings["render"])
    t = time.perf_counter()
    report = report_of(package, elections)
    meta = {
        "corte": package.corte.iso,
        "corte_id": package.corte.id,
        "corte_texto": package.corte.texto,
        "paquete": {"nombre": package.nombre, "sha256": package.sha256},
        "base_path": options.base_path,
    }
    extra = {
        "state.json": renderer.state.dump,
        "report.json": lambda: orjson.dumps(report, option=orjson.OPT_INDENT_2),
    }
    manifest = writer.finish(meta, extra, defer_removal=deferred, background=deferred)
    settled = False

    def settle() -> None:
        nonlocal settled
        writer.wait()
        if settled:
            return
        settled = True
        if state_dir != outdir / META_DIR:
            state_dir.mkdir(parents=True, exist_ok=True)
            state_path.write_bytes(renderer.state.dump())
        if cache is not None:
            cache.render.record(elections, renderer.state, writer.files)
            cache.state_file = _file_token(state_path)
            cache.state = renderer.state
            cache.manifest = (_file_token(manifest_path), manifest)

    if not deferred:
        settle()

    def cleanup() -> None:
        with contextlib.suppress(Exception):
            settle()  # its failure is settle()'s to report; here only the thread must be done
        writer.remove_stale()
        release_heap(collect=True)

    if not deferred:
        release_heap()
    timings["escribir"] = time.perf_counter() - t
    if progress:
        progress("escribir", timings["escribir"])
    if not manifest["files"]:
        raise BuildError(f"{package.nombre}: the build produced no files")
    return BuildResult(
        package=package,
        elections=elections,
        outdir=outdir,
        files=len(manifest["files"]),
        written=writer.written,
        unchanged=writer.unchanged,
        pages=pages + len(renderer.skipped),
        timings=timings,
        report=report,
        manifest=manifest,
        **({"cleanup": cleanup, "settle": settle} if deferred else {}),
    )
