"""Publish a build dir to S3-compatible storage or a local web root; list cortes; roll back.

The protocol is written up in ``docs/PUBLISHING.md``. In short: immutable objects first, then stable pages,
then the corte's record under ``_prepgen/cortes/<corte_id>/`` (its manifest last, so "manifest exists" means
"corte complete"), then the pointer ``json/main.json`` last of all. Nothing is ever deleted.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import os
import re
import tarfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson
from isal import igzip

from .errors import PublishError
from .headers import CACHE_CONTROL, IMMUTABLE, PAGE, POINTER
from .s3put import PutError, S3Putter, bucket_url

POINTER_PATH = "json/main.json"
RECORD_PREFIX = "_prepgen/cortes/"
MANIFEST_NAME = "manifest.json"
ARCHIVE_NAME = "paginas.tar.gz"
POINTER_COPY_NAME = "main.json"
# Record objects are rewritten only when a corte is re-published, but must never be served stale to a
# rollback or a list run through a CDN.
RECORD_CACHE_CONTROL = "no-cache"
COMPRESSIBLE_TYPES = ("text/html", "application/json", "text/css", "text/javascript", "image/svg+xml")

Progress = Callable[[str, int, int], None]
"""``progress(path, done, total)``: called from worker threads after each confirmed upload."""


# --------------------------------------------------------------------------------------------- storage


class StorageError(Exception):
    """A storage operation failed after the storage's own retries; ``what`` says which one."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what}: {reason}")
        self.what = what
        self.reason = reason


class Storage(Protocol):
    """What publish needs from a target. Keys are site paths relative to the target root."""

    description: str

    def get(self, key: str) -> bytes | None:
        """The object's bytes as stored-decoded (plain), or None when it does not exist."""
        ...

    def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        cache_control: str,
        sha256: str | None = None,
        compress: bool = False,
    ) -> None:
        """Store one object atomically (a reader sees the old or the new bytes, never a part).

        ``sha256``: hex digest of ``data`` when the caller already knows it (saves hashing it again).
        ``compress``: the storage may keep it gzip-encoded (``get`` still returns it plain)."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Every key under prefix (not used on the publish hot path)."""
        ...

    def barrier(self) -> None:
        """Make every put so far durable before the next one (ordering for crash consistency)."""
        ...


def _check_key(key: str) -> str:
    # Keys come from manifests, and a rollback reads manifests back from the target: never let one escape.
    # No empty, "." or ".." segment and no leading "/": substring tests on "/key/" (216,000 keys a publish).
    framed = f"/{key}/"
    if not key or "\\" in key or "//" in framed or "/./" in framed or "/../" in framed:
        raise PublishError(f"refusing unsafe path {key!r} in a manifest")
    return key


class S3Storage:
    """``s3://BUCKET/PREFIX`` through boto3; credentials come only from boto3's own chain."""

    def __init__(
        self,
        target: str,
        *,
        endpoint_url: str | None = None,
        threads: int = 16,
        compress: bool = False,
        max_attempts: int = 5,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
    ) -> None:
        import boto3
        import botocore.session
        from botocore.config import Config

        bucket, prefix = parse_s3_target(target)
        self.bucket = bucket
        self.prefix = prefix
        self.compress = compress
        self.description = target + (f" ({endpoint_url})" if endpoint_url else "")
        # Standard retry mode backs off exponentially on 5xx, throttling and connection errors, so a blip
        # in storage costs seconds, not the corte. The pool must fit every worker or threads queue on it.
        config = Config(
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max(threads, 10),
        )
        self._core = botocore.session.get_session()
        self.client = boto3.session.Session(botocore_session=self._core).client(
            "s3", endpoint_url=endpoint_url, config=config
        )
        # PUTs (the hot path) go through prepgen/s3put.py with the same retry policy and timeouts; it is
        # set up on the first put, so a read-only use (cortes) never needs credentials for it.
        self._endpoint_url = endpoint_url
        self._put_options = {
            "threads": threads,
            "max_attempts": max_attempts,
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
        }
        self._putter: S3Putter | None = None
        self._putter_lock = threading.Lock()

    def _key(self, key: str) -> str:
        return self.prefix + _check_key(key)

    def get(self, key: str) -> bytes | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            data: bytes = response["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404", "NotFound"):
                return None
            raise StorageError(f"reading {key}", _client_error_text(exc)) from None
        except BotoCoreError as exc:
            raise StorageError(f"reading {key}", str(exc)) from None
        if response.get("ContentEncoding") == "gzip":
            data = igzip.decompress(data)
        return data

    def _get_putter(self, key: str) -> S3Putter:
        with self._putter_lock:
            if self._putter is None:
                credentials = self._core.get_credentials()
                if credentials is None:
                    raise StorageError(f"uploading {key}", "Unable to locate credentials")
                # Same CA bundle botocore would use (AWS_CA_BUNDLE, ca_bundle in ~/.aws/config, certifi).
                from botocore.httpsession import get_cert_path

                ca = self._core.get_config_variable("ca_bundle") or get_cert_path(True)
                region = self.client.meta.region_name or "us-east-1"
                try:
                    self._putter = S3Putter(
                        bucket_url(self.bucket, region, self._endpoint_url),
                        region=region,
                        credentials=credentials,
                        ca_certs=ca,
                        **self._put_options,  # type: ignore[arg-type]
                    )
                except PutError as exc:
                    raise StorageError(f"uploading {key}", str(exc)) from None
            return self._putter

    def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        cache_control: str,
        sha256: str | None = None,
        compress: bool = False,
    ) -> None:
        headers = {"Content-Type": content_type, "Cache-Control": cache_control}
        # The pointer stays plain: it is what partners' scripts and the institute's checks poll, often with
        # clients that do not undo Content-Encoding (a bare curl, json.loads on the body), and ~1 KB.
        if compress or (self.compress and key != POINTER_PATH and content_type.startswith(COMPRESSIBLE_TYPES)):
            data = _gzip_hinted(data) if compress else gzip_fast(data)
            headers["Content-Encoding"] = "gzip"
            sha256 = None
        putter = self._get_putter(key)
        try:
            # The signed payload hash makes S3 reject a body damaged on the way (no Content-MD5 needed).
            putter.put(self._key(key), data, headers, sha256 or _sha256(data))
        except PutError as exc:
            raise StorageError(f"uploading {key}", str(exc)) from None

    def list(self, prefix: str) -> list[str]:
        from botocore.exceptions import BotoCoreError, ClientError

        keys: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix + prefix
            )
            for page in pages:
                keys.extend(obj["Key"][len(self.prefix) :] for obj in page.get("Contents", []))
        except ClientError as exc:
            raise StorageError(f"listing {prefix}", _client_error_text(exc)) from None
        except BotoCoreError as exc:
            raise StorageError(f"listing {prefix}", str(exc)) from None
        return keys

    def barrier(self) -> None:
        # A PUT that returned 200 is durable on S3: nothing to flush.
        pass


@functools.lru_cache(maxsize=1)
def _gzip_hinted(data: bytes) -> bytes:
    """gzip_fast() of an object put with ``compress=True``: the publish makes the record manifest's while
    the pages upload, so the put between the last page and the pointer finds it done. Keyed by the bytes
    object (its hash is computed once and kept)."""
    return gzip_fast(data)


def gzip_fast(data: bytes) -> bytes:
    """gzip as the storage keeps pages and JSON: ISA-L's level 1 (isal), with mtime 0 so identical input
    gives identical bytes and ETags stay stable across republishes.

    A corte's pages and JSON are compressed on the two cores it is waiting for. Measured on the files of
    a national corte (3,951 objects, 126 MiB): 0.16 CPU-s and 19.4 MiB, against 0.58 CPU-s and 20.3 MiB
    with zlib's level 1 and 1.10 CPU-s and 18.0 MiB with its default 6. isal releases the GIL like zlib,
    so the upload threads still compress side by side."""
    return igzip.compress(data, compresslevel=1, mtime=0)


def _client_error_text(exc: Any) -> str:
    err = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return f"{err.get('Code', 'error')} {status or ''}: {err.get('Message', '')}".strip()


def parse_s3_target(target: str) -> tuple[str, str]:
    rest = target[len("s3://") :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise PublishError(f"{target}: no bucket; expected s3://BUCKET or s3://BUCKET/PREFIX")
    prefix = prefix.strip("/")
    return bucket, (prefix + "/" if prefix else "")


class DirStorage:
    """A local web root (self-hosting behind nginx/apache). Files are written plain, never pre-compressed,
    so the web server serves exactly the manifest's bytes and does its own content negotiation."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.description = str(self.root)
        # mkstemp creates 0600 files; the web server runs as another user and must be able to read them.
        umask = os.umask(0)
        os.umask(umask)
        self.file_mode = 0o666 & ~umask

    def get(self, key: str) -> bytes | None:
        try:
            return (self.root / _check_key(key)).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"reading {key}", exc.strerror or str(exc)) from None

    def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str,
        cache_control: str,
        sha256: str | None = None,
        compress: bool = False,
    ) -> None:
        # Headers are the web server's job here (`prepgen config nginx`), from the same table. Always plain
        # (compress is ignored): nginx serves the manifest's exact bytes and negotiates compression itself.
        path = self.root / _check_key(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Same dir, so os.replace is an atomic rename: readers see the old file or the new one.
            # A dot name keeps a leftover from a killed run out of directory listings and nginx's way.
            tmp = path.parent / f".{path.name}.prepgen-{os.getpid()}-{threading.get_ident()}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, self.file_mode)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"writing {key}", exc.strerror or str(exc)) from None

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.is_dir():
            return []
        return [
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        ]

    def barrier(self) -> None:
        # One sync instead of an fsync per file: everything before the barrier (objects, then the record)
        # reaches the disk before the manifest/pointer that vouch for it, which is the ordering that matters
        # after a power cut. A killed process needs no flush at all (the page cache survives it).
        os.sync()


def open_storage(
    target: str | Storage, *, endpoint_url: str | None = None, threads: int = 16, compress: bool = False
) -> Storage:
    """``s3://bucket/prefix`` → S3Storage, a path → DirStorage; a Storage object is used as given."""
    if not isinstance(target, str):
        return target
    if target.startswith("s3://"):
        return S3Storage(target, endpoint_url=endpoint_url, threads=threads, compress=compress)
    if "://" in target:
        raise PublishError(f"{target}: unsupported target; use s3://BUCKET/PREFIX or a local directory")
    return DirStorage(target)


# --------------------------------------------------------------------------------------------- results


@dataclass
class PublishResult:
    target: str
    corte_id: str
    previous_corte_id: str | None
    uploaded: int = 0  # site objects written (immutable + page + pointer)
    uploaded_bytes: int = 0
    skipped: int = 0  # unchanged against the live manifest
    skipped_bytes: int = 0
    resumed: int = 0  # already confirmed by an interrupted run's journal
    record_objects: int = 0  # _prepgen/cortes/<id>/ objects written
    seconds: float = 0.0
    dry_run: bool = False
    uploaded_paths: list[str] = field(default_factory=list, repr=False)
    # The record of the corte live after this publish, for the next publish(live=...) of a long-lived
    # publisher (the watcher); None when it is not known (nothing published, dry run on an empty target).
    live: LiveRecord | None = field(default=None, repr=False)
    live_source: str = "none"  # where the live record came from: "memory", "storage" or "none"

    def __str__(self) -> str:
        verb = "would upload" if self.dry_run else "uploaded"
        resumed = f", {self.resumed} already done by an interrupted run" if self.resumed else ""
        return (
            f"corte {self.corte_id} → {self.target}: {verb} {self.uploaded} objects "
            f"({_human(self.uploaded_bytes)}), skipped {self.skipped} unchanged ({_human(self.skipped_bytes)})"
            f"{resumed}, {self.seconds:.1f} s"
        )


@dataclass(frozen=True)
class LiveRecord:
    """The record of the corte a publish left live, kept in memory between cortes by the watcher.

    The next ``publish(..., live=record)`` still GETs the live pointer (the truth: a rollback or another
    publisher may have changed it) and uses ``files`` instead of downloading and parsing the ~40 MB record
    manifest only if that pointer is byte for byte the one this record was made with, on the same target.
    ``files`` is shared, never copied: treat it as read-only."""

    target: str  # _target_id() of the storage
    corte_id: str
    pointer_sha256: str
    files: dict[str, dict[str, Any]]  # the record manifest's file table (path → entry with sha256, origen)


@dataclass(frozen=True)
class CorteInfo:
    corte_id: str
    corte: str | None
    corte_texto: str | None
    files: int
    live: bool

    def __str__(self) -> str:
        mark = "*" if self.live else " "
        return f"{mark} {self.corte_id}  {self.corte_texto or self.corte or ''}  ({self.files} files)"


@dataclass
class RollbackResult:
    target: str
    corte_id: str
    previous_corte_id: str | None
    pages: int = 0
    uploaded_bytes: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        return (
            f"rolled back {self.target} from {self.previous_corte_id} to {self.corte_id}: "
            f"{self.pages} pages re-uploaded ({_human(self.uploaded_bytes)}) + pointer, {self.seconds:.1f} s"
        )


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


# --------------------------------------------------------------------------------------------- helpers


def _record_key(corte_id: str, name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", corte_id):
        raise PublishError(f"invalid corte id {corte_id!r}; expected e.g. 20210607_2000")
    return f"{RECORD_PREFIX}{corte_id}/{name}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _loads(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise PublishError(f"{what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise PublishError(f"{what} is not a JSON object")
    return value


class _Target:
    """A storage plus the live state read from it, with every storage failure turned into one line."""

    def __init__(self, storage: Storage, action: str) -> None:
        self.storage = storage
        self.action = action  # what the operator reruns
        self.live_id: str | None = None
        self.live_source = "none"  # where read_live found the live record: "memory", "storage" or "none"
        self.pointer_sha256: str | None = None

    def fail(self, exc: StorageError) -> PublishError:
        live = f"the live corte is still {self.live_id}" if self.live_id else "the live site was not changed"
        return PublishError(
            f"{self.storage.description}: {exc.what} failed ({exc.reason}); {live}; rerun {self.action} when storage is back"
        )

    def get(self, key: str) -> bytes | None:
        try:
            return self.storage.get(key)
        except StorageError as exc:
            raise self.fail(exc) from None

    def put(
        self,
        key: str,
        data: bytes,
        content_type: str,
        cache_control: str,
        *,
        sha256: str | None = None,
        compress: bool = False,
    ) -> None:
        try:
            self.storage.put(
                key, data, content_type=content_type, cache_control=cache_control, sha256=sha256, compress=compress
            )
        except StorageError as exc:
            raise self.fail(exc) from None

    def barrier(self) -> None:
        try:
            self.storage.barrier()
        except OSError as exc:
            raise self.fail(StorageError("flushing to disk", str(exc))) from None

    def read_live(self, known: LiveRecord | None = None) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """(live pointer, live manifest or an empty one). Two GETs, no listing; one when ``known`` is the
        record of the corte the pointer names (same target, same pointer bytes)."""
        raw = self.get(POINTER_PATH)
        if raw is None:
            return None, {"files": {}}
        try:
            pointer = _loads(raw, f"{self.storage.description}: live {POINTER_PATH}")
        except PublishError:
            # Not ours (or damaged): diff against nothing, i.e. upload everything; still safe.
            return None, {"files": {}}
        live_id = pointer.get("corte_id")
        if not isinstance(live_id, str):
            return pointer, {"files": {}}
        self.live_id = live_id
        self.pointer_sha256 = _sha256(raw)
        # Memory only stands in for the record while the pointer is exactly the one it was made with: a
        # rollback, another publisher or a re-published corte all change what the target says is live.
        if (
            known is not None
            and known.target == _target_id(self.storage)
            and known.corte_id == live_id
            and known.pointer_sha256 == self.pointer_sha256
        ):
            self.live_source = "memory"
            return pointer, {"files": known.files}
        manifest_raw = self.get(_record_key(live_id, MANIFEST_NAME))
        if manifest_raw is None:
            return pointer, {"files": {}}
        self.live_source = "storage"
        return pointer, _loads(manifest_raw, f"{self.storage.description}: manifest of corte {live_id}")


def _run_pool(
    jobs: list[tuple[str, Callable[[], None]]],
    threads: int,
    on_done: Callable[[str], None],
) -> None:
    """Run put jobs on a bounded set of threads; stop handing out work at the first failure and raise it.

    Threads take the next job from one shared iterator: a national corte's ~10,000 PUTs as executor
    futures cost ~0.5 s of bookkeeping with the GIL held, which the upload threads themselves need."""
    if not jobs:
        return
    abort = threading.Event()
    failures: list[BaseException] = []
    pending = iter(jobs)
    take = threading.Lock()

    def run() -> None:
        while not abort.is_set():
            with take:
                item = next(pending, None)
            if item is None:
                return
            path, job = item
            try:
                job()
                on_done(path)
            except BaseException as exc:
                failures.append(exc)
                abort.set()
                return

    workers = [
        threading.Thread(target=run, name=f"prepgen-publish_{n}") for n in range(min(max(1, threads), len(jobs)))
    ]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.join()
    except BaseException:
        # Ctrl-C while waiting: let in-flight uploads finish, start no new ones.
        abort.set()
        for worker in workers:
            worker.join()
        raise
    if failures:
        raise failures[0]


class EarlyUploads:
    """Content-addressed files uploaded while their build is still being written (the watcher).

    A national corte's ~2,700 new JSON objects are named by their content, so they can go up the moment
    the Writer has them on disk: no reader can reach them before a page or the pointer names them, and
    the bytes at such a key never change. Stable pages still wait for publish (after the whole data
    tree), the pointer last. Only files that differ from ``live`` (the record of the corte this process
    left live on that target) are sent. A failed early upload is not an error: publish uploads whatever
    was not confirmed here.
    """

    def __init__(self, build_dir: Path, storage: Storage, live: LiveRecord, threads: int = 16) -> None:
        self.build = build_dir
        self.storage = storage
        self.live_files = live.files
        self.confirmed: dict[str, str] = {}  # path → sha256 of every upload the storage acknowledged
        self.failed = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="prepgen-early")
        self._futures: list[Future[None]] = []
        self._closed = False

    @classmethod
    def start(
        cls, build_dir: Path, storage: Storage, live: LiveRecord | None, threads: int = 16
    ) -> EarlyUploads | None:
        """Early uploads for a build into ``build_dir``, or None when ``live`` is not this target's record
        (then nothing says which content-addressed files the target already has)."""
        if live is None or live.target != _target_id(storage):
            return None
        return cls(build_dir, storage, live, threads)

    def offer(self, path: str, entry: dict[str, Any]) -> None:
        """A file the Writer has just put on disk (``entry``: its manifest entry)."""
        if self._closed or entry["class"] != IMMUTABLE:
            return
        previous = self.live_files.get(path)
        if previous is not None and previous.get("sha256") == entry["sha256"]:
            return
        self._futures.append(self._pool.submit(self._put, path, entry["sha256"], entry["type"]))

    def _put(self, path: str, sha: str, content_type: str) -> None:
        try:
            data = _read_file(self.build, path, sha)
            self.storage.put(path, data, content_type=content_type, cache_control=CACHE_CONTROL[IMMUTABLE], sha256=sha)
        except (PublishError, StorageError):
            with self._lock:
                self.failed += 1
            return
        with self._lock:
            self.confirmed[path] = sha

    def finish(self) -> dict[str, str]:
        """Wait for the uploads under way; path → sha256 of those the storage confirmed."""
        self._closed = True
        self._pool.shutdown(wait=True)
        return dict(self.confirmed)

    def abort(self) -> None:
        """The build failed: start no more uploads (the ones in flight finish; they harm nothing)."""
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)


class _Journal:
    """Resume journal in the build dir: (path, sha256) of every upload confirmed for one pending corte.

    The header pins the corte being published and the live corte it was diffed against; if either changed
    (another publish or a rollback happened meanwhile), the old entries no longer describe the target."""

    def __init__(self, build_dir: Path, target_id: str, corte_id: str, base_id: str | None) -> None:
        digest = hashlib.sha256(target_id.encode()).hexdigest()[:16]
        self.path = build_dir / ".prepgen" / f"publish-journal-{digest}.jsonl"
        self.header = {"target": target_id, "corte_id": corte_id, "base": base_id}
        self.done: dict[str, str] = {}
        self._lock = threading.Lock()
        self._fh: io.TextIOWrapper | None = None

    def load(self) -> None:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return
        try:
            if not lines or json.loads(lines[0]) != self.header:
                return
        except ValueError:
            return
        for line in lines[1:]:
            try:
                entry = json.loads(line)
                self.done[entry["p"]] = entry["s"]
            except (ValueError, KeyError, TypeError):
                continue  # a line torn by a kill: that upload is simply redone

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.done:
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        else:
            self._fh = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
            self._fh.write(json.dumps(self.header) + "\n")
            self._fh.flush()

    def confirm(self, path: str, sha: str) -> None:
        # Flushed per line (no fsync): it must survive the publishing process being killed; after a power
        # cut a lost line only means one redundant upload.
        with self._lock:
            self.done[path] = sha
            if self._fh is not None:
                self._fh.write(json.dumps({"p": path, "s": sha}) + "\n")
                self._fh.flush()

    def close(self, *, finished: bool) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if finished:
            self.path.unlink(missing_ok=True)


def _target_id(storage: Storage) -> str:
    if isinstance(storage, DirStorage):
        return str(storage.root.resolve())
    return storage.description


def _make_archive(members: Iterable[tuple[str, str, bytes]]) -> bytes:
    """tar.gz of pages, one member ``<sha256>/<path>`` each: by content, so a re-published corte's
    archive can keep both old and new bytes of a page, and rollback looks a page up by (path, sha).

    Members go in in the order given, as they come (the publish streams them from the upload workers);
    callers give them sorted by (path, sha), so the same pages always make the same bytes (a resumed
    publish then finds the archive's sha in its journal and does not upload it again)."""
    buf = io.BytesIO()
    # ISA-L's level 1, as the pages themselves (gzip_fast): a national corte's 3,646 changed pages (58 MiB)
    # take 0.06 CPU-s and give 6.9 MiB, against 0.33 CPU-s and 7.3 MiB with zlib's level 1.
    with igzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=1) as gz:
        written = 0
        for path, sha, data in members:
            header = _tar_header(sha, path, len(data))
            member = b"".join((header, data, bytes(-len(data) % tarfile.BLOCKSIZE)))
            gz.write(member)
            written += len(member)
        # The end of archive as tarfile writes it: two zero blocks, then zeros up to a whole record.
        end = 2 * tarfile.BLOCKSIZE
        end += -(written + end) % tarfile.RECORDSIZE
        gz.write(bytes(end))
    return buf.getvalue()


def _ustar_template() -> bytes:
    info = tarfile.TarInfo("x")
    info.mode = 0o644
    header = bytearray(info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict"))
    header[0] = 0
    header[148:156] = b" " * 8  # the checksum is computed over the header with its own field as spaces
    return bytes(header)


_USTAR = _ustar_template()


def _tar_header(sha: str, path: str, size: int) -> bytes:
    """The ustar header tarfile writes for member ``<sha>/<path>`` (mode 644, owner 0, mtime 0), made by
    hand: tarfile's TarInfo and pax header for every page were ~2 CPU-s of a national corte's publish,
    most of it holding the GIL the upload threads need. Same bytes as tarfile's ustar format: a name over
    100 bytes is split into prefix (the sha) and name (the path); what does not fit that (a path over 100
    bytes or not ASCII, a size over 8 GiB) gets tarfile's pax header instead."""
    # A non-ASCII path goes the pax way as before (its name in UTF-8 whatever the reader's locale).
    name = path.encode("ascii", "replace")
    if len(name) > 100 or size >= 8**11 or len(sha) > 155 or not (sha.isascii() and path.isascii()):
        info = tarfile.TarInfo(f"{sha}/{path}")
        info.size = size
        info.mode = 0o644
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    header = bytearray(_USTAR)
    full = sha.encode("ascii") + b"/" + name
    if len(full) <= 100:
        header[0 : len(full)] = full
    else:
        header[0 : len(name)] = name
        header[345 : 345 + len(sha)] = sha.encode("ascii")
    header[124:136] = b"%011o\x00" % size
    header[148:155] = b"%06o\x00" % sum(header)
    return bytes(header)


def _read_archive(data: bytes) -> dict[tuple[str, str], bytes]:
    out: dict[tuple[str, str], bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for info in tar:
            if not info.isfile():
                continue
            sha, _, path = info.name.partition("/")
            fh = tar.extractfile(info)
            if fh is not None:
                out[(path, sha)] = fh.read()
    return out


def _read_build(build_dir: Path) -> tuple[bytes, dict[str, Any]]:
    path = build_dir / ".prepgen" / "manifest.json"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PublishError(f"{path}: no build manifest; run `prepgen build` first") from None
    manifest = _loads(raw, str(path))
    _check_build(manifest, str(path))
    # A file on disk may come from anywhere: check every entry. (A manifest handed over in memory comes
    # from this process's Writer, which already refused unsafe paths and classified every file.)
    for name, entry in manifest["files"].items():
        _check_key(name)
        if entry.get("class") not in CACHE_CONTROL:
            raise PublishError(f"{path}: {name} has unknown class {entry.get('class')!r}")
    return raw, manifest


def _check_build(manifest: dict[str, Any], what: str) -> None:
    """What publish cannot do without: a corte id, a file table and the pointer it flips last."""
    if not isinstance(manifest.get("corte_id"), str) or not isinstance(manifest.get("files"), dict):
        raise PublishError(f"{what}: not a prepgen build manifest (corte_id/files missing)")
    if manifest["files"].get(POINTER_PATH, {}).get("class") != POINTER:
        raise PublishError(f"{what}: the build has no {POINTER_PATH} pointer")


def _read_file(build_dir: Path, path: str, sha: str, size: int | None = None) -> bytes:
    """A build file's bytes, checked against its manifest sha256; ``size``: the manifest's, if at hand.

    Plain syscalls rather than ``Path.read_bytes`` (pathlib, io buffers, a second fstat and a read to EOF):
    a national corte reads ~8,000 files here, 0.42 s that way against 0.20 s with the hash below.
    """
    try:
        fd = os.open(f"{build_dir}/{path}", os.O_RDONLY | os.O_CLOEXEC)
        try:
            if not isinstance(size, int) or size < 0:
                size = os.fstat(fd).st_size
            # A regular file gives all the bytes asked for in one read; one more than expected makes a file
            # that grew since fail the check below like any other change.
            data = os.read(fd, size + 1)
        finally:
            os.close(fd)
    except OSError as exc:
        raise PublishError(f"{build_dir / path}: cannot read ({exc.strerror}); rebuild and rerun") from None
    # Cheap next to an upload, and catches a build dir rewritten underneath us.
    if _sha256(data) != sha:
        raise PublishError(f"{build_dir / path}: bytes differ from the build manifest; rebuild and rerun")
    return data


# --------------------------------------------------------------------------------------------- publish


def publish(
    build_dir: str | os.PathLike[str],
    target: str | Storage,
    *,
    endpoint_url: str | None = None,
    dry_run: bool = False,
    threads: int = 16,
    progress: Progress | None = None,
    compress: bool = False,
    manifest: dict[str, Any] | None = None,
    live: LiveRecord | None = None,
    early: dict[str, str] | None = None,
    before_record: Callable[[], None] | None = None,
) -> PublishResult:
    """Upload what changed in ``build_dir`` against the live corte on ``target``; flip the pointer last.

    ``target`` is ``s3://BUCKET/PREFIX`` or a local web root (or a Storage). ``compress`` stores html/json/
    css/js/svg gzip-encoded (``Content-Encoding: gzip``) on S3; a web root is always written plain.

    A long-lived publisher (the watcher) passes what it already holds: ``manifest``, the build's manifest as
    the build returned it (``BuildResult.manifest``, which describes ``build_dir``), instead of reading
    ``.prepgen/manifest.json`` again; ``live``, its previous publish's ``PublishResult.live``, used instead
    of downloading the live record only while the live pointer is still the one that publish wrote;
    ``before_record``, called once every page is up, before the corte's record and pointer (the watcher's
    build finishing its own state and manifest files meanwhile, see build_model's ``deferred``): what it
    raises stops the publish there, with the live corte unchanged.
    """
    started = time.monotonic()
    build = Path(build_dir)
    storage = open_storage(target, endpoint_url=endpoint_url, threads=threads, compress=compress)
    t = _Target(storage, "publish")
    if manifest is None:
        # Fetching and inflating the live record (~10 MB nationally) overlaps reading the build's manifest.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepgen-live") as reader:
            live_read = reader.submit(t.read_live, live)
            _, manifest = _read_build(build)
            _, live_manifest = live_read.result()
    else:
        _check_build(manifest, f"{build}: the build manifest handed to publish")
        _, live_manifest = t.read_live(live)
    corte_id: str = manifest["corte_id"]
    live_files: dict[str, dict[str, Any]] = live_manifest.get("files", {}) or {}
    files: dict[str, dict[str, Any]] = manifest["files"]
    result = PublishResult(
        target=storage.description,
        corte_id=corte_id,
        previous_corte_id=t.live_id,
        dry_run=dry_run,
        live_source=t.live_source,
    )

    # Everything before the first PUT waits on this loop over every file (216,000 nationally): only what
    # to upload, by sha256. The record's table (each page's origen) is made in the background below.
    todo: dict[str, dict[str, Any]] = {}
    live_get = live_files.get
    for path, entry in files.items():
        previous = live_get(path)
        if previous is None or previous.get("sha256") != entry["sha256"]:
            todo[path] = entry
    result.skipped = len(files) - len(todo)

    pointer_changed = POINTER_PATH in todo or t.live_id != corte_id
    if (not todo and not pointer_changed) or dry_run:
        result.skipped_bytes = _skipped_bytes(files, todo)
        # The target is as it was read: its record is still the one to diff the next build against.
        if t.live_id is not None and t.pointer_sha256 is not None and t.live_source != "none":
            result.live = LiveRecord(_target_id(storage), t.live_id, t.pointer_sha256, live_files)
        for path, entry in todo.items():
            result.uploaded += 1
            result.uploaded_bytes += int(entry.get("size", 0))
            result.uploaded_paths.append(path)
        result.seconds = time.monotonic() - started
        return result

    journal = _Journal(build, _target_id(storage), corte_id, t.live_id)
    journal.load()
    journal.open()
    counter_lock = threading.Lock()
    total = len(todo)
    done_count = 0
    # What this run uploads, per phase, in path order (the archive below takes the pages in that order);
    # what an interrupted run's journal already confirmed is skipped.
    jobs_of: dict[str, list[str]] = {IMMUTABLE: [], PAGE: []}
    early_done: list[str] = []
    for path in sorted(todo):
        entry = todo[path]
        if entry["class"] not in jobs_of:
            continue
        if journal.done.get(path) == entry["sha256"]:
            result.resumed += 1
            done_count += 1
            continue
        if early and entry["class"] == IMMUTABLE and early.get(path) == entry["sha256"]:
            early_done.append(path)
            continue
        jobs_of[entry["class"]].append(path)
    # Pages this run reads (and verifies) for the upload go on to the archive from memory; the archive reads
    # only the other pages it holds from disk (confirmed by an interrupted run, or unchanged in a
    # re-published corte).
    handoff = _Handoff(set(jobs_of[PAGE]))

    def confirmed(path: str) -> None:
        nonlocal done_count
        entry = files[path]
        with counter_lock:
            done_count += 1
            n = done_count
            result.uploaded += 1
            result.uploaded_bytes += int(entry.get("size", 0))
            result.uploaded_paths.append(path)
        journal.confirm(path, entry["sha256"])
        if progress is not None:
            progress(path, n, total)

    def site_job(path: str) -> Callable[[], None]:
        entry = files[path]

        def job() -> None:
            data = _read_file(build, path, entry["sha256"], entry.get("size"))
            if entry["class"] == PAGE:
                handoff.offer(path, data)
            t.put(path, data, entry["type"], CACHE_CONTROL[entry["class"]], sha256=entry["sha256"])

        return job

    def archive_members(paths: list[str]) -> Iterable[tuple[str, str, bytes]]:
        for path in paths:
            sha = files[path]["sha256"]
            if path in handoff.wanted:
                yield path, sha, handoff.take(path)
            else:
                handoff.check()
                yield path, sha, _read_file(build, path, sha)

    def prepare_record() -> _Record:
        # The record's table: a page's origen (whose archive holds its bytes) stays the live corte's answer
        # while the page is unchanged. Made while the uploads run (zlib, orjson and file reads release the
        # GIL) instead of before the first PUT or between the last page and the pointer.
        if t.live_source == "memory" and t.live_id != corte_id:
            record_files, ours, skipped_bytes = _record_table_on_live(files, todo, live_files, corte_id)
        else:
            record_files, ours, skipped_bytes = _record_table(files, todo, live_files, corte_id, t.live_id or corte_id)
        record = {k: v for k, v in manifest.items() if k != "files"}
        record["files"] = record_files
        manifest_data = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
        if isinstance(storage, S3Storage):
            _gzip_hinted(manifest_data)  # see _write_record: stored gzip-encoded
        # The archive waits on the page uploads (same path order), so the JSON above goes first.
        ours.sort()
        archive = _make_archive(archive_members(ours))
        return _Record(archive, manifest_data, record_files, skipped_bytes)

    def phase(cls: str) -> None:
        _run_pool([(path, site_job(path)) for path in jobs_of[cls]], threads, confirmed)

    finished = False
    archiver = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prepgen-record")
    prepared = archiver.submit(prepare_record)
    try:
        for path in early_done:
            confirmed(path)  # uploaded while the build was written: journaled and counted like the rest
        # Immutable data first, all confirmed: the pages and the pointer that name them come after.
        phase(IMMUTABLE)
        # Stable pages are overwritten in place once every object they (and their scripts) may load exists.
        phase(PAGE)
        if before_record is not None:
            before_record()
        t.barrier()
        # The live record (or memory of it) already says whether this corte has a record to keep.
        known = t.live_id == corte_id and t.live_source != "none"
        record = _write_record(t, build, corte_id, files, journal, result, prepared, record_exists=known or None)
        result.skipped_bytes = record.skipped_bytes
        if pointer_changed and journal.done.get(POINTER_PATH) != files[POINTER_PATH]["sha256"]:
            t.barrier()
            entry = files[POINTER_PATH]
            t.put(
                POINTER_PATH,
                _read_file(build, POINTER_PATH, entry["sha256"]),
                entry["type"],
                CACHE_CONTROL[POINTER],
                sha256=entry["sha256"],
            )
            t.barrier()
            confirmed(POINTER_PATH)
        elif pointer_changed:
            result.resumed += 1
        pointer_sha = files[POINTER_PATH]["sha256"] if pointer_changed else t.pointer_sha256
        if pointer_sha is not None:
            result.live = LiveRecord(_target_id(storage), corte_id, pointer_sha, record.files)
        finished = True
    finally:
        handoff.close()  # a failed publish: the archive must not wait for pages that will never come
        archiver.shutdown(wait=True)
        journal.close(finished=finished)
    result.seconds = time.monotonic() - started
    return result


def _record_table(
    files: dict[str, dict[str, Any]],
    todo: dict[str, dict[str, Any]],
    live_files: dict[str, dict[str, Any]],
    corte_id: str,
    inherited: str,
) -> tuple[dict[str, dict[str, Any]], list[str], int]:
    """The record's file table (each page with its ``origen``: whose archive holds its bytes), the pages
    this corte's archive holds, and the bytes not uploaded. A page's origen stays the live record's while
    the page is unchanged; ``inherited`` stands in where the live record has none (an older prepgen's)."""
    record_files: dict[str, dict[str, Any]] = {}
    ours: list[str] = []
    skipped_bytes = 0
    for path, entry in files.items():
        page = entry["class"] == PAGE
        if path in todo:
            if page:
                entry = {**entry, "origen": corte_id}
                ours.append(path)
            record_files[path] = entry
            continue
        skipped_bytes += int(entry.get("size", 0))
        if page:
            # Same sha256 as the live record's entry (else it would be in todo): that entry, origen and
            # all, is this one. Reused rather than copied: 200,000 new dicts a national corte, made with
            # the GIL the upload threads need.
            live = live_files[path]
            origen = live.get("origen", inherited)
            if "origen" not in live or len(live) != len(entry) + 1:
                live = {**entry, "origen": origen}
            entry = live
            if origen == corte_id:
                ours.append(path)  # a re-published corte: unchanged pages it already introduced
        record_files[path] = entry
    return record_files, ours, skipped_bytes


def _record_table_on_live(
    files: dict[str, dict[str, Any]],
    todo: dict[str, dict[str, Any]],
    live_files: dict[str, dict[str, Any]],
    corte_id: str,
) -> tuple[dict[str, dict[str, Any]], list[str], int]:
    """_record_table when the live table is this process's own previous one (the watcher's next corte):
    every page in it has its origen and none is this corte's (which was never published before), so the
    table is the live one with what the build dropped removed and what changed put on top. The same
    result as _record_table without its loop over every file (216,000 nationally, ~0.5 s holding the GIL
    the upload threads need)."""
    record_files = dict(live_files)
    for path in live_files.keys() - files.keys():
        del record_files[path]
    ours: list[str] = []
    for path, entry in todo.items():
        if entry["class"] == PAGE:
            entry = {**entry, "origen": corte_id}
            ours.append(path)
        record_files[path] = entry
    return record_files, ours, _skipped_bytes(files, todo)


@dataclass
class _Record:
    """What the background thread prepares for ``_prepgen/cortes/<id>/``."""

    archive: bytes  # tar.gz of the pages this corte introduced
    manifest: bytes  # the record manifest's JSON
    files: dict[str, dict[str, Any]]  # its file table (for the next publish's PublishResult.live)
    skipped_bytes: int


class _Handoff:
    """Page bytes from the upload workers to the archive thread, each page once, in any order.

    A page waits here from its upload's read until the archive (which takes them in path order, the order
    the uploads are handed out) reaches it: a few pages, or all of them when the archive falls behind."""

    def __init__(self, wanted: set[str]) -> None:
        self.wanted = wanted
        self._data: dict[str, bytes] = {}
        self._cond = threading.Condition()
        self._closed = False

    def offer(self, path: str, data: bytes) -> None:
        with self._cond:
            self._data[path] = data
            self._cond.notify()

    def take(self, path: str) -> bytes:
        with self._cond:
            while path not in self._data:
                self.check()
                self._cond.wait()
            return self._data.pop(path)

    def check(self) -> None:
        if self._closed:  # the publish failed or finished without the archive: do not hold it up
            raise PublishError("archive abandoned")

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def _skipped_bytes(files: dict[str, dict[str, Any]], todo: dict[str, dict[str, Any]]) -> int:
    return sum(int(entry.get("size", 0)) for path, entry in files.items() if path not in todo)


def _write_record(
    t: _Target,
    build: Path,
    corte_id: str,
    files: dict[str, dict[str, Any]],
    journal: _Journal,
    result: PublishResult,
    prepared: Future[_Record],
    *,
    record_exists: bool | None = None,
) -> _Record:
    """``_prepgen/cortes/<id>/``: archive and pointer copy, then the manifest (its existence = complete).

    ``prepared``: the archive and manifest, made in the background. ``record_exists``: whether this corte
    already has a record, when the caller knows (None: ask the target)."""
    archive_key = _record_key(corte_id, ARCHIVE_NAME)
    manifest_key = _record_key(corte_id, MANIFEST_NAME)
    record = prepared.result()
    archive_data, manifest_data = record.archive, record.manifest
    # Re-publishing a corte that already has a record (a rebuilt corte, or one rolled back from): keep the
    # old archive's pages too, so the old manifest stays restorable until the new one replaces it.
    if journal.done.get(archive_key) is None and (
        record_exists if record_exists is not None else t.get(manifest_key) is not None
    ):
        old = t.get(archive_key)
        if old is not None:
            members = _read_archive(archive_data)
            for key, data in _read_archive(old).items():
                members.setdefault(key, data)
            archive_data = _make_archive(sorted((p, s, d) for (p, s), d in members.items()))
    objects = [
        (archive_key, archive_data, "application/gzip"),
        (
            _record_key(corte_id, POINTER_COPY_NAME),
            _read_file(build, POINTER_PATH, files[POINTER_PATH]["sha256"]),
            "application/json",
        ),
    ]
    for key, data, ctype in objects:
        sha = _sha256(data)
        if journal.done.get(key) == sha:
            continue
        t.put(key, data, ctype, RECORD_CACHE_CONTROL, sha256=sha)
        journal.confirm(key, sha)
        result.record_objects += 1
    t.barrier()
    # Compact and, on S3, gzip-encoded: a national record lists 216,000 files (49 MB as indented JSON,
    # ~10 MB like this) and every publish downloads the live one first.
    sha = _sha256(manifest_data)
    if journal.done.get(manifest_key) != sha:
        t.put(manifest_key, manifest_data, "application/json", RECORD_CACHE_CONTROL, sha256=sha, compress=True)
        journal.confirm(manifest_key, sha)
        result.record_objects += 1
    return record


# --------------------------------------------------------------------------------------------- cortes


def list_cortes(
    target: str | Storage, *, endpoint_url: str | None = None, threads: int = 16
) -> list[CorteInfo]:
    """Complete cortes on ``target`` (those whose manifest exists), newest first; ``live`` marks the one
    the pointer names."""
    storage = open_storage(target, endpoint_url=endpoint_url, threads=threads)
    t = _Target(storage, "cortes")
    pointer_raw = t.get(POINTER_PATH)
    live_id = None
    if pointer_raw is not None:
        try:
            live_id = json.loads(pointer_raw).get("corte_id")
        except (ValueError, AttributeError):
            live_id = None
    t.live_id = live_id
    try:
        keys = storage.list(RECORD_PREFIX)
    except StorageError as exc:
        raise t.fail(exc) from None
    ids = sorted(
        {k[len(RECORD_PREFIX) :].split("/")[0] for k in keys if k.endswith("/" + MANIFEST_NAME)},
        reverse=True,
    )

    def info(cid: str) -> CorteInfo:
        raw = t.get(_record_key(cid, MANIFEST_NAME))
        m = _loads(raw, f"manifest of corte {cid}") if raw else {}
        return CorteInfo(cid, m.get("corte"), m.get("corte_texto"), len(m.get("files", {})), cid == live_id)

    with ThreadPoolExecutor(max_workers=max(1, min(threads, 8))) as pool:
        return list(pool.map(info, ids))


def rollback(
    corte_id: str,
    target: str | Storage,
    *,
    endpoint_url: str | None = None,
    threads: int = 16,
    progress: Progress | None = None,
    all_pages: bool = False,
    compress: bool = False,
) -> RollbackResult:
    """Make ``corte_id`` live again: restore the stable pages whose bytes differ (from the corte archives
    named by each page's ``origen``), then write that corte's pointer — one pointer write.

    ``all_pages`` restores every page of the corte, for when the target's pages may not match its live
    manifest (an interrupted publish that was never rerun)."""
    started = time.monotonic()
    storage = open_storage(target, endpoint_url=endpoint_url, threads=threads, compress=compress)
    t = _Target(storage, "rollback")
    _, live = t.read_live()
    result = RollbackResult(target=storage.description, corte_id=corte_id, previous_corte_id=t.live_id)
    raw = t.get(_record_key(corte_id, MANIFEST_NAME))
    if raw is None:
        raise PublishError(
            f"{storage.description}: corte {corte_id} is unknown or incomplete (no manifest); "
            f"`prepgen cortes` lists the cortes you can roll back to"
        )
    wanted = _loads(raw, f"manifest of corte {corte_id}")
    pointer = t.get(_record_key(corte_id, POINTER_COPY_NAME))
    if pointer is None:
        raise PublishError(f"{storage.description}: corte {corte_id} has no saved pointer; cannot roll back")
    live_files: dict[str, dict[str, Any]] = live.get("files", {}) or {}
    pages = {
        path: entry
        for path, entry in wanted.get("files", {}).items()
        if entry.get("class") == PAGE
        and (all_pages or live_files.get(path, {}).get("sha256") != entry["sha256"])
    }
    # Fetch every byte before writing anything: a missing archive must not leave a half-rolled-back site.
    by_origin: dict[str, list[str]] = {}
    for path, entry in pages.items():
        by_origin.setdefault(str(entry.get("origen", corte_id)), []).append(path)
    contents: dict[str, bytes] = {}
    for origin, paths in by_origin.items():
        archive = t.get(_record_key(origin, ARCHIVE_NAME))
        members = _read_archive(archive) if archive is not None else {}
        for path in paths:
            data = members.get((path, pages[path]["sha256"]))
            if data is None or _sha256(data) != pages[path]["sha256"]:
                raise PublishError(
                    f"{storage.description}: page {path} of corte {corte_id} is missing from the archive of "
                    f"corte {origin}; cannot roll back (the live corte is still {t.live_id})"
                )
            contents[path] = data

    lock = threading.Lock()

    def done(path: str) -> None:
        with lock:
            result.pages += 1
            result.uploaded_bytes += len(contents[path])
            n = result.pages
        if progress is not None:
            progress(path, n, len(pages))

    def job(path: str) -> Callable[[], None]:
        entry = pages[path]
        return lambda: t.put(path, contents[path], entry["type"], CACHE_CONTROL[PAGE])

    _run_pool([(p, job(p)) for p in sorted(pages)], threads, done)
    t.barrier()
    t.put(POINTER_PATH, pointer, "application/json", CACHE_CONTROL[POINTER])
    t.barrier()
    result.seconds = time.monotonic() - started
    return result
