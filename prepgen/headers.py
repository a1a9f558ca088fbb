"""HTTP header rules shared by publish (object metadata) and `prepgen config nginx|apache`.

One table, so that S3 objects and a self-hosted web root answer with the same headers.
"""

from __future__ import annotations

from .errors import ConfigError

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


# --- Security headers -------------------------------------------------------------------------------------
# Object storage cannot attach these per object, so pages carry CSP (everything but frame-ancestors, which a
# <meta> element cannot set) and web servers / CDNs send the full set (`prepgen config nginx|apache`,
# docs/CDN.md). Charts use SVG attributes or <meter>, never inline style="": no 'unsafe-inline' anywhere.

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "base-uri 'self'; form-action 'self'; object-src 'none'"
)
"""Page-level policy, usable in ``<meta http-equiv="Content-Security-Policy" content="...">``."""

# Who may frame ordinary pages (`'self'`), and embeds (partners' sites, anywhere).
FRAME_ANCESTORS_PAGES = "'self'"
FRAME_ANCESTORS_EMBED = "*"

SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": (
        "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), "
        "payment=(), usb=()"
    ),
}
"""Sent on every response (errors included), next to ``Content-Security-Policy: csp_header(...)``."""

# Not sent by default: HSTS binds the whole host (and, with includeSubDomains, its subdomains) to HTTPS for a
# year; only the operator of the domain can decide that. The generated configs carry it as a comment.
HSTS_HINT = "max-age=31536000; includeSubDomains"

# JSON is polled by partners' pages from other origins (and through CORS relays).
CORS_JSON: dict[str, str] = {"Access-Control-Allow-Origin": "*"}


def csp_header(frame_ancestors: str = FRAME_ANCESTORS_PAGES) -> str:
    """Full CSP for the HTTP header: :data:`CSP` plus ``frame-ancestors``.

    ``frame_ancestors`` is a CSP source list, e.g. ``"'self'"``, ``"*"`` or
    ``"'self' https://partner.example"``.
    """
    value = " ".join(frame_ancestors.split())
    if not value or any(c in value for c in ';,"\\\r\n{}$'):
        raise ConfigError(f"frame-ancestors must be a CSP source list, got {frame_ancestors!r}")
    return f"{CSP}; frame-ancestors {value}"
