from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from apacheserver import ApacheServer
from nginxserver import NginxServer


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
>>>>>>> infra
