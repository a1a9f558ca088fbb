"""Checks of a built site that several tests share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson


def site_links(obj: Any) -> list[str]:
    out: list[str] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("json", "html") and isinstance(v, str):
                out.append(v)
            else:
                out.extend(site_links(v))
    elif isinstance(obj, list):
        for v in obj:
            out.extend(site_links(v))
    return out


def json_reachable(root: Path, base: str = "/") -> set[str]:
    """The JSON objects (their URLs) reachable from a build's json/main.json through json links."""
    seen: set[str] = set()
    queue = [u for u in site_links(orjson.loads((root / "json" / "main.json").read_bytes())) if u.endswith(".json")]
    while queue:
        url = queue.pop()
        if url not in seen:
            seen.add(url)
            obj = orjson.loads(resolve(root, url, base).read_bytes())
            queue.extend(u for u in site_links(obj) if u.endswith(".json") and u not in seen)
    return seen


def resolve(root: Path, url: str, base: str = "/") -> Path:
    assert url.startswith(base), url
    rel = url[len(base) :]
    p = root / rel
    return p / "index.html" if url.endswith("/") else p


def check_links(root: Path, base: str = "/") -> int:
    """Every json/html path named in any JSON of the site exists. Returns how many were checked."""
    checked = 0
    for jf in [root / "json" / "main.json", *sorted((root / "json").rglob("*.json"))]:
        for url in site_links(orjson.loads(jf.read_bytes())):
            assert resolve(root, url, base).exists(), f"{jf.relative_to(root)} names missing {url}"
            checked += 1
    return checked
