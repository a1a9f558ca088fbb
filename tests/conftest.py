from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from nginxserver import NginxServer


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[NginxServer]:
    """A stopped nginx whose state lives in tmp_path; call ``.start(site_text)``. Stopped after the test."""
    server = NginxServer(tmp_path / "nginx")
    try:
        yield server
    finally:
        server.stop()
