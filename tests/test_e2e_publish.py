"""Acceptance: the real Campeche cortes, built incrementally, published with the CLI to real SeaweedFS and to
a local web root; cortes / rollback; and a reader following every link while the cortes go live."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from e2esite import Get, HttpGetter, dir_getter, load_manifest, make_public, page_corte, sha, walk_corte
from fakebuild import changed_paths
from s3server import S3Server
from sitecheck import json_reachable

from prepgen.cli import main
from prepgen.publish import publish

C1, C2, C3 = "20210606_2240", "20210607_1320", "20210607_2000"
TEXT = {C1: "06/06/2021 22:40 (UTC-5)", C2: "07/06/2021 13:20 (UTC-5)", C3: "07/06/2021 20:00 (UTC-5)"}


def cli(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def uploaded_count(output: str) -> int:
    m = re.search(r"uploaded (\d+) objects", output)
    assert m, output
    return int(m.group(1))


@pytest.fixture(params=["s3", "dir"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[list[str], Get]:
    """(the CLI's target options, an anonymous reader of the published site)."""
    if request.param == "s3":
        server: S3Server = request.getfixturevalue("s3server")
        bucket: str = request.getfixturevalue("s3bucket")
        make_public(server.client(), bucket)
        getter = HttpGetter(f"{server.endpoint_url}/{bucket}/prep2021/")
        request.addfinalizer(getter.close)
        return ["--to", f"s3://{bucket}/prep2021", "--endpoint-url", server.endpoint_url], getter
    root = tmp_path / "webroot"
    return ["--to", str(root)], dir_getter(root)


def pointer_id(get: Get) -> str:
    import json

    raw = get("json/main.json")
    assert raw is not None
    return json.loads(raw)["corte_id"]


def assert_pages_are(get: Get, manifest: dict[str, Any]) -> None:
    """Every page of the corte on the target has that build's bytes."""
    with ThreadPoolExecutor(8) as pool:
        pages = [p for p, e in manifest["files"].items() if e["class"] == "page"]
        bodies = dict(zip(pages, pool.map(get, pages), strict=True))
    wrong = [p for p in pages if sha(bodies[p] or b"") != manifest["files"][p]["sha256"]]
    assert not wrong, f"{len(wrong)} pages differ from corte {manifest['corte_id']}, e.g. {wrong[:3]}"


def test_cli_publish_cortes_rollback(campeche_builds: dict[str, Path], target: tuple[list[str], Get]) -> None:
    opts, get = target
    manifests = {cid: load_manifest(d) for cid, d in campeche_builds.items()}
    previous = None
    for cid, build in campeche_builds.items():
        out = cli("publish", str(build), *opts)
        assert pointer_id(get) == cid
        expected = changed_paths(previous, manifests[cid])
        assert uploaded_count(out) == len(expected), out
        if previous is not None:
            # Incremental: the later corte uploads what changed, well short of the whole site.
            assert len(expected) < len(manifests[cid]["files"])
        again = cli("publish", str(build), *opts)
        assert uploaded_count(again) == 0, again
        previous = manifests[cid]
    # The section page of an unchanged section still says 13:20 on the target (it was never re-uploaded).
    assert page_corte(get("gob/seccion/0004/index.html") or b"") == C2

    listed = cli("cortes", *opts).splitlines()
    rows = [line for line in listed if re.search(r"\d{8}_\d{4}", line)]
    assert [re.search(r"\d{8}_\d{4}", r)[0] for r in rows] == [C3, C2, C1], listed  # type: ignore[index]
    assert [r.startswith("*") for r in rows] == [True, False, False], listed
    assert TEXT[C3] in rows[0]

    cli("rollback", C2, *opts)
    assert pointer_id(get) == C2
    assert_pages_are(get, manifests[C2])
    assert TEXT[C2] in (get("gob/index.html") or b"").decode()
    assert cli("cortes", *opts).count("*") == 1 and f"* {C2}" in cli("cortes", *opts)

    # After a rollback the next publish diffs against the rolled-back (live) manifest.
    out = cli("publish", str(campeche_builds[C3]), *opts)
    assert uploaded_count(out) == len(changed_paths(manifests[C2], manifests[C3])), out
    assert pointer_id(get) == C3
    assert_pages_are(get, manifests[C3])


def test_reader_never_sees_a_404_or_a_mix_while_cortes_go_live(
    campeche_builds: dict[str, Path], target: tuple[list[str], Get]
) -> None:
    """A reader polls main.json and follows every json/html link of the corte it names (election → unit →
    section bundle, candidates, and every page) while the three cortes are published one after another.
    What is asserted per pass is documented in ``e2esite.walk_corte``."""
    opts, get = target
    manifests = {cid: load_manifest(d) for cid, d in campeche_builds.items()}
    to = opts[1]
    endpoint = opts[3] if len(opts) > 3 else None
    stop = threading.Event()
    walks: list[tuple[float, Any]] = []
    failures: list[str] = []
    pool = ThreadPoolExecutor(6)

    def page_get(keys: list[str]) -> dict[str, bytes | None]:
        return dict(zip(keys, pool.map(get, keys), strict=True))

    def reader() -> None:
        seen_pointer = False
        try:
            while True:
                last = stop.is_set()
                started = time.monotonic()
                w = walk_corte(get, manifests, page_get=page_get)
                if w is None:
                    if seen_pointer:
                        failures.append("json/main.json disappeared after it was published")
                else:
                    seen_pointer = True
                    walks.append((started, w))
                    failures.extend(w.errors)
                if last or len(failures) > 20:
                    return
                time.sleep(0.01)
        except Exception as exc:  # surfaced by the main thread
            failures.append(f"reader crashed: {exc!r}")

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        for cid, build in campeche_builds.items():
            result = publish(build, to, endpoint_url=endpoint, threads=8)
            assert result.corte_id == cid
        done = time.monotonic()
    finally:
        stop.set()
        thread.join(timeout=120)
        pool.shutdown()
    assert not thread.is_alive(), "reader did not finish"
    assert not failures, "\n".join(failures[:20])
    during = [w for t, w in walks if t < done]
    assert during, "the reader never completed a pass while publishing"
    assert walks[-1][1].corte_id == C3
    # Every JSON object the corte's pointer reaches in its build was followed (2 elections, unit bundles, chunks,
    # candidate bundles), and every page.
    reachable = {cid: len(json_reachable(build)) for cid, build in campeche_builds.items()}
    assert all(w.json_objects == reachable[w.corte_id] > 10 and w.pages == 1282 for _, w in walks), [
        (w.corte_id, w.json_objects, w.pages) for _, w in walks
    ]
    print(f"reader passes: {[w.corte_id for _, w in walks]}")
