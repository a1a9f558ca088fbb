"""Helpers for the end-to-end tests on the real Campeche build: readers of a published site (anonymous HTTP
against a public-read bucket, or a web root on disk), and a consistency walk that follows every link of the
corte a pointer names."""

from __future__ import annotations

import hashlib
import http.client
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sitecheck import site_links

Get = Callable[[str], "bytes | None"]
"""``get(key)``: bytes of a site key (``gob/index.html``, ``json/main.json``), or None for a 404."""

CORTE_RE = re.compile(rb"data-corte=\"?(\d{8}_\d{4})")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_manifest(build: Path) -> dict[str, Any]:
    return json.loads((build / ".prepgen" / "manifest.json").read_bytes())


def key_of(url: str, base: str = "/") -> str:
    """Site URL path → storage key (directory URLs are their index.html)."""
    assert url.startswith(base), url
    rel = url[len(base) :]
    return rel + "index.html" if rel.endswith("/") or rel == "" else rel


def page_corte(html: bytes) -> str:
    """The corte id a page's figures come from (``<body data-corte=...>``)."""
    m = CORTE_RE.search(html)
    assert m, html[:300]
    return m.group(1).decode()


def make_public(client: Any, bucket: str) -> None:
    """Anonymous GetObject on the bucket, as a bucket behind a CDN / public site is configured."""
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject"], "Resource": [f"arn:aws:s3:::{bucket}/*"]}
        ],
    }
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


class HttpGetter:
    """Anonymous HTTP GETs under ``prefix_url`` (one keep-alive connection per thread); 403/404 → None."""

    def __init__(self, prefix_url: str) -> None:
        parts = urlsplit(prefix_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/") + "/"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[http.client.HTTPConnection] = []

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def request(self, key: str, method: str = "GET") -> tuple[int, http.client.HTTPMessage, bytes]:
        for attempt in (0, 1):
            conn = self._conn()
            try:
                conn.request(method, self.prefix + key)
                response = conn.getresponse()
                return response.status, response.headers, response.read()
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def __call__(self, key: str) -> bytes | None:
        status, _, body = self.request(key)
        if status in (403, 404):
            return None
        assert status == 200, (key, status, body[:200])
        return body

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()


def dir_getter(root: Path) -> Get:
    def get(key: str) -> bytes | None:
        try:
            return (root / key).read_bytes()
        except FileNotFoundError:
            return None

    return get


@dataclass
class Walk:
    """One pass of a reader over the corte a pointer names."""

    corte_id: str
    json_objects: int = 0
    pages: int = 0
    errors: list[str] = field(default_factory=list)


def walk_corte(
    get: Get,
    manifests: dict[str, dict[str, Any]],
    *,
    page_get: Callable[[list[str]], dict[str, bytes | None]] | None = None,
) -> Walk | None:
    """Read the pointer, then follow every ``json``/``html`` link of that corte, checking:

    * no 404 anywhere (a pointer once seen never disappears either: the caller checks that);
    * **JSON: no mix** — every JSON object reachable from pointer X is byte-identical to corte X's build
      (content-addressed, never overwritten), election / unit / candidate JSON carry X's ``corte``, and each
      section inside a bundle carries a ``corte_id`` ≤ X (the corte its figures last changed in);
    * **pages** (stable URLs, overwritten in place): the bytes are exactly some corte's build of that page
      (never a torn or unknown page); a page above section level carries a corte ≥ X and a section page a
      corte ≥ its section's ``corte_id`` in X's bundle — DECISIONS.md accepts neighbouring pages of the
      next corte (pages are uploaded before the pointer flips) but never a page older than the live pointer.

    Returns None when there is no pointer yet.
    """
    raw = get("json/main.json")
    if raw is None:
        return None
    pointer = json.loads(raw)
    x = pointer["corte_id"]
    w = Walk(x)
    files = manifests[x]["files"]
    if sha(raw) != files["json/main.json"]["sha256"]:
        w.errors.append(f"pointer {x}: bytes differ from the build's json/main.json")
    # page key → oldest acceptable corte id; the landing page is named by no JSON but is read first.
    page_floor: dict[str, str] = {"index.html": x}
    queue = list(site_links(pointer))
    seen: set[str] = set()
    while queue:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        key = key_of(url)
        if not key.startswith("json/"):
            page_floor.setdefault(key, x)
            continue
        data = get(key)
        w.json_objects += 1
        if data is None:
            w.errors.append(f"pointer {x}: 404 on {url}")
            continue
        if key not in files or sha(data) != files[key]["sha256"]:
            w.errors.append(f"pointer {x}: {url} is not corte {x}'s object (mix of cortes)")
            continue
        obj = json.loads(data)
        if "secciones" in obj:
            slug = key.split("/")[1]  # json/<slug>/<hash>.json; the section page is <slug>/seccion/<id>/
            for sid, sec in obj["secciones"].items():
                if sec["corte_id"] > x:
                    w.errors.append(f"pointer {x}: section {sid} in {url} carries a later corte {sec['corte_id']}")
                page = f"{slug}/seccion/{sid}/index.html"
                page_floor[page] = min(page_floor.get(page, x), sec["corte_id"])
                queue.extend(link for link in site_links(sec) if link not in seen)
        else:
            # A bundle of units or candidates is not stamped itself; each member is (docs/JSON.md).
            members = obj.get("unidades") or obj.get("candidaturas")
            for o in members.values() if isinstance(members, dict) else [obj]:
                if o.get("corte") != pointer["corte"]:
                    w.errors.append(f"pointer {x}: {url} carries corte {o.get('corte')}")
            queue.extend(link for link in site_links(obj) if link not in seen)
    keys = sorted(page_floor)
    bodies = page_get(keys) if page_get else {k: get(k) for k in keys}
    known = {k: {m["files"][k]["sha256"] for m in manifests.values() if k in m["files"]} for k in keys}
    for key in keys:
        body = bodies[key]
        w.pages += 1
        if body is None:
            w.errors.append(f"pointer {x}: 404 on page {key}")
            continue
        if sha(body) not in known[key]:
            w.errors.append(f"pointer {x}: page {key} is no corte's build of it (torn or foreign)")
            continue
        stamp = page_corte(body)
        if stamp < page_floor[key]:
            w.errors.append(f"pointer {x}: page {key} shows corte {stamp}, older than {page_floor[key]}")
    return w
