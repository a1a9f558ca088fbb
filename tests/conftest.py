from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from apacheserver import ApacheServer
from nginxserver import NginxServer
from s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A prepgen.toml in the developer's cwd must not leak into tests.
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[NginxServer]:
    """A stopped nginx whose state lives in tmp_path; call ``.start(site_text)``. Stopped after the test."""
    server = NginxServer(tmp_path / "nginx")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def apache(tmp_path: Path) -> Iterator[ApacheServer]:
    """A stopped Apache; call ``.start(site_text)``. Its web root must come from ``public_dir()``."""
    server = ApacheServer(tmp_path / "apache")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One real SeaweedFS S3 server for the session (~5 s to start); tests take fresh buckets from it."""
    with pytest.MonkeyPatch.context() as mp:
        # prepgen must find credentials through boto3's own chain, as in production; and a developer's
        # ~/.aws config (profiles, endpoints, regions) must not leak into the tests.
        mp.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        mp.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        mp.setenv("AWS_DEFAULT_REGION", REGION)
        nowhere = tmp_path_factory.mktemp("aws") / "none"
        mp.setenv("AWS_CONFIG_FILE", str(nowhere))
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere))
        mp.delenv("AWS_PROFILE", raising=False)
        mp.delenv("AWS_SESSION_TOKEN", raising=False)
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        server = S3Server(Path(tmp_path_factory.mktemp("seaweedfs")))
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def s3bucket(s3server: S3Server) -> str:
    """A fresh, empty bucket on the session server (restarted first if an earlier test killed it)."""
    if not s3server.alive:
        s3server.start()
    name = f"prepgen-{uuid.uuid4().hex[:12]}"
    s3server.client().create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def campeche_builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The three real Campeche cortes built in order into ONE build dir with `prepgen build` (so section
    stamps are incremental, as on election night), each corte snapshotted right after its build.

    ``{corte_id: snapshot dir}`` in corte order; each snapshot is a complete build dir (``.prepgen/`` too).
    Built once per session (~12 s); tests must not modify the snapshots.
    """
    import shutil

    from click.testing import CliRunner
    from paths import CAMPECHE

    from prepgen.cli import main

    work = tmp_path_factory.mktemp("campeche-build")
    out: dict[str, Path] = {}
    for pkg in CAMPECHE:
        result = CliRunner().invoke(main, ["-q", "build", str(pkg), "-o", str(work / "build")])
        assert result.exit_code == 0, result.output
        corte_id = pkg.name[:13]
        snap = work / corte_id
        shutil.copytree(work / "build", snap)
        out[corte_id] = snap
    return out
