"""Election night: watch the inbox, build and publish each corte, refuse bad input, avisos, bitácora.

Everything the operation needs to survive a restart lives in the work dir (``[operacion] trabajo``):

    trabajo/
      estado.json      state: processed SHA-256s, published cortes and their packages, live corte, aviso,
                       final, and the publish in flight (``pendiente``). Replaced atomically.
      bitacora.jsonl   append-only publication log (prepgen.bitacora)
      build/           persistent build folder: section stamps stay incremental across cortes, and the
                       publish resume journal lives in it
      paquetes/<sha>/  every published package (an aviso re-renders the live corte from it)
      entrada/         the copy of the package being looked at (never read in the inbox itself)
      .bloqueo         flock held by whoever changes state or build/ (the watcher per cycle, aviso, final)
      .vigilante       flock held by a running watcher for its lifetime (one watcher per work dir)

Order of one corte: copy → SHA-256 → checks → read + model → build → ``pendiente`` saved → publish
(pointer last) → state saved → inbox file moved to ``procesados/``. A kill anywhere before the pointer
leaves the previous corte live; at restart a ``pendiente`` is published again from build/ (its journal
skips what was already confirmed) before anything else happens.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import os
import select
import shutil
import signal
import struct
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

from .bitacora import Bitacora, now_iso
from .build import BuildCache, BuildResult, build_model, load_and_model, release_heap, report_of
from .config import Config
from .errors import BuildError, ConfigError, PackageError, PrepgenError, PublishError
from .publish import (
    POINTER_PATH,
    EarlyUploads,
    LiveRecord,
    PublishResult,
    StorageError,
    open_storage,
    publish,
)
from .reader import PACKAGE_NAME_RE, Limits, sha256_file
from .render import SiteOptions
from .writer import META_DIR

STATE_NAME = "estado.json"
REFUSED_DIR = "rechazados"
DONE_DIR = "procesados"
# Names SFTP clients and editors give files still being written; never a package.
TEMP_SUFFIXES = (".part", ".filepart", ".tmp", ".partial", ".crdownload", ".swp")
LOCK_WAIT_SECONDS = 600.0


# --------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Operacion:
    """Everything the watcher and the aviso/final commands need, resolved from config + options."""

    work: Path
    target: str
    endpoint_url: str | None = None
    threads: int = 16
    compress: bool = False  # [publicar] gzip
    site: SiteOptions = field(default_factory=SiteOptions)
    aviso_texto: str = Config.aviso_texto
    final_texto: str = Config.final_texto
    entidad: str | None = None
    anio: int | None = None
    elecciones: tuple[str, ...] = ()
    silencio_segundos: float = 15 * 60.0
    sondeo_segundos: float = 0.5
    incompleto_segundos: float = 60.0
    inicio: datetime | None = None
    fin: datetime | None = None
    tz: Any = UTC

    @classmethod
    def from_config(cls, cfg: Config, *, work: Path, target: str, site: SiteOptions) -> Operacion:
        tz: Any
        try:
            tz = ZoneInfo(cfg.zona_horaria)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"[sitio] zona_horaria {cfg.zona_horaria!r} is not a known time zone") from None
        for key in ("periodo_minutos", "periodos_sin_corte", "sondeo_segundos", "incompleto_segundos"):
            value = getattr(cfg, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"[operacion] {key} must be a positive number, not {value!r}")
        return cls(
            work=work,
            target=target,
            endpoint_url=cfg.endpoint_url,
            threads=cfg.hilos,
            compress=cfg.gzip,
            site=site,
            aviso_texto=cfg.aviso_texto,
            final_texto=cfg.final_texto,
            entidad=cfg.entidad.upper() if cfg.entidad else None,
            anio=int(cfg.anio) if cfg.anio is not None else None,
            elecciones=tuple(cfg.elecciones),
            silencio_segundos=float(cfg.periodo_minutos) * 60.0 * int(cfg.periodos_sin_corte),
            sondeo_segundos=float(cfg.sondeo_segundos),
            incompleto_segundos=float(cfg.incompleto_segundos),
            inicio=_parse_window(cfg.inicio, "inicio", tz),
            fin=_parse_window(cfg.fin, "fin", tz),
            tz=tz,
        )


def _parse_window(value: str | None, key: str, tz: Any) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"[operacion] {key} {value!r} is not an ISO-8601 date-time, e.g. 2024-06-02T18:00") from None
    return when if when.tzinfo else when.replace(tzinfo=tz)


# --------------------------------------------------------------------------------------------- work dir


def _empty_state() -> dict[str, Any]:
    return {
        "version": 1,
        "destino": None,
        "endpoint_url": None,
        "procesados": {},  # sha256 -> {archivo, corte}: packages published (duplicates are skipped)
        "publicados": {},  # corte_id -> {archivo, sha256, paquete}: what an aviso re-renders from
        "corte_vivo": None,  # the corte this work dir last made live (a rollback updates it)
        "corte_max": None,  # the newest corte ever published: nothing older is accepted
        "ultimo_corte_en": None,  # wall clock of the last new corte (silence for the automatic aviso)
        "aviso": None,  # {texto, origen: manual|automatico, desde}
        "final": False,
        "pendiente": None,  # a build in build/ that must reach the target before anything else
        "construyendo": False,  # build/ may hold a half-written build
    }


class WorkDir:
    def __init__(self, path: Path, tz: Any = UTC) -> None:
        self.path = Path(path)
        self.state_path = self.path / STATE_NAME
        self.build = self.path / "build"
        self.packages = self.path / "paquetes"
        self.incoming = self.path / "entrada"
        self.log = Bitacora(self.path, tz)

    @property
    def exists(self) -> bool:
        return self.state_path.exists()

    def load(self) -> dict[str, Any]:
        state = _empty_state()
        try:
            raw = orjson.loads(self.state_path.read_bytes())
        except FileNotFoundError:
            return state
        except orjson.JSONDecodeError:
            raise ConfigError(
                f"{self.state_path}: damaged state file; restore it from a backup or move the work dir aside"
            ) from None
        state.update(raw)
        return state

    def save(self, state: dict[str, Any]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_name(STATE_NAME + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(orjson.dumps(state, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.state_path)  # a kill leaves the old state or the new one, never a mix

    @contextlib.contextmanager
    def locked(self, timeout: float = LOCK_WAIT_SECONDS, name: str = ".bloqueo") -> Iterator[None]:
        """flock on a file in the work dir; released by the kernel if the holder dies."""
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / name, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        what = "a watcher is already running on" if name == ".vigilante" else "another prepgen holds"
                        raise ConfigError(
                            f"{self.path}: {what} this work dir; wait for it or use another --work"
                        ) from None
                    time.sleep(0.1)
            yield
        finally:
            os.close(fd)


# --------------------------------------------------------------------------------------------- engine


class Refused(Exception):
    """The package is not publishable; it goes to rechazados/ with this one-line reason."""


class Retry(Exception):
    """Not the package's fault (storage down…): leave it in the inbox and try again later."""


@dataclass
class Candidate:
    path: Path  # in the inbox
    copy: Path  # in the work area
    sha256: str
    size: int
    llegada: str  # ISO: when the upload completed (the file's mtime)


def _now(tz: Any) -> datetime:
    return datetime.now(tz)


NACIONAL = "NACIONAL"  # [proceso] entidad of a federal PREP, whose package names carry no scope


class Engine:
    """State transitions shared by the watcher and the aviso / final / rollback commands."""

    def __init__(self, op: Operacion, say: Callable[[str], None] | None = None) -> None:
        self.op = op
        self.wd = WorkDir(op.work, op.tz)
        self.log = self.wd.log
        self.say = say or (lambda text: None)
        self._storage: Any = None
        # Kept for the life of the process: corte after corte, only what changed is parsed and rendered.
        self.cache = BuildCache()
        # The record of the corte this process last left live: the next publish diffs against it instead of
        # downloading it again, as long as the live pointer is still the one that publish wrote.
        self.live: LiveRecord | None = None

    # --- target -----------------------------------------------------------------------------------
    def storage(self) -> Any:
        if self._storage is None:
            self._storage = open_storage(
                self.op.target, endpoint_url=self.op.endpoint_url, threads=self.op.threads, compress=self.op.compress
            )
        return self._storage

    def live_corte(self) -> str | None:
        """The corte the live pointer names (None: nothing published yet)."""
        try:
            raw = self.storage().get(POINTER_PATH)
        except StorageError as exc:
            raise PublishError(
                f"{self.op.target}: reading the live pointer failed ({exc.reason}); nothing was changed"
            ) from None
        if raw is None:
            return None
        try:
            value = orjson.loads(raw).get("corte_id")
        except (orjson.JSONDecodeError, AttributeError):
            return None
        return value if isinstance(value, str) else None

    def check_target(self, state: dict[str, Any]) -> None:
        if state["destino"] is None:
            state["destino"] = self.op.target
            state["endpoint_url"] = self.op.endpoint_url
        elif state["destino"] != self.op.target:
            raise ConfigError(
                f"{self.wd.path}: this work dir publishes to {state['destino']}, not {self.op.target}; "
                "use another --work for another target"
            )

    # --- building and publishing -------------------------------------------------------------------
    def options(self, state: dict[str, Any]) -> SiteOptions:
        aviso = state["aviso"]["texto"] if state["aviso"] else None
        return replace(self.op.site, aviso=aviso, final=bool(state["final"]), final_texto=self.op.final_texto)

    def build_and_publish(
        self, state: dict[str, Any], package: Path, pending: dict[str, Any], modelled: Any = None
    ) -> tuple[BuildResult, PublishResult]:
        """Build ``package`` into build/ with the state's aviso/final, then publish it (pointer last).

        The build's leftovers (see build_model's ``deferred``) are the caller's: ``built.cleanup()`` once
        the corte is recorded as live. On failure they are cleaned up here."""
        state["construyendo"] = True
        state["pendiente"] = None
        self.wd.save(state)
        built = None
        try:
            pkg, elections, timings = modelled or load_and_model(package, cache=self.cache)
            built, early = self.build(pkg, elections, timings, state)
            state["construyendo"] = False
            state["pendiente"] = pending
            self.wd.save(state)
            result = self.publish_pending(state, built.manifest, early.finish() if early else None, built.settle)
            built.settle()
            return built, result
        except BaseException:
            if built is not None:
                built.cleanup()
            else:
                release_heap(collect=True)
            raise

    def build(
        self, package: Any, elections: list[Any], timings: dict[str, float], state: dict[str, Any]
    ) -> tuple[BuildResult, EarlyUploads | None]:
        """Build a modelled package into build/ (leftovers deferred, see build_model), with the early uploads
        under way if they are on: the caller hands ``early.finish()`` to publish_pending."""
        early = self.early_uploads()
        try:
            built = build_model(
                package, elections, timings, self.wd.build, self.options(state), cache=self.cache, deferred=True,
                on_file=early.offer if early else None,
            )
        except BaseException:
            if early is not None:
                early.abort()
            raise
        return built, early

    def early_uploads(self) -> EarlyUploads | None:
        """Uploads of the next build's new content-addressed files as they are written (None when the
        live record is not in memory: after a restart, the first corte, a pointer changed meanwhile).

        Off unless ``PREPGEN_EARLY_UPLOADS=1``: on the bench box the storage server shares the build's two
        cores, and uploading during the render made the national corte slower (34.1 s against 29.6 s), not
        faster. Where the storage is remote the uploads would overlap network waits instead; not measured."""
        if os.environ.get("PREPGEN_EARLY_UPLOADS", "").strip() != "1":
            return None
        return EarlyUploads.start(self.wd.build, self.storage(), self.live, self.op.threads)

    def publish_pending(
        self,
        state: dict[str, Any],
        manifest: dict[str, Any] | None = None,
        early: dict[str, str] | None = None,
        settle: Callable[[], None] | None = None,
    ) -> PublishResult:
        """Publish build/. ``manifest``: the one the build just wrote there (None after a restart: publish
        reads build/'s manifest file); ``early``: what EarlyUploads put on the target during that build;
        ``settle``: the build's BuildResult.settle (its state and manifest files are written meanwhile)."""
        try:
            # The process's one storage: its client and kept-alive connections serve corte after corte
            # (a new boto3 client is ~0.3 CPU-s before the first PUT; credentials are read on each PUT).
            result = publish(
                self.wd.build, self.storage(), threads=self.op.threads, manifest=manifest, live=self.live,
                early=early, before_record=settle,
            )
        except PublishError as exc:
            raise Retry(exc.message) from None
        self.live = result.live
        return result

    def recover(self, state: dict[str, Any]) -> None:
        """After a crash: forget a half-written build, finish a publish that was in flight."""
        if state["construyendo"]:
            # Files of the killed build may differ from build/'s manifest; without it the next build
            # rewrites every file. Section stamps live in state.json and survive.
            (self.wd.build / META_DIR / "manifest.json").unlink(missing_ok=True)
            state["construyendo"] = False
            self.wd.save(state)
        shutil.rmtree(self.wd.incoming, ignore_errors=True)
        pending = state["pendiente"]
        if not pending:
            return
        live = self.live_corte()
        newest = max(filter(None, (live, state["corte_max"])), default=None)
        manifest = _read_json(self.wd.build / META_DIR / "manifest.json")
        if manifest.get("corte_id") != pending["corte"] or (newest and pending["corte"] < newest):
            # The build no longer matches, or something newer went live meanwhile: drop it. A corte's inbox
            # file is still in the inbox and gets processed again from scratch.
            self.log.log("error", archivo=pending.get("archivo"), motivo="publicación pendiente descartada")
            state["pendiente"] = None
            self.wd.save(state)
            return
        self.log.log("reanudacion", corte=pending["corte"], archivo=pending.get("archivo"), tipo=pending["tipo"])
        self.say(f"resuming the interrupted publish of corte {pending['corte']}")
        result = self.publish_pending(state)
        self.finish(state, pending, result, build_seconds=None)

    def finish(
        self, state: dict[str, Any], pending: dict[str, Any], result: PublishResult, build_seconds: float | None
    ) -> None:
        """The pointer flipped: record it, move the inbox file away, log the publication."""
        flipped = now_iso(self.op.tz)
        corte = pending["corte"]
        state["pendiente"] = None
        state["corte_vivo"] = corte
        if pending["tipo"] == "corte":
            state["procesados"][pending["sha256"]] = {"archivo": pending["archivo"], "corte": corte}
            state["publicados"][corte] = {
                "archivo": pending["archivo"],
                "sha256": pending["sha256"],
                "paquete": pending["paquete"],
            }
            if state["corte_max"] is None or corte >= state["corte_max"]:
                state["corte_max"] = corte
            state["ultimo_corte_en"] = flipped
        self.wd.save(state)
        origin = pending.get("origen")
        if origin and Path(origin).is_file() and sha256_file(Path(origin)) == pending.get("sha256"):
            _move_unique(Path(origin), Path(origin).parent / DONE_DIR)
        latency = None
        if pending.get("llegada"):
            latency = round(
                (datetime.fromisoformat(flipped) - datetime.fromisoformat(pending["llegada"])).total_seconds(), 3
            )
        self.log.log(
            "publicacion",
            tipo=pending["tipo"],
            archivo=pending.get("archivo"),
            corte=corte,
            segundos=round(result.seconds, 3),
            construccion_segundos=build_seconds,
            objetos=result.uploaded + result.record_objects,
            bytes=result.uploaded_bytes,
            reanudados=result.resumed,
            sin_cambios=result.skipped,
            puntero=flipped,
            latencia_segundos=latency,
        )
        self.say(str(result))

    # --- banner -----------------------------------------------------------------------------------
    def live_package(self, state: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The live corte and the kept package it was built from (checked before any state changes)."""
        live = self.live_corte()
        if live is None:
            raise ConfigError(f"{self.op.target}: nothing is published there yet; publish a corte first")
        entry = state["publicados"].get(live)
        if entry is None or not (self.wd.path / entry["paquete"]).is_file():
            raise ConfigError(
                f"{self.op.target}: the live corte {live} was not published from {self.wd.path}; "
                "run the command with the watcher's --work"
            )
        return live, entry

    def republish_live(self, state: dict[str, Any], tipo: str) -> PublishResult:
        """Re-render the live corte from its kept package with the state's aviso/final and publish it.

        Section pages keep their bytes (the renderer reuses them: the aviso reaches them through
        main.json), so only the pages above section level and main.json are uploaded."""
        live, entry = self.live_package(state)
        package = self.wd.path / entry["paquete"]
        pending = {"tipo": tipo, "corte": live, "archivo": entry["archivo"], "sha256": entry["sha256"]}
        try:
            built, result = self.build_and_publish(state, package, pending)
        except Retry as exc:
            raise PublishError(str(exc)) from None
        pending_done = dict(pending)
        self.finish(state, pending_done, result, build_seconds=round(built.seconds, 3))
        built.cleanup()
        return result

    def set_aviso(self, texto: str | None, origen: str) -> PublishResult | None:
        """Show (texto) or remove (None) the banner; None when there was no aviso to remove."""
        with self.wd.locked():
            return self._set_aviso(texto, origen)

    def _set_aviso(self, texto: str | None, origen: str) -> PublishResult | None:
        state = self.wd.load()
        self.check_target(state)
        self.settle(state)
        before = state["aviso"]
        if texto is None and before is None:
            return None
        self.live_package(state)
        state["aviso"] = {"texto": texto, "origen": origen, "desde": now_iso(self.op.tz)} if texto else None
        self.wd.save(state)
        result = self.republish_live(state, "aviso")
        if texto:
            self.log.log("aviso", accion="activado", origen=origen, texto=texto, corte=result.corte_id)
        else:
            self.log.log(
                "aviso", accion="retirado", origen=(before or {}).get("origen", origen), corte=result.corte_id
            )
        return result

    def set_final(self, final: bool) -> PublishResult:
        with self.wd.locked():
            return self._set_final(final)

    def _set_final(self, final: bool) -> PublishResult:
        state = self.wd.load()
        self.check_target(state)
        self.settle(state)
        self.live_package(state)
        state["final"] = final
        self.wd.save(state)
        result = self.republish_live(state, "final")
        self.log.log("final", accion="marcado" if final else "retirado", corte=result.corte_id)
        return result

    def settle(self, state: dict[str, Any]) -> None:
        """Finish what a killed or failed run left in flight before changing anything else."""
        try:
            self.recover(state)
        except Retry as exc:
            raise PublishError(str(exc)) from None

    def record_rollback(self, corte: str, previous: str | None, pages: int) -> None:
        state = self.wd.load()
        if state["pendiente"]:
            # The operator chose this corte: a publish left in flight must not undo it at the next cycle.
            self.log.log("error", archivo=state["pendiente"].get("archivo"),
                         motivo="publicación pendiente descartada por el rollback")
            state["pendiente"] = None
        state["corte_vivo"] = corte
        self.wd.save(state)
        self.log.log("rollback", corte=corte, anterior=previous, paginas=pages)


# --------------------------------------------------------------------------------------------- watcher


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    stable_since: float | None = None  # monotonic time the file was first seen unchanged


class _InboxEvents:
    """What wakes the watcher between looks at the inbox: Linux inotify, and stop() or a signal.

    A package renamed into the inbox (rsync, rclone, WinSCP and browsers write under a temporary name and
    rename when done; so does the institute's `mv` after a copy) is whole the moment its name appears, so
    it is taken at the first look instead of waiting ``sondeo_segundos`` for a second one; a file written
    in place still needs two equal looks, the first of them right when it is closed. Polling stays the
    safety net: without inotify (another OS, a network mount whose writes this kernel never sees, a full
    event queue) the watcher behaves as before.
    """

    IN_CLOSE_WRITE = 0x08
    IN_MOVED_TO = 0x80
    _HEADER = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len; then len bytes of name

    def __init__(self, inbox: Path) -> None:
        self.moved: set[str] = set()  # names renamed into the inbox since the last take_moved()
        self._wake_r, self._wake_w = os.pipe()
        for fd in (self._wake_r, self._wake_w):
            os.set_blocking(fd, False)
        self._fd = self._inotify(inbox)

    @property
    def active(self) -> bool:
        return self._fd >= 0

    def _inotify(self, inbox: Path) -> int:
        if not sys.platform.startswith("linux"):
            return -1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        except (OSError, AttributeError):
            return -1
        if fd < 0:
            return -1
        if libc.inotify_add_watch(fd, os.fsencode(inbox), self.IN_MOVED_TO | self.IN_CLOSE_WRITE) < 0:
            os.close(fd)
            return -1
        return fd

    def wait(self, timeout: float) -> None:
        """Sleep up to ``timeout`` seconds, less if a file lands or wake() is called."""
        fds = [self._wake_r, *([self._fd] if self._fd >= 0 else [])]
        ready, _, _ = select.select(fds, [], [], timeout)
        if self._wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(self._wake_r, 512):
                    pass
        if self._fd in ready:
            self._drain()

    def _drain(self) -> None:
        while True:
            try:
                buf = os.read(self._fd, 64 * 1024)
            except BlockingIOError:
                return
            at = 0
            while at + self._HEADER.size <= len(buf):
                _, mask, _, length = self._HEADER.unpack_from(buf, at)
                name = buf[at + self._HEADER.size : at + self._HEADER.size + length].rstrip(b"\0")
                at += self._HEADER.size + length
                if mask & self.IN_MOVED_TO and name:
                    self.moved.add(os.fsdecode(name))

    def take_moved(self) -> set[str]:
        moved, self.moved = self.moved, set()
        return moved

    def wake(self) -> None:
        """Safe from a signal handler and from another thread."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"w")

    def close(self) -> None:
        for fd in (self._fd, self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._fd = self._wake_r = self._wake_w = -1


class Watcher:
    """``prepgen watch``: poll the inbox; one corte at a time, in corte order; never stop on one failure."""

    def __init__(self, op: Operacion, inbox: Path, say: Callable[[str], None] | None = None) -> None:
        self.op = op
        self.inbox = Path(inbox)
        self.engine = Engine(op, say)
        self.wd = self.engine.wd
        self.log = self.engine.log
        self.say = self.engine.say
        self.seen: dict[str, _Seen] = {}
        self.stopping = threading.Event()
        self.events: _InboxEvents | None = None  # while run() runs
        self._signals = 0
        self._retry_at = 0.0
        self._retry_delay = 0.0
        self._aviso_blocked = False

    # --- lifecycle --------------------------------------------------------------------------------
    def stop(self) -> None:
        self.stopping.set()
        if self.events is not None:
            self.events.wake()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signals += 1
        self.stop()
        if self._signals > 1:
            # Second Ctrl-C: abandon the publish in flight. It is pointer-last, so the previous corte stays
            # live, and the restart resumes it from the journal.
            raise KeyboardInterrupt

    def run(self, once: bool = False) -> None:
        if not self.inbox.is_dir():
            raise ConfigError(f"{self.inbox}: inbox folder not found; create it or pass the right INBOX")
        if self.inbox.resolve() == self.wd.path.resolve() or self.wd.path.resolve().is_relative_to(
            self.inbox.resolve()
        ):
            raise ConfigError(f"{self.wd.path}: the work dir must not be inside the inbox {self.inbox}")
        with self.wd.locked(timeout=0, name=".vigilante"):
            restarted = self.wd.exists
            with self.wd.locked():
                state = self.wd.load()
                self.engine.check_target(state)
                self.wd.save(state)
            self.events = None if once else _InboxEvents(self.inbox)
            self.log.log(
                "inicio", entrada=str(self.inbox), destino=self.op.target, reinicio=restarted,
                pendiente=(state["pendiente"] or {}).get("corte"), pid=os.getpid(),
                eventos=bool(self.events and self.events.active),
            )
            previous = self._install_signals()
            reason = "terminado"
            try:
                self._loop(once)
                reason = "señal" if self._signals else ("una pasada" if once else "detenido")
            except KeyboardInterrupt:
                reason = "interrumpido"
            finally:
                self._restore_signals(previous)
                if self.events is not None:
                    self.events.close()
                    self.events = None
                self.log.log("fin", motivo=reason, pid=os.getpid())

    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}  # tests run the watcher in a thread and stop it with stop()
        return {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    @staticmethod
    def _restore_signals(previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def _loop(self, once: bool) -> None:
        first = True
        while not self.stopping.is_set():
            if once and not first:
                # A one-shot run needs two looks at the inbox to tell a finished upload from one in progress.
                self.stopping.wait(self.op.sondeo_segundos)
                self.cycle(final_pass=True)
                return
            self.cycle()
            first = False
            if self.events is not None:
                self.events.wait(self.op.sondeo_segundos)
            elif not once:
                self.stopping.wait(self.op.sondeo_segundos)

    # --- one cycle --------------------------------------------------------------------------------
    def cycle(self, final_pass: bool = False) -> None:
        ready = self._scan(final_pass)
        if time.monotonic() < self._retry_at:
            return
        try:
            with self.wd.locked():
                state = self.wd.load()
                self.engine.recover(state)
                for path, stable_for in ready:
                    if self.stopping.is_set():
                        break
                    self._handle(state, path, stable_for, final_pass)
                self._silence(state)
            self._retry_delay = 0.0
        except Exception as exc:  # noqa: BLE001 - storage down, lock busy, inbox unmounted: retry later
            # The inbox file stays, the pendiente stays; back off up to a minute.
            message = exc.message if isinstance(exc, PrepgenError) else f"{type(exc).__name__}: {exc}"
            self.log.log("error", motivo=message)
            self.say(f"error: {message}")
            self._retry_delay = min(60.0, max(self.op.sondeo_segundos, self._retry_delay * 2 or 1.0))
            self._retry_at = time.monotonic() + self._retry_delay

    def _scan(self, final_pass: bool) -> list[tuple[Path, float]]:
        """Files whose size and mtime did not change since the last look, in corte order."""
        now = time.monotonic()
        current: dict[str, _Seen] = {}
        ready: list[tuple[Path, float]] = []
        moved = self.events.take_moved() if self.events is not None else set()
        for entry in os.scandir(self.inbox):
            name = entry.name
            if name.startswith((".", "~")) or name.lower().endswith(TEMP_SUFFIXES):
                continue
            if not entry.is_file(follow_symlinks=False):
                if entry.is_symlink():
                    current[name] = _Seen(0, 0, now)
                    ready.append((Path(entry.path), 0.0))
                continue
            st = entry.stat(follow_symlinks=False)
            before = self.seen.get(name)
            seen = _Seen(st.st_size, st.st_mtime_ns)
            if before and (before.size, before.mtime_ns) == (seen.size, seen.mtime_ns):
                seen.stable_since = before.stable_since or now
                ready.append((Path(entry.path), now - seen.stable_since))
            elif before is None and name in moved:
                seen.stable_since = now  # renamed in whole (see _InboxEvents): no second look needed
                ready.append((Path(entry.path), 0.0))
            current[name] = seen
        self.seen = current
        return sorted(ready, key=lambda item: (_name_corte(item[0].name) or "", item[0].name))

    def _handle(self, state: dict[str, Any], path: Path, stable_for: float, final_pass: bool) -> None:
        name = path.name
        cand: Candidate | None = None
        if not path.is_symlink() and not path.is_file():
            return  # moved away meanwhile (e.g. by the resumed publish that finished it)
        try:
            if path.is_symlink():
                raise Refused("es un enlace simbólico, no un archivo; súbalo como archivo normal")
            m = PACKAGE_NAME_RE.match(name.split(".")[0])
            if not m or not name.lower().endswith(".zip"):
                raise Refused(
                    "el nombre no es el de un paquete PREP (se espera AAAAMMDD_HHMM_PREP_<ENTIDAD>.zip)"
                )
            cand = self._copy(path)
            if cand is None:
                return  # changed while copying: look again next cycle
            if not _opens_as_zip(cand.copy):
                if final_pass or stable_for >= self.op.incompleto_segundos:
                    raise Refused(
                        "no es un zip legible (truncado o no es zip); espere a que termine la carga o "
                        "pida al instituto que lo reenvíe"
                    )
                cand.copy.unlink(missing_ok=True)
                return  # perhaps an upload that paused: wait
            self.log.log("llegada", archivo=name, sha256=cand.sha256, bytes=cand.size, recibido=cand.llegada)
            done = state["procesados"].get(cand.sha256)
            if done:
                _move_unique(path, self.inbox / DONE_DIR)
                self.log.log("duplicado", archivo=name, sha256=cand.sha256, igual_a=done["archivo"], corte=done["corte"])
                self.say(f"{name}: already published as {done['archivo']}; skipped")
                return
            self._process(state, cand, m)
        except Refused as exc:
            self._refuse(path, str(exc), cand)
        except (Retry, PublishError):
            raise
        except PrepgenError as exc:
            self._refuse(path, exc.message, cand)
        except Exception as exc:  # noqa: BLE001 - one bad package must never stop election night
            self._refuse(path, f"error interno al procesarlo ({type(exc).__name__}: {exc}); repórtelo", cand)
        finally:
            if cand is not None:
                cand.copy.unlink(missing_ok=True)

    def _copy(self, path: Path) -> Candidate | None:
        """Stream the inbox file into the work area (size-capped), hashing it on the way."""
        self.wd.incoming.mkdir(parents=True, exist_ok=True)
        copy = self.wd.incoming / path.name
        cap = Limits().max_total_bytes
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as src:
                before = os.fstat(src.fileno())
                if before.st_size > cap:
                    raise Refused(f"{before.st_size} bytes, over the {cap}-byte cap for a package")
                with open(copy, "wb") as dst:
                    for chunk in iter(lambda: src.read(1 << 20), b""):
                        digest.update(chunk)
                        dst.write(chunk)
                        if dst.tell() > cap:
                            raise Refused(f"over the {cap}-byte cap for a package")
                after = os.fstat(src.fileno())
        except FileNotFoundError:
            copy.unlink(missing_ok=True)
            return None
        except BaseException:
            copy.unlink(missing_ok=True)
            raise
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            copy.unlink(missing_ok=True)
            return None
        llegada = datetime.fromtimestamp(after.st_mtime, self.op.tz).isoformat(timespec="milliseconds")
        return Candidate(path, copy, digest.hexdigest(), after.st_size, llegada)

    def _process(self, state: dict[str, Any], cand: Candidate, m: Any) -> None:
        op = self.op
        name = cand.path.name
        name_corte = f"{m['fecha']}_{m['hora']}"
        scope = (m["resto"] or "").upper()
        # INE's federal packages carry no scope in their name (20240603_2005_PREP.zip): entidad = "NACIONAL".
        expected = "" if op.entidad == NACIONAL else op.entidad
        if op.entidad and scope != expected:
            raise Refused(
                f"es de {scope or 'ámbito nacional'}, este sitio publica {op.entidad} ([proceso] entidad)"
            )
        if op.anio and m["fecha"][:4] != str(op.anio):
            raise Refused(f"es de {m['fecha'][:4]}, este sitio publica {op.anio} ([proceso] anio)")
        newest = max(filter(None, (self.engine.live_corte(), state["corte_max"])), default=None)
        if newest and name_corte < newest:
            raise Refused(f"el corte {name_corte} es anterior al corte {newest} ya publicado; no se publica")
        try:
            modelled = load_and_model(cand.copy, cache=self.engine.cache)
        except (PackageError, BuildError) as exc:
            raise Refused(exc.message.replace(str(cand.copy), name)) from None
        package, elections, _ = modelled
        codes = tuple(e.codigo for e in elections)
        try:
            if package.corte.id != name_corte:
                raise Refused(
                    f"el nombre dice corte {name_corte} pero el contenido es del corte {package.corte.id}"
                )
            if op.elecciones and sorted(codes) != sorted(op.elecciones):
                raise Refused(
                    f"trae las elecciones {', '.join(codes)}; este sitio publica {', '.join(op.elecciones)} "
                    "([proceso] elecciones)"
                )
        except Refused:
            release_heap()  # load_and_model froze it for a build that will not happen
            raise
        report = report_of(package, elections)
        discrepancias = [{"eleccion": e["id"], **d} for e in report["elecciones"] for d in e["discrepancias"]]
        advertencias = [f"{e['id']}: {w}" for e in report["elecciones"] for w in e["advertencias"]]
        self.log.log(
            "validacion", archivo=name, corte=package.corte.id, resultado="ok",
            discrepancias=discrepancias, advertencias=advertencias,
        )
        keep = self.wd.packages / cand.sha256[:16] / name
        keep.parent.mkdir(parents=True, exist_ok=True)
        os.replace(cand.copy, keep)
        if state["aviso"] and state["aviso"]["origen"] == "automatico":
            # A corte arrived: the silence is over. A manual aviso is the operator's and stays.
            state["aviso"] = None
            self.log.log("aviso", accion="retirado", origen="automatico", corte=package.corte.id)
        pending = {
            "tipo": "corte",
            "corte": package.corte.id,
            "archivo": name,
            "sha256": cand.sha256,
            "paquete": keep.relative_to(self.wd.path).as_posix(),
            "origen": str(cand.path.resolve()),
            "llegada": cand.llegada,
        }
        self.say(f"{name}: corte {package.corte.texto}, building")
        t = time.monotonic()
        state["construyendo"] = True
        state["pendiente"] = None
        self.wd.save(state)
        try:
            built, early = self.engine.build(package, elections, modelled[2], state)
        except BuildError as exc:
            release_heap(collect=True)
            state["construyendo"] = False
            self.wd.save(state)
            raise Refused(exc.message) from None
        build_seconds = round(time.monotonic() - t, 3)
        self.log.log(
            "construccion", archivo=name, corte=package.corte.id, segundos=build_seconds,
            archivos=built.files, escritos=built.written, sin_cambios=built.unchanged,
            # Per stage (leer and modelo ran before the build, while the package was validated): where a slow
            # corte's seconds went, read from the log after the night.
            etapas={stage: round(seconds, 3) for stage, seconds in built.timings.items()},
        )
        state["construyendo"] = False
        state["pendiente"] = pending
        self.wd.save(state)
        # The build's leftovers (see build_model's ``deferred``) wait until the corte is live and recorded.
        try:
            result = self.engine.publish_pending(
                state, built.manifest, early.finish() if early else None, built.settle
            )
            built.settle()  # publish calls it before the record; not when there was nothing to upload
        except BaseException:
            built.cleanup()
            raise
        self.engine.finish(state, pending, result, build_seconds)
        built.cleanup()

    def _refuse(self, path: Path, reason: str, cand: Candidate | None) -> None:
        reason = " ".join(reason.split())  # one line, whatever the exception said
        moved = _move_unique(path, self.inbox / REFUSED_DIR)
        if moved is not None:
            moved.with_name(moved.name + ".error.txt").write_text(reason + "\n", encoding="utf-8")
        self.log.log("rechazo", archivo=path.name, sha256=cand.sha256 if cand else None, motivo=reason)
        self.say(f"{path.name}: refused: {reason}")

    # --- automatic aviso --------------------------------------------------------------------------
    def _silence(self, state: dict[str, Any]) -> None:
        if state["final"] or state["corte_vivo"] is None or not state["ultimo_corte_en"]:
            return
        if state["aviso"]:
            return  # one banner at a time; a manual aviso is never replaced
        now = _now(self.op.tz)
        if (self.op.inicio and now < self.op.inicio) or (self.op.fin and now > self.op.fin):
            return
        since = datetime.fromisoformat(state["ultimo_corte_en"])
        if self.op.inicio and since < self.op.inicio:
            since = self.op.inicio  # silence only counts inside the operation window
        silent = (now - since).total_seconds()
        if silent < self.op.silencio_segundos:
            return
        try:
            live, _ = self.engine.live_package(state)
        except ConfigError as exc:
            if not self._aviso_blocked:
                self.log.log("error", motivo=f"aviso automático no publicado: {exc.message}")
            self._aviso_blocked = True  # e.g. a corte published by someone else is live: say it once
            return
        self._aviso_blocked = False
        state["aviso"] = {"texto": self.op.aviso_texto, "origen": "automatico", "desde": now_iso(self.op.tz)}
        self.wd.save(state)
        # Logged before publishing: if storage is down, the pendiente carries it out later.
        self.log.log(
            "aviso", accion="activado", origen="automatico", texto=self.op.aviso_texto,
            corte=live, silencio_segundos=round(silent, 1),
        )
        self.engine.republish_live(state, "aviso")


# --------------------------------------------------------------------------------------------- helpers


def _name_corte(name: str) -> str | None:
    m = PACKAGE_NAME_RE.match(name.split(".")[0])
    return f"{m['fecha']}_{m['hora']}" if m else None


def _opens_as_zip(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path):
            return True
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False


def _move_unique(path: Path, folder: Path) -> Path | None:
    """Move into folder without overwriting an earlier file of the same name (name.2.zip, …)."""
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    n = 1
    while target.exists() or target.with_name(target.name + ".error.txt").exists():
        n += 1
        stem, dot, ext = path.name.partition(".")
        target = folder / f"{stem}.{n}{dot}{ext}"
    try:
        os.replace(path, target)
    except FileNotFoundError:
        return None
    return target


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def operacion(
    cfg: Config, site: SiteOptions, *, work: Path, require_process: bool = False
) -> Operacion:
    """Settings for a command on a work dir: options/config first, then what the work dir remembers."""
    state = WorkDir(work).load() if (work / STATE_NAME).exists() else _empty_state()
    target = cfg.destino or state["destino"]
    if not target:
        raise ConfigError("no target: pass --to s3://BUCKET/PREFIX or /path/to/webroot, or set [publicar] destino")
    if require_process and not (cfg.entidad and cfg.anio):
        raise ConfigError(
            "the watcher accepts only the configured process: set [proceso] entidad and anio "
            "(and elecciones) in prepgen.toml"
        )
    cfg = replace(cfg, endpoint_url=cfg.endpoint_url or state["endpoint_url"])
    return Operacion.from_config(cfg, work=work, target=target, site=site)


def record_rollback(cfg: Config, work: Path, target: str, result: Any) -> None:
    """Note an operator's rollback in the work dir, if that work dir publishes to this target."""
    tz: Any
    try:
        tz = ZoneInfo(cfg.zona_horaria)
    except (ZoneInfoNotFoundError, ValueError):
        tz = UTC
    wd = WorkDir(work, tz)
    if not wd.exists:
        return
    with wd.locked():
        state = wd.load()
        if state["destino"] not in (None, target):
            return
        op = Operacion(work=work, target=target, endpoint_url=cfg.endpoint_url, tz=tz)
        Engine(op).record_rollback(result.corte_id, result.previous_corte_id, result.pages)
