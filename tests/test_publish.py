"""publish / list_cortes / rollback against a real SeaweedFS S3 server and a local web root."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakebuild import FakeSite, changed_paths
from paths import CAMPECHE
from s3server import S3Server

from prepgen.build import BuildCache, build_model, load_and_model
from prepgen.errors import PublishError
from prepgen.headers import CACHE_CONTROL
from prepgen.publish import (
    DirStorage,
    EarlyUploads,
    LiveRecord,
    S3Storage,
    Storage,
    StorageError,
    _check_key,
    _make_archive,
    _read_archive,
    _run_pool,
    list_cortes,
    publish,
    rollback,
)
from prepgen.render import SiteOptions

C1, C2, C3, C4 = "20210606_2240", "20210607_1320", "20210607_2000", "20210608_0800"
POINTER = "json/main.json"
FIG1 = {"0001": 10, "0002": 20, "0003": 30, "0004": 40}
FIG2 = {"0001": 11, "0002": 20, "0003": 30, "0004": 40}
FIG3 = {"0001": 11, "0002": 20, "0003": 33, "0004": 44}
FIG4 = {"0001": 12, "0002": 20, "0003": 33, "0004": 44}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Reader:
    """A reader of the published site: plain bytes of a key, or None for a 404."""

    def __init__(self, get: Callable[[str], bytes | None]) -> None:
        self.get = get

    def pointer(self) -> dict[str, Any] | None:
        raw = self.get("json/main.json")
        return json.loads(raw) if raw is not None else None

    def manifest(self, corte_id: str) -> dict[str, Any] | None:
        raw = self.get(f"_prepgen/cortes/{corte_id}/manifest.json")
        return json.loads(raw) if raw is not None else None


def s3_reader(server: S3Server, bucket: str, prefix: str = "") -> Reader:
    client = server.client(max_pool_connections=4)

    def get(key: str) -> bytes | None:
        try:
            response = client.get_object(Bucket=bucket, Key=prefix + key)
        except client.exceptions.NoSuchKey:
            return None
        data = response["Body"].read()
        return gzip.decompress(data) if response.get("ContentEncoding") == "gzip" else data

    return Reader(get)


def dir_reader(root: Path) -> Reader:
    def get(key: str) -> bytes | None:
        try:
            return (root / key).read_bytes()
        except FileNotFoundError:
            return None

    return Reader(get)


@pytest.fixture(params=["s3", "dir"])
def site_target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None, Reader]:
    """(target, endpoint_url, reader) for each storage kind."""
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3server")
        bucket: str = request.getfixturevalue("s3bucket")
        return f"s3://{bucket}/prep2021", server.endpoint_url, s3_reader(server, bucket, "prep2021/")
    root = tmp_path / "www"
    return str(root), None, dir_reader(root)


def test_successive_cortes_upload_exactly_the_changed_set(
    site_target: tuple[str, str | None, Reader], tmp_path: Path
) -> None:
    target, endpoint, reader = site_target
    site = FakeSite(tmp_path / "builds")
    previous = None
    for corte_id, figures in ((C1, FIG1), (C2, FIG2), (C3, FIG3)):
        build = site.build(corte_id, figures)
        manifest = site.manifests[corte_id]
        result = publish(build, target, endpoint_url=endpoint, threads=4)
        assert reader.pointer()["corte_id"] == corte_id  # type: ignore[index]
        expected = changed_paths(previous, manifest)
        assert set(result.uploaded_paths) == expected
        assert result.uploaded == len(expected)
        assert result.skipped == len(manifest["files"]) - len(expected)
        assert result.previous_corte_id == (previous["corte_id"] if previous else None)
        # Every file of the corte is on the target with the build's bytes.
        for path, entry in manifest["files"].items():
            assert sha(reader.get(path) or b"") == entry["sha256"], path
        assert not list((build / ".prepgen").glob("publish-journal-*")), "journal left after success"
        again = publish(build, target, endpoint_url=endpoint)
        assert (again.uploaded, again.record_objects, again.uploaded_bytes) == (0, 0, 0)
        assert again.skipped == len(manifest["files"])
        previous = manifest
    # C2 changed one section: its page + JSON, the election JSON, pointer and the pages above section level.
    c2 = changed_paths(site.manifests[C1], site.manifests[C2])
    assert "gob/seccion/0001/index.html" in c2 and "gob/seccion/0002/index.html" not in c2
    assert not any(p.startswith("static/") for p in c2)


def test_dry_run_writes_nothing(site_target: tuple[str, str | None, Reader], tmp_path: Path) -> None:
    target, endpoint, reader = site_target
    build = FakeSite(tmp_path / "builds").build(C1, FIG1)
    result = publish(build, target, endpoint_url=endpoint, dry_run=True)
    assert result.dry_run and result.uploaded == len(
        json.loads((build / ".prepgen/manifest.json").read_text())["files"]
    )
    assert "would upload" in str(result)
    assert reader.pointer() is None


@pytest.mark.parametrize("compress", [False, True])
def test_headers_per_class_come_back_on_get(
    s3server: S3Server, s3bucket: str, tmp_path: Path, compress: bool
) -> None:
    site = FakeSite(tmp_path / "builds")
    build = site.build(C1, FIG1)
    publish(build, f"s3://{s3bucket}", endpoint_url=s3server.endpoint_url, compress=compress)
    client = s3server.client()
    seen = set()
    for path, entry in site.manifests[C1]["files"].items():
        response = client.get_object(Bucket=s3bucket, Key=path)
        assert response["ContentType"] == entry["type"], path
        assert response["CacheControl"] == CACHE_CONTROL[entry["class"]], path
        body = response["Body"].read()
        if compress and path != "json/main.json":
            assert response.get("ContentEncoding") == "gzip", path
            body = gzip.decompress(body)
        else:  # the pointer stays plain for clients that read it raw
            assert "ContentEncoding" not in response, path
        assert sha(body) == entry["sha256"]
        seen.add(entry["class"])
    assert seen == {"pointer", "immutable", "page"}


def test_reader_never_sees_a_404_or_a_mix(
    site_target: tuple[str, str | None, Reader], tmp_path: Path
) -> None:
    """A reader polls the pointer and follows every path of the corte it names while cortes go out."""
    target, endpoint, reader = site_target
    site = FakeSite(tmp_path / "builds")
    cortes = [(C1, FIG1), (C2, FIG2), (C3, FIG3), (C4, FIG4)]
    builds = [site.build(cid, fig, bulk=40) for cid, fig in cortes]
    order = [cid for cid, _ in cortes]
    publish(builds[0], target, endpoint_url=endpoint)
    problems: list[str] = []
    stop = threading.Event()
    rounds = {"n": 0, "cortes": set()}

    def read_loop() -> None:
        while not stop.is_set():
            pointer = reader.pointer()
            if pointer is None:
                problems.append("pointer 404")
                return
            cid = pointer["corte_id"]
            manifest = reader.manifest(cid)
            if manifest is None:
                problems.append(f"pointer names {cid} but its manifest is missing")
                return
            # The JSON tree named by the pointer is exactly the corte's (content-addressed: no mix).
            election = json.loads(reader.get(pointer["elecciones"][0]["json"].lstrip("/")) or b"null")
            if election is None or election["corte"] != cid:
                problems.append(f"election JSON of {cid} missing or from another corte")
            for path, entry in manifest["files"].items():
                data = reader.get(path)
                if data is None:
                    problems.append(f"404 on {path} while {cid} is live")
                    continue
                if entry["class"] == "immutable" and sha(data) != entry["sha256"]:
                    problems.append(f"{path} differs from corte {cid}")
                if entry["class"] == "page":
                    # Accepted: a page may already be the next corte's (overwritten before the pointer
                    # flips), never an older one's.
                    allowed = {
                        site.manifests[c]["files"].get(path, {}).get("sha256")
                        for c in order[order.index(cid) :]
                    }
                    if sha(data) not in allowed:
                        problems.append(f"{path} is older than live corte {cid}")
            rounds["n"] += 1
            rounds["cortes"].add(cid)  # type: ignore[attr-defined]

    thread = threading.Thread(target=read_loop)
    thread.start()
    try:
        for build in builds[1:]:
            publish(build, target, endpoint_url=endpoint, threads=8)
            time.sleep(0.05)
    finally:
        time.sleep(0.2)
        stop.set()
        thread.join(timeout=60)
    assert problems == []
    assert rounds["n"] >= 2
    assert len(rounds["cortes"]) >= 2, "the reader never overlapped a publish"  # type: ignore[arg-type]
    assert reader.pointer()["corte_id"] == C4  # type: ignore[index]


def test_storage_killed_mid_upload_then_resumed(s3server: S3Server, s3bucket: str, tmp_path: Path) -> None:
    site = FakeSite(tmp_path / "builds")
    target = f"s3://{s3bucket}/site"
    reader = s3_reader(s3server, s3bucket, "site/")
    publish(site.build(C1, FIG1), target, endpoint_url=s3server.endpoint_url)
    build = site.build(C2, FIG2, bulk=300)
    todo = changed_paths(site.manifests[C1], site.manifests[C2])

    def kill_after_50(path: str, done: int, total: int) -> None:
        if done == 50:
            s3server.kill()

    # Few retries so the dead storage is reported in seconds (the default backs off for longer).
    storage = S3Storage(
        target, endpoint_url=s3server.endpoint_url, threads=8, max_attempts=2, connect_timeout=1
    )
    try:
        with pytest.raises(PublishError) as info:
            publish(build, storage, threads=8, progress=kill_after_50)
        message = str(info.value.message)
        assert "\n" not in message and target in message
        assert f"the live corte is still {C1}" in message and "rerun publish when storage is back" in message
    finally:
        if not s3server.alive:
            s3server.start()
    assert reader.pointer()["corte_id"] == C1  # type: ignore[index]
    assert reader.manifest(C2) is None  # the interrupted corte is not complete
    assert [c.corte_id for c in list_cortes(target, endpoint_url=s3server.endpoint_url)] == [C1]
    with pytest.raises(PublishError, match="unknown or incomplete"):
        rollback(C2, target, endpoint_url=s3server.endpoint_url)
    journal = next((build / ".prepgen").glob("publish-journal-*.jsonl"))
    confirmed = {json.loads(line)["p"] for line in journal.read_text().splitlines()[1:]}
    assert 50 <= len(confirmed) < len(todo)

    result = publish(build, target, endpoint_url=s3server.endpoint_url)
    assert result.resumed == len(confirmed)
    assert set(result.uploaded_paths) == todo - confirmed
    assert reader.pointer()["corte_id"] == C2  # type: ignore[index]
    for path, entry in site.manifests[C2]["files"].items():
        assert sha(reader.get(path) or b"") == entry["sha256"], path
    assert not journal.exists()


def test_publishing_process_killed_then_resumed_dir(tmp_path: Path) -> None:
    site = FakeSite(tmp_path / "builds")
    www = tmp_path / "www"
    reader = dir_reader(www)
    publish(site.build(C1, FIG1), str(www))
    build = site.build(C2, FIG2, bulk=400)
    todo = changed_paths(site.manifests[C1], site.manifests[C2])
    # The sleep in progress only slows the child down enough to be killed mid-way.
    code = (
        "import sys, time\n"
        "from prepgen.publish import publish\n"
        "publish(sys.argv[1], sys.argv[2], threads=2, progress=lambda *a: time.sleep(0.005))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    child = subprocess.Popen([sys.executable, "-c", code, str(build), str(www)], env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(list((www / "json" / "gob").glob("*.json"))) < 80:
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert reader.pointer()["corte_id"] == C1  # type: ignore[index]
    assert reader.manifest(C2) is None
    journal = next((build / ".prepgen").glob("publish-journal-*.jsonl"))
    confirmed = {json.loads(line)["p"] for line in journal.read_text().splitlines()[1:] if line.endswith("}")}
    assert confirmed and len(confirmed) < len(todo)

    result = publish(build, str(www))
    assert result.resumed == len(confirmed)
    # A file written but not yet journaled when the kill landed is simply uploaded again.
    assert set(result.uploaded_paths) == todo - confirmed
    assert reader.pointer()["corte_id"] == C2  # type: ignore[index]
    for path, entry in site.manifests[C2]["files"].items():
        assert sha(reader.get(path) or b"") == entry["sha256"], path
    # Readable by the web server's user (a temp file from mkstemp would be 0600).
    umask = os.umask(0)
    os.umask(umask)
    assert (www / "index.html").stat().st_mode & 0o777 == 0o666 & ~umask


def test_list_cortes_and_rollback(site_target: tuple[str, str | None, Reader], tmp_path: Path) -> None:
    target, endpoint, reader = site_target
    site = FakeSite(tmp_path / "builds")
    for corte_id, figures in ((C1, FIG1), (C2, FIG2), (C3, FIG3)):
        publish(site.build(corte_id, figures), target, endpoint_url=endpoint)
    cortes = list_cortes(target, endpoint_url=endpoint)
    assert [c.corte_id for c in cortes] == [C3, C2, C1]
    assert [c.live for c in cortes] == [True, False, False]
    assert cortes[0].corte_texto == "07/06/2021 20:00 (UTC-5)"

    with pytest.raises(PublishError, match="unknown or incomplete"):
        rollback("20990101_0000", target, endpoint_url=endpoint)

    result = rollback(C1, target, endpoint_url=endpoint)
    # Pages that differ between C3 and C1: the ones above section level and sections 0001, 0003, 0004.
    c1_pages = {p for p, e in site.manifests[C1]["files"].items() if e["class"] == "page"}
    differing = {
        p
        for p in c1_pages
        if site.manifests[C3]["files"][p]["sha256"] != site.manifests[C1]["files"][p]["sha256"]
    }
    assert result.pages == len(differing) and "gob/seccion/0002/index.html" not in differing
    assert reader.pointer()["corte_id"] == C1  # type: ignore[index]
    for path, entry in site.manifests[C1]["files"].items():
        assert sha(reader.get(path) or b"") == entry["sha256"], path
    assert [c.corte_id for c in list_cortes(target, endpoint_url=endpoint) if c.live] == [C1]

    # Roll forward to C2: its pages come from two archives (section 0002's bytes date from C1).
    rollback(C2, target, endpoint_url=endpoint)
    for path, entry in site.manifests[C2]["files"].items():
        assert sha(reader.get(path) or b"") == entry["sha256"], path
    rollback(C1, target, endpoint_url=endpoint)

    # The next publish diffs against the rolled-back (live) corte.
    build4 = site.build(C4, FIG4)
    result4 = publish(build4, target, endpoint_url=endpoint)
    assert result4.previous_corte_id == C1
    assert set(result4.uploaded_paths) == changed_paths(site.manifests[C1], site.manifests[C4])
    for path, entry in site.manifests[C4]["files"].items():
        assert sha(reader.get(path) or b"") == entry["sha256"], path


def test_republishing_a_rebuilt_corte_keeps_it_restorable(tmp_path: Path) -> None:
    """Same corte id, new page bytes (e.g. a theme fix): the old record's pages stay in the archive."""
    www = str(tmp_path / "www")
    reader = dir_reader(tmp_path / "www")
    publish(FakeSite(tmp_path / "a").build(C1, FIG1), www)
    rebuilt = FakeSite(tmp_path / "b", theme="body{color:#000}")
    publish(rebuilt.build(C1, FIG1), www)
    publish(rebuilt.build(C2, FIG2), www)
    rollback(C1, www)
    for path, entry in rebuilt.manifests[C1]["files"].items():
        assert sha(reader.get(path) or b"") == entry["sha256"], path
    # all_pages restores every page even where the live manifest says it already matches.
    pages = [p for p, e in rebuilt.manifests[C1]["files"].items() if e["class"] == "page"]
    assert rollback(C1, www, all_pages=True).pages == len(pages)


@pytest.mark.parametrize("damage", ["same size", "grown", "shrunk", "gone"])
def test_a_build_file_changed_after_the_build_is_refused_and_the_live_corte_stays(
    damage: str, tmp_path: Path
) -> None:
    """publish reads each file once (with the manifest's size as a hint) and checks it against the manifest."""
    www = str(tmp_path / "www")
    reader = dir_reader(tmp_path / "www")
    site = FakeSite(tmp_path / "builds")
    publish(site.build(C1, FIG1), www)
    build = site.build(C2, FIG2)
    page = build / "gob/seccion/0001/index.html"
    data = page.read_bytes()
    if damage == "same size":
        page.write_bytes(data[:-1] + (b"!" if data[-1:] != b"!" else b"?"))
    elif damage == "grown":
        page.write_bytes(data + b" ")
    elif damage == "shrunk":
        page.write_bytes(data[:-1])
    else:
        page.unlink()
    with pytest.raises(PublishError) as info:
        publish(build, www)
    message = info.value.message
    assert str(page) in message and "\n" not in message
    if damage == "gone":
        assert "cannot read (No such file or directory); rebuild and rerun" in message
    else:
        assert "bytes differ from the build manifest; rebuild and rerun" in message
    assert reader.pointer()["corte_id"] == C1  # type: ignore[index]
    # Rebuilt, it goes up, page included.
    page.write_bytes(data)
    publish(build, www)
    assert reader.pointer()["corte_id"] == C2  # type: ignore[index]
    assert reader.get("gob/seccion/0001/index.html") == data


def test_unreachable_storage_is_one_clear_line(tmp_path: Path) -> None:
    build = FakeSite(tmp_path / "builds").build(C1, FIG1)
    storage = S3Storage(
        "s3://nobucket/x", endpoint_url="http://127.0.0.1:9", max_attempts=1, connect_timeout=1
    )
    with pytest.raises(PublishError) as info:
        publish(build, storage)
    message = info.value.message
    assert "s3://nobucket/x" in message and "json/main.json" in message and "\n" not in message
    assert "the live site was not changed" in message


def test_missing_bucket_and_bad_targets(s3server: S3Server, tmp_path: Path) -> None:
    build = FakeSite(tmp_path / "builds").build(C1, FIG1)
    with pytest.raises(PublishError, match="NoSuchBucket"):
        publish(build, "s3://prepgen-missing-bucket/x", endpoint_url=s3server.endpoint_url)
    with pytest.raises(PublishError, match="unsupported target"):
        publish(build, "ftp://example/x")
    with pytest.raises(PublishError, match="no build manifest"):
        publish(tmp_path, str(tmp_path / "www"))


def test_record_manifest_is_compact_and_gzip_encoded_on_s3(
    s3server: S3Server, s3bucket: str, tmp_path: Path
) -> None:
    site = FakeSite(tmp_path / "builds")
    target = f"s3://{s3bucket}/site"
    publish(site.build(C1, FIG1), target, endpoint_url=s3server.endpoint_url)
    response = s3server.client().get_object(Bucket=s3bucket, Key=f"site/_prepgen/cortes/{C1}/manifest.json")
    assert response["ContentEncoding"] == "gzip" and response["ContentType"] == "application/json"
    raw = gzip.decompress(response["Body"].read())
    assert b"\n" not in raw and json.loads(raw)["files"].keys() == site.manifests[C1]["files"].keys()
    # A web root keeps it plain (nginx would otherwise serve gzip bytes as JSON).
    www = tmp_path / "www"
    publish(site.build(C1, FIG1), str(www))
    assert json.loads((www / f"_prepgen/cortes/{C1}/manifest.json").read_bytes())["corte_id"] == C1


def test_a_record_written_by_an_older_prepgen_still_reads(
    s3server: S3Server, s3bucket: str, tmp_path: Path
) -> None:
    """Records from before the compact format (indented, plain) keep working for diff, list and rollback."""
    site = FakeSite(tmp_path / "builds")
    target = f"s3://{s3bucket}/site"
    publish(site.build(C1, FIG1), target, endpoint_url=s3server.endpoint_url)
    client = s3server.client()
    key = f"site/_prepgen/cortes/{C1}/manifest.json"
    record = json.loads(gzip.decompress(client.get_object(Bucket=s3bucket, Key=key)["Body"].read()))
    client.put_object(
        Bucket=s3bucket, Key=key, ContentType="application/json",
        Body=json.dumps(record, ensure_ascii=False, indent=1, sort_keys=True).encode(),
    )
    result = publish(site.build(C2, FIG2), target, endpoint_url=s3server.endpoint_url)
    assert set(result.uploaded_paths) == changed_paths(site.manifests[C1], site.manifests[C2])
    assert [c.files for c in list_cortes(target, endpoint_url=s3server.endpoint_url)] == [
        len(site.manifests[C2]["files"]),
        len(site.manifests[C1]["files"]),
    ]
    rollback(C1, target, endpoint_url=s3server.endpoint_url)
    reader = s3_reader(s3server, s3bucket, "site/")
    for path, entry in site.manifests[C1]["files"].items():
        assert sha(reader.get(path) or b"") == entry["sha256"], path


# --------------------------------------------------------------------------------- in-memory hand-over


class Watched:
    """A Storage that notes every key read from it and can fail page PUTs after the first ``fail_after``."""

    def __init__(self, inner: Storage, fail_after: int | None = None) -> None:
        self.inner = inner
        self.description = inner.description
        self.gets: list[str] = []
        self.fail_after = fail_after
        self.page_puts = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        self.gets.append(key)
        return self.inner.get(key)

    def put(self, key: str, data: bytes, **kwargs: Any) -> None:
        if self.fail_after is not None and key.endswith("index.html"):
            with self._lock:
                self.page_puts += 1
                if self.page_puts > self.fail_after:
                    raise StorageError(f"uploading {key}", "injected failure")
        self.inner.put(key, data, **kwargs)

    def list(self, prefix: str) -> list[str]:
        return self.inner.list(prefix)

    def barrier(self) -> None:
        self.inner.barrier()


def record_key(corte_id: str, name: str) -> str:
    return f"_prepgen/cortes/{corte_id}/{name}"


@pytest.fixture(params=["s3", "dir"])
def two_targets(request: pytest.FixtureRequest, tmp_path: Path) -> list[tuple[Callable[[], Storage], Reader]]:
    """Two empty targets of one kind: (open a Storage on it, reader)."""
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3server")
        bucket: str = request.getfixturevalue("s3bucket")

        def s3(prefix: str) -> Callable[[], Storage]:
            return lambda: S3Storage(f"s3://{bucket}/{prefix}", endpoint_url=server.endpoint_url, threads=4)

        return [(s3(p), s3_reader(server, bucket, p + "/")) for p in ("get", "mem")]
    roots = [tmp_path / "get", tmp_path / "mem"]
    return [((lambda r=r: DirStorage(r)), dir_reader(r)) for r in roots]


def test_in_memory_hand_over_publishes_exactly_what_the_get_path_does(
    two_targets: list[tuple[Callable[[], Storage], Reader]], tmp_path: Path
) -> None:
    """Same builds to two targets: one as `prepgen publish` does (reads both manifests), one as the watcher
    does (build manifest and live record handed over in memory). Every object must come out the same."""
    (open_get, get_reader), (open_mem, mem_reader) = two_targets
    site = FakeSite(tmp_path / "builds")
    held: LiveRecord | None = None
    previous: str | None = None
    for corte_id, figures in ((C1, FIG1), (C2, FIG2), (C3, FIG3), (C4, FIG4)):
        build = site.build(corte_id, figures, pages=5)
        plain = publish(build, open_get(), threads=4)
        storage = Watched(open_mem())
        handed = publish(build, storage, threads=4, manifest=site.manifests[corte_id], live=held)
        assert sorted(handed.uploaded_paths) == sorted(plain.uploaded_paths)
        assert handed.uploaded_paths and POINTER in handed.uploaded_paths
        counts = ("uploaded", "uploaded_bytes", "skipped", "skipped_bytes", "record_objects", "previous_corte_id")
        assert [getattr(handed, k) for k in counts] == [getattr(plain, k) for k in counts]
        for key in (POINTER, *(record_key(corte_id, n) for n in ("manifest.json", "main.json", "paginas.tar.gz"))):
            assert mem_reader.get(key) is not None and mem_reader.get(key) == get_reader.get(key), key
        record = mem_reader.manifest(corte_id)
        assert handed.live is not None and handed.live.corte_id == corte_id
        assert handed.live.files == record["files"]  # type: ignore[index]
        if previous is None:
            assert handed.live_source == plain.live_source == "none"
        else:
            # One GET of the pointer; the previous record came from memory, not from the target.
            assert (handed.live_source, plain.live_source) == ("memory", "storage")
            assert storage.gets[0] == POINTER and record_key(previous, "manifest.json") not in storage.gets
        held, previous = handed.live, corte_id
    # The same build again, with memory: nothing to do, and the memory stays good for the next corte.
    again = publish(build, Watched(open_mem()), manifest=site.manifests[C4], live=held)
    assert (again.uploaded, again.record_objects, again.live_source) == (0, 0, "memory")
    assert again.live == held


def test_in_memory_record_is_dropped_when_the_pointer_moved_behind_its_back(tmp_path: Path) -> None:
    www = tmp_path / "www"
    reader = dir_reader(www)
    site = FakeSite(tmp_path / "builds")
    held: LiveRecord | None = None
    for corte_id, figures in ((C1, FIG1), (C2, FIG2)):
        held = publish(site.build(corte_id, figures), Watched(DirStorage(www)), live=held).live

    def check(corte_id: str, live_id: str, result: Any, storage: Watched) -> None:
        assert result.live_source == "storage" and record_key(live_id, "manifest.json") in storage.gets
        assert result.previous_corte_id == live_id
        assert set(result.uploaded_paths) == changed_paths(site.manifests[live_id], site.manifests[corte_id])
        for path, entry in site.manifests[corte_id]["files"].items():
            assert sha(reader.get(path) or b"") == entry["sha256"], path

    # An operator rolls back to C1 while the watcher remembers C2.
    rollback(C1, DirStorage(www))
    storage = Watched(DirStorage(www))
    result = publish(site.build(C3, FIG3), storage, manifest=site.manifests[C3], live=held)
    check(C3, C1, result, storage)
    held = result.live

    # Another publisher re-publishes C3 rebuilt (other theme, other section stamps): same corte id, another
    # pointer and other pages. Trusting memory would leave its pages where C4 keeps ours unchanged.
    other = FakeSite(tmp_path / "other", theme="body{color:#000}")
    publish(other.build(C3, FIG3), DirStorage(www))
    assert reader.pointer()["corte_id"] == C3  # type: ignore[index]
    storage = Watched(DirStorage(www))
    result = publish(site.build(C4, FIG4), storage, manifest=site.manifests[C4], live=held)
    assert result.live_source == "storage" and record_key(C3, "manifest.json") in storage.gets
    assert set(result.uploaded_paths) == changed_paths(other.manifests[C3], site.manifests[C4])
    for path, entry in site.manifests[C4]["files"].items():
        assert sha(reader.get(path) or b"") == entry["sha256"], path

    # A record held for another target is never used on this one.
    elsewhere = tmp_path / "elsewhere"
    publish(site.build(C4, FIG4), DirStorage(elsewhere))
    storage = Watched(DirStorage(elsewhere))
    assert publish(site.build(C4, FIG4), storage, live=result.live).live_source == "storage"


def test_before_record_runs_once_the_pages_are_up_and_its_failure_keeps_the_live_corte(tmp_path: Path) -> None:
    """The watcher's build finishes writing its state and manifest while the pages upload (publish's
    ``before_record`` waits for it): called after every data object and page, before the corte's record
    and pointer; what it raises stops the publish with the previous corte still live."""
    www = tmp_path / "www"
    reader = dir_reader(www)
    site = FakeSite(tmp_path / "builds")
    publish(site.build(C1, FIG1), DirStorage(www))
    build_dir = site.build(C2, FIG2)
    storage = Logged(DirStorage(www))
    seen: list[list[str]] = []

    def full_disk() -> None:
        seen.append([key for key, _ in storage.puts])
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        publish(build_dir, storage, before_record=full_disk)
    assert reader.pointer()["corte_id"] == C1  # type: ignore[index]
    assert len(seen) == 1 and set(seen[0]) == changed_paths(site.manifests[C1], site.manifests[C2]) - {POINTER}
    calls: list[int] = []
    publish(build_dir, DirStorage(www), before_record=lambda: calls.append(len(calls)))
    assert calls == [0] and reader.pointer()["corte_id"] == C2  # type: ignore[index]


class Logged(Watched):
    """Notes every PUT in order, with whether the build was still being written; can fail early uploads."""

    def __init__(self, inner: Storage, fail_early: bool = False) -> None:
        super().__init__(inner)
        self.puts: list[tuple[str, bool]] = []
        self.building = False
        self.fail_early = fail_early

    def put(self, key: str, data: bytes, **kwargs: Any) -> None:
        if self.building and self.fail_early:
            raise StorageError(f"uploading {key}", "injected failure")
        super().put(key, data, **kwargs)
        with self._lock:
            self.puts.append((key, self.building))


def test_early_uploads_send_new_json_while_building_and_change_nothing_else(
    two_targets: list[tuple[Callable[[], Storage], Reader]], tmp_path: Path
) -> None:
    """The watcher's path: while corte k+1 is written, its new content-addressed files go up; publish then
    sends the rest. The target must end up exactly as a plain publish of the same builds leaves it, with no
    page and no pointer written before the build was complete, and every page after every data object.
    The third corte's early uploads all fail: publish must send them itself."""
    (open_plain, plain_reader), (open_early, early_reader) = two_targets
    out, cache = tmp_path / "build", BuildCache()
    held: LiveRecord | None = None
    sent_early = 0
    assert len(CAMPECHE) == 3
    for n, package in enumerate(CAMPECHE):
        fail_early = n == 2
        pkg, elections, timings = load_and_model(package, cache=cache)
        storage = Logged(open_early(), fail_early=fail_early)
        early = EarlyUploads.start(out, storage, held, threads=4)
        assert (early is None) == (held is None)
        storage.building = True
        built = build_model(
            pkg, elections, timings, out, SiteOptions(), cache=cache, deferred=True,
            on_file=early.offer if early else None,
        )
        confirmed = early.finish() if early else None
        storage.building = False
        result = publish(out, storage, threads=4, manifest=built.manifest, live=held, early=confirmed)
        built.cleanup()
        plain = publish(out, open_plain(), threads=4)
        assert sorted(result.uploaded_paths) == sorted(plain.uploaded_paths)
        counts = ("uploaded", "uploaded_bytes", "skipped", "skipped_bytes", "record_objects")
        assert [getattr(result, k) for k in counts] == [getattr(plain, k) for k in counts]
        files = built.manifest["files"]  # type: ignore[index]
        during = [key for key, building in storage.puts if building]
        if held is not None and not fail_early:
            assert during and set(during) == set(confirmed or {})
            # Only new content-addressed data went up early: nothing a reader can reach yet.
            for key in during:
                assert files[key]["class"] == "immutable", key
                assert held.files.get(key, {}).get("sha256") != files[key]["sha256"], key
            # ... and publish did not send them again.
            assert not set(during) & {key for key, building in storage.puts if not building}
        else:
            assert not during and not confirmed
            assert early is None or early.failed > 0
        sent_early += len(during)
        order = [key for key, _ in storage.puts if key in files]
        pages = [i for i, key in enumerate(order) if files[key]["class"] == "page"]
        data = [i for i, key in enumerate(order) if files[key]["class"] == "immutable"]
        if pages and data:
            assert max(data) < min(pages)
        assert order[-1] == POINTER and storage.puts[-1][0] == POINTER
        corte_id = built.manifest["corte_id"]  # type: ignore[index]
        for key in (*files, *(record_key(corte_id, n) for n in ("manifest.json", "main.json", "paginas.tar.gz"))):
            assert early_reader.get(key) == plain_reader.get(key), key
        held = result.live
    assert sent_early > 0


def test_resumed_publish_archives_every_page_of_the_corte(tmp_path: Path) -> None:
    """Pages a killed run already uploaded are not uploaded again, but still belong in the archive."""
    www, fresh = tmp_path / "www", tmp_path / "fresh"
    site = FakeSite(tmp_path / "builds")
    for root in (www, fresh):
        publish(site.build(C1, FIG1, pages=60), DirStorage(root))
    build = site.build(C2, FIG2, pages=60)
    with pytest.raises(PublishError, match="injected failure"):
        publish(build, Watched(DirStorage(www), fail_after=25), threads=4, manifest=site.manifests[C2])
    reader = dir_reader(www)
    assert reader.pointer()["corte_id"] == C1 and reader.manifest(C2) is None  # type: ignore[index]
    journal = next((build / ".prepgen").glob("publish-journal-*.jsonl"))
    confirmed = {json.loads(line)["p"] for line in journal.read_text().splitlines()[1:]}
    confirmed_pages = {p for p in confirmed if p.endswith(".html")}
    assert len(confirmed_pages) >= 25

    result = publish(build, Watched(DirStorage(www)), threads=4, manifest=site.manifests[C2])
    assert result.resumed == len(confirmed) and not confirmed_pages & set(result.uploaded_paths)
    record = reader.manifest(C2)
    assert record is not None
    ours = {(p, e["sha256"]) for p, e in record["files"].items() if e.get("origen") == C2}
    assert confirmed_pages <= {p for p, _ in ours}
    archive = _read_archive(reader.get(record_key(C2, "paginas.tar.gz")) or b"")
    assert set(archive) == ours
    for (path, digest), data in archive.items():
        assert sha(data) == digest, path
    # Byte for byte the archive an uninterrupted publish makes (members in path order either way).
    publish(build, DirStorage(fresh))
    assert (fresh / record_key(C2, "paginas.tar.gz")).read_bytes() == reader.get(record_key(C2, "paginas.tar.gz"))


def test_archive_is_the_tar_that_tarfile_writes(tmp_path: Path) -> None:
    """The hand-made member headers are tarfile's ustar bytes, and what ustar cannot hold (a path over 100
    bytes, or not ASCII) takes tarfile's pax route, so rollback's reader gets every (path, sha) back."""
    import io
    import random
    import tarfile

    rng = random.Random(5)
    paths = ["index.html", "dip-fed/seccion/01-01-0001/index.html", "a" * 99, "ñandú/índice.html", "x/" * 60 + "y"]
    members = []
    for n in range(120):
        data = rng.randbytes(rng.choice([0, 1, 511, 512, 513, rng.randint(0, 9000)]))
        members.append((f"{rng.choice(paths)}{n}", sha(data), data))
    members.sort()
    short = [m for m in members if len(m[0]) <= 100 and m[0].isascii()]
    assert 0 < len(short) < len(members)
    expected = io.BytesIO()
    with tarfile.open(fileobj=expected, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path, digest, data in short:
            info = tarfile.TarInfo(f"{digest}/{path}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    assert gzip.decompress(_make_archive(short)) == expected.getvalue()
    assert _read_archive(_make_archive(members)) == {(path, digest): data for path, digest, data in members}
    assert _read_archive(_make_archive([])) == {}


def test_upload_pool_runs_every_job_once_and_stops_at_the_first_failure() -> None:
    ran: list[str] = []
    lock = threading.Lock()

    def job(path: str, fail: bool = False) -> Callable[[], None]:
        def run() -> None:
            if fail:
                raise PublishError(f"{path} failed")
            with lock:
                ran.append(path)

        return run

    done: list[str] = []
    _run_pool([(f"p{n}", job(f"p{n}")) for n in range(500)], 8, done.append)
    assert sorted(ran) == sorted(done) == sorted(f"p{n}" for n in range(500))
    ran.clear()
    jobs = [(f"p{n}", job(f"p{n}", fail=n == 3)) for n in range(5000)]
    with pytest.raises(PublishError, match="p3 failed"):
        _run_pool(jobs, 1, lambda path: None)
    assert ran == ["p0", "p1", "p2"]  # one thread: nothing handed out after the failure
    with pytest.raises(PublishError, match="p3 failed"):
        _run_pool(jobs, 16, lambda path: None)


@pytest.mark.parametrize("key", ["", "/a", "a//b", "a/", "./a", "a/./b", "../a", "a/..", "a\\b", ".", ".."])
def test_unsafe_manifest_paths_are_refused(key: str) -> None:
    with pytest.raises(PublishError, match="refusing unsafe path"):
        _check_key(key)


@pytest.mark.parametrize("key", ["a", "a/b/index.html", ".well-known/x", "a/..b/c", "a.../b"])
def test_safe_manifest_paths_pass(key: str) -> None:
    assert _check_key(key) == key
