from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A prepgen.toml in the developer's cwd must not leak into tests.
    monkeypatch.chdir(tmp_path)
