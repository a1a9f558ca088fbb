"""Command line: parse options, call one stage function, print its result. No logic lives here."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import orjson

from . import __version__
from .config import Config, load_config, normalise_base_path
from .errors import ConfigError


class Ctx:
    def __init__(self, config: Config, quiet: bool) -> None:
        self.config = config
        self.quiet = quiet

    def say(self, text: str) -> None:
        if not self.quiet:
            click.echo(text, err=True)

    def progress(self, stage: str, seconds: float) -> None:
        self.say(f"  {stage:<10} {seconds:7.2f} s")


pass_ctx = click.make_pass_decorator(Ctx)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Path of prepgen.toml (default: ./prepgen.toml if it exists).",
)
@click.option("-q", "--quiet", is_flag=True, default=False, help="Only errors (for CI logs).")
@click.version_option(__version__, prog_name="prepgen")
@click.pass_context
def main(ctx: click.Context, config_path: Path | None, quiet: bool) -> None:
    """prepgen: official PREP packages → a static results site (HTML + JSON).

    \b
    Example:
      prepgen build                       # newest package in data/ → build/
      prepgen serve                       # preview build/ on http://127.0.0.1:8000/
    """
    ctx.obj = Ctx(load_config(config_path), quiet)


def _site_options(cfg: Config):  # noqa: ANN202 - SiteOptions, imported lazily to keep --help fast
    from .render import SiteOptions

    return SiteOptions(
        base_path=cfg.base_path,
        titulo=cfg.titulo,
        institucion=cfg.institucion,
        tema=cfg.tema,
        base_url=cfg.base_url,
        final_texto=cfg.final_texto,
    )


def _resolve(cfg: Config, value: str | None) -> Path | None:
    if value is None:
        return None
    p = Path(value)
    return p if p.is_absolute() else cfg.root / p


@main.command()
@click.argument("package", required=False, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: build/).")
@click.option("--theme", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Theme folder whose templates/static override themes/zocalo.")
@click.option("--base-path", default=None, help="URL prefix of every link, e.g. /prep2023/ (default: /).")
@pass_ctx
def build(obj: Ctx, package: Path | None, output: Path | None, theme: Path | None, base_path: str | None) -> None:
    """Build the results site for one PREP package.

    PACKAGE is a corte's zip (or an inner election zip, or an unpacked folder). Without it, the newest
    package in the data folder (data/) is built. Unchanged section pages from a previous build in the same
    folder are kept as they are.

    \b
    Example:
      prepgen build
      prepgen build data/20210607_2000_PREP_CAMP.zip -o build --base-path /prep2021/
    """
    from .build import build as run_build
    from .build import newest_package

    cfg = obj.config.override(
        tema=str(theme) if theme else None,
        base_path=normalise_base_path(base_path) if base_path is not None else None,
    )
    pkg = package or newest_package(_resolve(cfg, cfg.datos))
    out = output or _resolve(cfg, cfg.salida)
    obj.say(f"prepgen build {pkg} → {out}")
    bar = None
    if not obj.quiet and sys.stderr.isatty():

        @contextlib.contextmanager
        def bar(total: int) -> Iterator[Callable[[int], None]]:
            with click.progressbar(length=total, label="  render", file=sys.stderr, show_eta=True) as b:
                yield b.update

    result = run_build(pkg, out, _site_options(cfg), progress=obj.progress, bar=bar)
    for e in result.report["elecciones"]:
        for d in e["discrepancias"]:
            click.echo(
                f"discrepancia {e['id']}: {d['campo']} publicado {d['publicado']} ≠ recuento {d['recuento']} "
                "(se publica la cifra oficial)",
                err=True,
            )
        for w in e["advertencias"]:
            obj.say(f"advertencia {e['id']}: {w}")
    obj.say(
        f"corte {result.package.corte.texto}: {result.files} files ({result.pages} pages), "
        f"{result.written} written, {result.unchanged} unchanged in {result.seconds:.2f} s"
    )
    _exit_at_once()


@main.command()
@click.argument("package", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the report as JSON.")
@pass_ctx
def validate(obj: Ctx, package: Path, as_json: bool) -> None:
    """Read and cross-check a package; print the report; write nothing.

    Exit status is 0 when the package can be published (disagreements between the summary line and the
    rows are reported, not fatal: the official summary is what gets published), 1 when it cannot.

    \b
    Example:
      prepgen validate data/20210607_2000_PREP_CAMP.zip
    """
    from .build import load_and_model, report_of

    pkg, elections, _ = load_and_model(package)
    report = report_of(pkg, elections)
    if as_json:
        click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(f"{pkg.nombre}  corte {pkg.corte.texto}  sha256 {pkg.sha256[:16]}…")
    for e in report["elecciones"]:
        click.echo(f"  {e['id']:<8} {e['nombre']:<28} {e['actas']:>7} actas  participación: {e['participacion_formula']}")
        for d in e["discrepancias"]:
            click.echo(f"    discrepancia: {d['campo']} publicado {d['publicado']} ≠ recuento {d['recuento']}")
        for w in e["advertencias"]:
            click.echo(f"    advertencia: {w}")
    click.echo("OK: the package can be published.")


@main.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--bind", default="127.0.0.1", show_default=True, help="Address to listen on (loopback by default).")
@pass_ctx
def serve(obj: Ctx, directory: Path | None, port: int, bind: str) -> None:
    """Preview a built site locally (not for production: use `prepgen config nginx`).

    \b
    Example:
      prepgen serve build --port 8000
    """
    from .serve import serve as run_serve

    root = directory or _resolve(obj.config, obj.config.salida)
    run_serve(root, bind, port, obj.config.base_path, say=obj.say)


def _target(obj: Ctx, to: str | None) -> str:
    target = to or obj.config.destino
    if not target:
        raise ConfigError("no target: pass --to s3://BUCKET/PREFIX or /path/to/webroot, or set [publicar] destino")
    return target


_to_option = click.option(
    "--to", "to", default=None, help="s3://BUCKET/PREFIX or a local web root (default: [publicar] destino)."
)
_work_option = click.option(
    "--work", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="The watcher's work dir: state, bitácora, packages, build (default: [operacion] trabajo).",
)
_gzip_option = click.option(
    "--gzip/--no-gzip", "compress", default=None,
    help="Store html/json/css/js/svg gzip-encoded on S3, as [publicar] gzip (default: plain). A web root is "
    "always written plain.",
)
_endpoint_option = click.option(
    "--endpoint-url", default=None, help="S3-compatible endpoint (SeaweedFS, MinIO, R2); default: AWS."
)


@main.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@_to_option
@_endpoint_option
@click.option("--dry-run", is_flag=True, default=False, help="Show what would be uploaded; change nothing.")
@click.option("--threads", type=click.IntRange(1, 128), default=None, help="Concurrent uploads (default 16).")
@_gzip_option
@pass_ctx
def publish(
    obj: Ctx, directory: Path | None, to: str | None, endpoint_url: str | None, dry_run: bool,
    threads: int | None, compress: bool | None,
) -> None:
    """Publish a build: changed objects first, the pointer json/main.json last.

    Credentials come from the environment / boto3's chain (never from options, never printed). A publish
    interrupted by a storage failure exits 1 with the previous corte still live; rerun it to finish.

    \b
    Example:
      prepgen publish build --to s3://resultados/prep2024 --endpoint-url http://127.0.0.1:8333
      prepgen publish build --to /var/www/prep
    """
    from .publish import publish as run_publish

    cfg = obj.config.override(destino=to, endpoint_url=endpoint_url, hilos=threads, gzip=compress)
    root = directory or _resolve(cfg, cfg.salida)
    result = run_publish(
        root, _target(obj, cfg.destino), endpoint_url=cfg.endpoint_url, dry_run=dry_run, threads=cfg.hilos,
        compress=cfg.gzip,
    )
    obj.say(str(result))


@main.command()
@_to_option
@_endpoint_option
@pass_ctx
def cortes(obj: Ctx, to: str | None, endpoint_url: str | None) -> None:
    """List the complete cortes published on a target, newest first (* = live).

    \b
    Example:
      prepgen cortes --to s3://resultados/prep2024
    """
    from .publish import list_cortes

    cfg = obj.config.override(destino=to, endpoint_url=endpoint_url)
    found = list_cortes(_target(obj, cfg.destino), endpoint_url=cfg.endpoint_url)
    if not found:
        click.echo("no complete corte published on this target yet")
    for info in found:
        click.echo(str(info))


@main.command()
@click.argument("corte")
@_to_option
@_endpoint_option
@click.option("--all-pages", is_flag=True, default=False,
              help="Restore every page of the corte (after an interrupted publish that was never rerun).")
@_work_option
@pass_ctx
def rollback(
    obj: Ctx, corte: str, to: str | None, endpoint_url: str | None, all_pages: bool, work: Path | None
) -> None:
    """Make an older complete corte live again (pages restored, then one pointer write).

    CORTE is an id as `prepgen cortes` lists it, e.g. 20210607_1320. When the watcher's work dir exists
    (--work or [operacion] trabajo), the rollback is recorded in its state and bitácora.

    \b
    Example:
      prepgen rollback 20210607_1320 --to s3://resultados/prep2024
    """
    from .publish import rollback as run_rollback
    from .watch import record_rollback

    cfg = obj.config.override(destino=to, endpoint_url=endpoint_url)
    target = _target(obj, cfg.destino)
    work_dir = work or _resolve(cfg, cfg.trabajo)
    if work is not None and not work.is_dir():
        raise ConfigError(f"{work}: no such work dir; give the watcher's --work or drop the option")
    result = run_rollback(corte, target, endpoint_url=cfg.endpoint_url, all_pages=all_pages, compress=cfg.gzip)
    obj.say(str(result))
    if work_dir is not None:
        record_rollback(cfg, work_dir, target, result)


def _operacion(obj: Ctx, to: str | None, endpoint_url: str | None, work: Path | None, **more: Any):  # noqa: ANN202
    from .watch import operacion

    cfg = obj.config.override(destino=to, endpoint_url=endpoint_url, **more)
    work_dir = work or _resolve(cfg, cfg.trabajo)
    assert work_dir is not None
    return operacion(cfg, _site_options(cfg), work=work_dir, require_process=False)


@main.command()
@click.argument("inbox", required=False, type=click.Path(file_okay=False, path_type=Path))
@_to_option
@_endpoint_option
@_work_option
@click.option("--threads", type=click.IntRange(1, 128), default=None, help="Concurrent uploads (default 16).")
@_gzip_option
@click.option("--once", is_flag=True, default=False,
              help="Look at the inbox twice (one poll apart), handle what is complete, and exit.")
@pass_ctx
def watch(
    obj: Ctx, inbox: Path | None, to: str | None, endpoint_url: str | None, work: Path | None,
    threads: int | None, compress: bool | None, once: bool,
) -> None:
    """Publish every package that lands in INBOX, newest corte last; refuse bad ones; keep a bitácora.

    Runs until SIGINT/SIGTERM (a second signal abandons the publish in flight; the previous corte stays
    live and the restart resumes it). Only packages of [proceso] entidad/anio/elecciones are accepted;
    refused ones go to INBOX/rechazados/ with a .error.txt saying why, published ones to
    INBOX/procesados/. INBOX defaults to [operacion] entrada.

    \b
    Example:
      prepgen watch /srv/sftp/prep --to s3://resultados/prep2024 --work /var/lib/prepgen
      prepgen watch --once                  # one pass, settings from prepgen.toml
    """
    from .watch import Watcher, operacion

    cfg = obj.config.override(destino=to, endpoint_url=endpoint_url, hilos=threads, gzip=compress)
    folder = inbox or _resolve(cfg, cfg.entrada)
    if folder is None:
        raise ConfigError("no inbox: pass INBOX or set [operacion] entrada in prepgen.toml")
    work_dir = work or _resolve(cfg, cfg.trabajo)
    assert work_dir is not None
    op = operacion(cfg, _site_options(cfg), work=work_dir, require_process=True)
    obj.say(f"prepgen watch {folder} → {op.target} (work dir {op.work})")
    Watcher(op, folder, say=obj.say).run(once=once)


@main.command()
@click.argument("texto", required=False)
@click.option("--quitar", is_flag=True, default=False, help="Remove the aviso (manual or automatic).")
@_to_option
@_endpoint_option
@_work_option
@pass_ctx
def aviso(
    obj: Ctx, texto: str | None, quitar: bool, to: str | None, endpoint_url: str | None, work: Path | None
) -> None:
    """Show a banner on every page (or remove it) without rebuilding the whole site.

    The live corte is re-rendered from the package kept in the work dir: only the pages above section
    level and json/main.json change (section pages show it through JavaScript). The aviso stays on later
    cortes until removed. TEXTO defaults to [operacion] aviso_texto.

    \b
    Example:
      prepgen aviso "Publicación detenida por falla de red" --to s3://resultados/prep2024
      prepgen aviso --quitar --to s3://resultados/prep2024
    """
    from .watch import Engine

    if quitar and texto is not None:
        raise click.UsageError("give TEXTO or --quitar, not both")
    if texto is not None and not texto.strip():
        raise click.UsageError("TEXTO is empty; give the aviso's text or use --quitar")
    op = _operacion(obj, to, endpoint_url, work)
    text = None if quitar else " ".join((texto or op.aviso_texto).split())
    result = Engine(op, say=obj.say).set_aviso(text, "manual")
    if result is None:
        click.echo("no aviso is shown; nothing to remove")
    elif text:
        click.echo(f"aviso shown on corte {result.corte_id}: {text}")
    else:
        click.echo(f"aviso removed on corte {result.corte_id}")


@main.command()
@click.option("--quitar", is_flag=True, default=False, help="Undo: the results are not final after all.")
@_to_option
@_endpoint_option
@_work_option
@pass_ctx
def final(obj: Ctx, quitar: bool, to: str | None, endpoint_url: str | None, work: Path | None) -> None:
    """Mark the results final: banner ([operacion] final_texto), `final: true` in json/main.json.

    Readers' pages stop polling for new cortes. Like `aviso`, only the pages above section level and
    main.json are re-rendered and published.

    \b
    Example:
      prepgen final --to s3://resultados/prep2024
    """
    from .watch import Engine

    op = _operacion(obj, to, endpoint_url, work)
    result = Engine(op, say=obj.say).set_final(not quitar)
    click.echo(f"corte {result.corte_id} {'is no longer marked final' if quitar else 'marked final'}")


@main.command()
@_work_option
@click.option("--json", "as_json", is_flag=True, default=False, help="Print the raw JSON lines.")
@pass_ctx
def bitacora(obj: Ctx, work: Path | None, as_json: bool) -> None:
    """Print the publication log of a work dir (arrivals, refusals, timings, avisos, rollbacks).

    \b
    Example:
      prepgen bitacora --work /var/lib/prepgen
      prepgen bitacora --json > memoria-tecnica.jsonl
    """
    from .bitacora import format_table, read_log

    work_dir = work or _resolve(obj.config, obj.config.trabajo)
    assert work_dir is not None
    entries = read_log(work_dir)
    if as_json:
        for e in entries:
            click.echo(orjson.dumps(e).decode())
    elif entries:
        click.echo(format_table(entries))
    else:
        click.echo("the bitácora is empty")


@main.command("config")
@click.argument("kind", type=click.Choice(["nginx", "apache"]))
@click.option("--root", default=None, help="Web root or build folder to serve (default: absolute build/).")
@click.option("--base-path", default=None, help="URL prefix the site lives under (default: [sitio] base_path).")
@click.option("--listen", default="127.0.0.1:8080", show_default=True, help="Address:port (or port) to listen on.")
@click.option("--server-name", default="_", show_default=True)
@click.option("--upstream", default=None,
              help="nginx only: act as a caching proxy (CDN stand-in) in front of this S3 URL instead of a root.")
@click.option("--frame-ancestors", default="'self'", show_default=True,
              help="Who may frame pages (embeds under /embed/ may be framed anywhere).")
@click.option("--cache-dir", default="/var/cache/nginx/prep", show_default=True, help="nginx proxy cache folder.")
@click.option("--pointer-edge-ttl", type=click.IntRange(min=0), default=1, show_default=True,
              help="nginx --upstream only: seconds the proxy may keep json/main.json (0: ask the storage every time).")
@pass_ctx
def config_cmd(
    obj: Ctx, kind: str, root: str | None, base_path: str | None, listen: str, server_name: str,
    upstream: str | None, frame_ancestors: str, cache_dir: str, pointer_edge_ttl: int,
) -> None:
    """Print a web server config that serves the site with the same headers as the S3 objects.

    Includes the institute's rule for /json/main.json (Cache-Control: no-cache), immutable caching for
    json/ and static/, security headers (CSP without unsafe-inline, frame-ancestors), gzip and rate limits.

    \b
    Example:
      prepgen config nginx --root /var/www/prep > /etc/nginx/sites-available/prep
      prepgen config nginx --upstream http://127.0.0.1:8333/resultados/prep2024/ --listen 8080
    """
    from .serverconf import server_config

    cfg = obj.config
    web_root = root or str(_resolve(cfg, cfg.salida).resolve())
    click.echo(
        server_config(
            kind, root=web_root,
            base_path=normalise_base_path(base_path) if base_path is not None else cfg.base_path,
            listen=listen, server_name=server_name, upstream=upstream, frame_ancestors=frame_ancestors,
            cache_dir=cache_dir, pointer_edge_ttl=pointer_edge_ttl,
        ),
        nl=False,
    )


@main.command()
@click.argument("outdir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--escala", type=click.Choice(["coahuila", "nacional", "nacional-mini"]), default="coahuila",
              show_default=True, help="coahuila: ~4,050 actas, GUB + DIP_LOC; nacional: ~170,000 casillas, PRES/SEN/DIP_FED.")
@click.option("--cortes", type=click.IntRange(1, 1000), default=3, show_default=True, help="Packages to write, 5 min apart.")
@click.option("--semilla", type=int, default=1, show_default=True, help="Seed: the same seed gives the same bytes.")
@pass_ctx
def simulate(obj: Ctx, outdir: Path, escala: str, cortes: int, semilla: int) -> None:
    """Write a simulacro: a deterministic sequence of PREP packages in the official format.

    Between consecutive cortes only newly captured actas change; build and publish them like real ones
    to rehearse election night.

    \b
    Example:
      prepgen simulate simulacro --escala coahuila --cortes 12 --semilla 7
      prepgen build simulacro/20230604_2055_PREP_COAH.zip
    """
    from .simulate import simulate as run_simulate

    def progress(done: int, total: int, path: Path) -> None:
        obj.say(f"  {done}/{total} {path}")

    paths = run_simulate(outdir, escala, cortes, semilla, progress=progress)
    obj.say(f"{len(paths)} packages in {outdir}")


_CONSOLE = False  # set by run(): this process is the `prepgen` command itself, not a test's CliRunner


def _exit_at_once() -> None:
    """End a `prepgen build` process that succeeded without handing its heap back object by object.

    At exit Python frees every object still alive: a national model is millions of them, ~2–3 s of one
    core after the last line is printed, which a cold build (or a CI job waiting for it) only waits for.
    Nothing is left to flush or join by then (the build's threads and workers are done; see build_model).
    mypy ends the same way (``util.hard_exit``). Under CliRunner (the tests) this returns.
    """
    if _CONSOLE:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def run() -> None:  # pragma: no cover - console entry
    global _CONSOLE
    _CONSOLE = True
    main(prog_name="prepgen")


if __name__ == "__main__":  # pragma: no cover
    run()
