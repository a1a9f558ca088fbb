"""Writing a build: files, then the manifest (path → sha256/size/type/class) last.

The writer refuses to write one output path twice (two units mapping to one URL is a bug, not something
to resolve by last-write-wins), skips files whose bytes did not change since the previous build in the
same folder, and removes files the new build no longer has so the folder always equals its manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from .errors import BuildError
from .headers import classify, content_type

META_DIR = ".prepgen"
INCOMPLETE = "incompleto"
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096  # see _overwrite


def _overwrite(target: str | Path, data: bytes, new: bool = False) -> None:
    """Write ``data`` over ``target`` in place: no temp file, no rename, no truncation to zero.

    ext4 (auto_da_alloc) flushes a file's data to disk when it is renamed over an existing file or
    truncated to zero and rewritten: ~0.5 ms of waiting per page, 5 of the ~10 s a national corte spends
    writing its 10,000 files. Rewriting the same blocks and trimming the tail costs ~0.02 ms. Nobody reads
    a build folder while it is being built (publish copies it afterwards, atomically), and a build that dies
    mid-file leaves the ``incompleto`` marker, so the next build trusts no old manifest and rewrites all.

    ``new``: a file the previous build did not have, normally absent. Opened with O_TRUNC instead of
    trimmed afterwards: nothing to flush when there was no file, and one syscall less for each of a cold
    national build's 216,000 files (ftruncate was ~2 % of its CPU); a stray file left there is still
    replaced whole.

    An existing file is written up to a whole page (zeros past the data, trimmed right after): a write that
    ends inside a page the kernel does not hold makes it read that page of the old file from disk first, one
    synchronous read per file. Overwriting 5,000 uncached 6-9 KB files took 0.90 s that way and 0.20 s
    whole-page (ext4 on this machine's disk); a national corte rewrites ~7,000 pages, and their old bytes
    are out of the page cache after a busy hour or a restart.
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if new else 0)
    fd = os.open(target, flags, 0o666)
    try:
        tail = 0 if new else -len(data) % _PAGE
        view = memoryview(data + bytes(tail) if tail else data)
        while view:
            view = view[os.write(fd, view) :]
        if not new:
            os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def _folder(path: str) -> None:
    """``Path(path).mkdir(parents=True, exist_ok=True)`` without pathlib: a cold national build makes a folder
    for each of its ~213,000 pages, and pathlib's parsing and checks around the one mkdir each needs cost
    ~12 µs of CPU a folder (20.5 against 8.6 µs on tmpfs; ~2.5 CPU-s a cold national build)."""
    try:
        os.mkdir(path)
    except FileExistsError:
        if not os.path.isdir(path):
            raise
    except FileNotFoundError:
        os.makedirs(path, exist_ok=True)


def load_manifest(outdir: Path) -> dict[str, Any]:
    path = outdir / META_DIR / "manifest.json"
    if not path.exists():
        return {}
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError:
        return {}  # a damaged manifest only costs rewriting every file


class Writer:
    def __init__(self, outdir: Path, previous: dict[str, Any] | None = None) -> None:
        self.outdir = outdir
        self.previous: dict[str, dict[str, Any]] = (previous or {}).get("files", {})
        self.files: dict[str, dict[str, Any]] = {}
        self.written = 0
        self.unchanged = 0
        self._swept = False  # remove_stale() ran
        self._writing: threading.Thread | None = None  # finish(background=True)
        self._write_error: BaseException | None = None
        outdir.mkdir(parents=True, exist_ok=True)
        self._root = str(outdir)
        self._dirs: set[str] = set()
        # Present while a build may be replacing files; removed once the new manifest is in place. If a
        # build died half way, the previous manifest no longer describes the folder: trust none of it.
        self._marker = outdir / META_DIR / INCOMPLETE
        if self._marker.exists():
            self.previous = {}
        self._marker.parent.mkdir(exist_ok=True)
        self._marker.touch()

    def _claim(self, path: str) -> None:
        if path in self.files:
            raise BuildError(
                f"two pages map to the same output path {path!r}; this is a bug in the site layout "
                "(two units with one id?) — report it with the package name"
            )
        if path.startswith(META_DIR + "/") or ".." in path.split("/") or path.startswith("/"):
            raise BuildError(f"refusing to write outside the site: {path!r}")

    def write(self, path: str, data: bytes) -> None:
        self._claim(path)  # before touching the disk: a second page on one URL must not overwrite the first
        self._store(path, *self.put(path, data))

    def put(self, path: str, data: bytes) -> tuple[str, int, bool]:
        """Write one file unless the previous build left the same bytes there: (sha256, size, written).

        Claims nothing, so forked render workers can call it on their inherited copy of the writer (the file
        system work then runs on every core) and hand the parent only the result for record().
        """
        digest = hashlib.sha256(data).hexdigest()
        prev = self.previous.get(path)
        # Plain strings, not Path objects: ~10,000 files a national corte, most in folders that exist.
        target = f"{self._root}/{path}"
        if prev and prev.get("sha256") == digest and os.path.exists(target):
            return digest, len(data), False
        if prev is None:  # a new file, maybe in a new folder; the previous build's files have theirs
            parent = target.rpartition("/")[0]
            if parent not in self._dirs:
                _folder(parent)
                self._dirs.add(parent)
        try:
            _overwrite(target, data, new=prev is None)
        except FileNotFoundError:  # its folder was removed since the previous build
            _folder(target.rpartition("/")[0])
            _overwrite(target, data, new=prev is None)
        return digest, len(data), True

    def record(self, path: str, digest: str, size: int, written: bool) -> None:
        """Account for a file a render worker wrote with put()."""
        self._claim(path)
        self._store(path, digest, size, written)

    def _store(self, path: str, digest: str, size: int, written: bool) -> None:
        self.files[path] = {"sha256": digest, "size": size, "type": content_type(path), "class": classify(path)}
        if written:
            self.written += 1
        else:
            self.unchanged += 1

    def keep(self, path: str) -> bool:
        """Carry a file over from the previous build unchanged (True if it could be kept).

        The previous manifest is trusted to describe the folder (the folder always equals its manifest; a
        stat per kept page costs seconds at 200,000 pages on a cold inode cache): a file deleted by hand
        from a build folder is noticed by publish, and a build into a fresh folder repairs it.
        """
        prev = self.previous.get(path)
        if prev is None:
            return False
        if path in self.files:
            self._claim(path)  # raises: two units, one URL
        self.files[path] = prev
        self.unchanged += 1
        return True

    def keep_many(self, paths: list[str]) -> None:
        """keep() for many files at once, none of which may be missing from the previous build.

        A warm national corte keeps ~206,000 pages: one C-level update instead of a call per page. Two
        outputs on one path are still refused: the files grew by fewer entries than were kept.
        """
        files = self.files
        before = len(files)
        try:
            files.update(zip(paths, map(self.previous.__getitem__, paths), strict=True))
        except KeyError as missing:
            raise BuildError(f"{missing.args[0]}: kept from the previous build, which does not have it") from None
        if len(files) != before + len(paths):
            # Dicts keep insertion order: the first `before` paths were there already.
            earlier = set(itertools.islice(files, before))
            seen: set[str] = set()
            for path in paths:
                if path in earlier or path in seen:
                    self._claim(path)  # raises: it is in the files
                seen.add(path)
        self.unchanged += len(paths)

    def can_keep(self, path: str) -> bool:
        return path in self.previous

    def finish(
        self,
        meta: dict[str, Any],
        extra: dict[str, Callable[[], bytes]],
        *,
        defer_removal: bool = False,
        background: bool = False,
    ) -> dict[str, Any]:
        """Write the ``extra`` files (name -> what makes their bytes) and the manifest (last); return it.

        Files the new build no longer has are removed first, or, with ``defer_removal``, left for
        remove_stale(): ~0.5 ms of kernel time each, ~1,900 a national corte (the replaced
        content-addressed JSON), that a watcher runs once the corte is live instead.

        ``background``: write them in a thread and return at once; wait() joins it. A national build's
        state and manifest are ~80 MB of JSON written every corte (~0.2-0.3 s, most of it in write calls
        that release the GIL) that a watcher overlaps with the upload of the corte's pages. The build is
        complete (the ``incompleto`` marker gone) only once they are on disk.
        """
        if not defer_removal:
            self.remove_stale()
        # In memory the files stay in the order they were rendered (readers look paths up; whoever needs
        # an order sorts); on disk orjson sorts the keys: sorting 216,000 paths and rebuilding the dict in
        # Python cost ~0.5 s of every national corte.
        manifest = {"version": 1, **meta, "files": self.files}
        if not background:
            self._write_meta(manifest, extra)
            return manifest

        def write() -> None:
            try:
                self._write_meta(manifest, extra)
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits (see wait())
                self._write_error = exc

        self._writing = threading.Thread(target=write, name="prepgen-manifest")
        self._writing.start()
        return manifest

    def _write_meta(self, manifest: dict[str, Any], extra: dict[str, Callable[[], bytes]]) -> None:
        metadir = self.outdir / META_DIR
        metadir.mkdir(exist_ok=True)
        for name, make in extra.items():
            (metadir / name).write_bytes(make())
        tmp = metadir / "manifest.json.tmp"
        # Compact: 216,000 entries nationally, rewritten every corte.
        tmp.write_bytes(orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS))
        os.replace(tmp, metadir / "manifest.json")  # last: a build is complete once its manifest exists
        self._marker.unlink(missing_ok=True)

    def wait(self) -> None:
        """Until finish(background=True) has written everything; raises what writing raised (each call)."""
        if self._writing is not None:
            self._writing.join()
        if self._write_error is not None:
            raise self._write_error

    def remove_stale(self) -> None:
        """Remove the files the previous build had and this one has not (idempotent).

        Found here, not in finish(): deferred, the difference of two ~216,000-path sets (~0.07 s nationally)
        runs after the corte is live too. Neither set changes meanwhile: the new manifest's files become
        the next build's ``previous``, which no Writer modifies."""
        if self._swept:
            return
        self._swept = True
        for path in self.previous.keys() - self.files.keys():
            with contextlib.suppress(FileNotFoundError):
                (self.outdir / path).unlink()
