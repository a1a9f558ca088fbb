"""HTTP header rules shared by publish (object metadata) and `prepgen config nginx|apache`.

One table, so that S3 objects and a self-hosted web root answer with the same headers.
"""

from __future__ import annotations

POINTER = "pointer"
IMMUTABLE = "immutable"
PAGE = "page"

CACHE_CONTROL: dict[str, str] = {
    # The institute requires readers to revalidate the pointer on every request.
    POINTER: "no-cache",
    IMMUTABLE: "public, max-age=31536000, immutable",
    # Stable-URL pages change every corte; a short TTL plus stale-* keeps the site up if the origin blinks.
    PAGE: "public, max-age=10, stale-while-revalidate=30, stale-if-error=86400",
}

CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".csv": "text/csv; charset=utf-8",
    ".xml": "application/atom+xml; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".ico": "image/x-icon",
    ".png": "image/png",
    ".woff2": "font/woff2",
}


def content_type(path: str) -> str:
    dot = path.rfind(".")
    return CONTENT_TYPES.get(path[dot:].lower() if dot >= 0 else "", "application/octet-stream")


def classify(path: str) -> str:
    """Cache class of a site path (relative, no leading slash)."""
    if path == "json/main.json":
        return POINTER
    if path.startswith(("json/", "static/")):
        return IMMUTABLE
    return PAGE

# Page-level policy for <meta http-equiv>: object storage cannot attach headers per object, so every page
# carries it. frame-ancestors is ignored in <meta>; servers send it as a header.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; base-uri 'self'; form-action 'self'; object-src 'none'"
)
