"""`prepgen config nginx|apache`: web-server configuration for a published site.

Three shapes:

* ``nginx`` / ``apache`` with ``root``: serve a web root (a build dir, or the local publish target) under
  ``base_path`` with the cache class headers of :mod:`prepgen.headers`, security headers on every response,
  CORS on JSON, compression and (nginx) a per-IP request limit.
* ``nginx`` with ``upstream``: a caching reverse proxy (a CDN stand-in) in front of S3-compatible storage,
  e.g. ``http://127.0.0.1:8333/bucket/prefix/``. It honours the objects' Cache-Control, serves stale copies
  while the origin blinks, collapses concurrent misses, maps directory URLs to ``index.html`` (S3 has no
  index documents) and ignores query strings (consumers' cache busters never reach the origin).

The text goes inside nginx's ``http {}`` block (Debian includes ``sites-enabled/*`` there) or is an
Apache ``sites-available`` file. Nothing here touches the machine.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import urlsplit

from . import __version__, headers
from .errors import ConfigError

KINDS = ("nginx", "apache")

# Per-IP request limit (nginx limit_req). A page view costs ~5 requests (HTML, CSS, JS, main.json, one unit
# JSON), a poller 1 request per period; newsrooms, universities and carrier-grade NAT put hundreds of readers
# behind one address. 20 r/s sustained with a burst of 200 lets such a NAT through and still stops a single
# client hammering the origin. Exceeding it answers 429.
RATE_PER_SECOND = 20
BURST = 200

# Types served by the web root; those whose headers.CONTENT_TYPES value has a charset get `charset utf-8`.
_TEXT_TYPES_WITHOUT_HTML = sorted(
    {t.split(";")[0] for t in headers.CONTENT_TYPES.values() if "charset=" in t} - {"text/html"}
)
_COMPRESSIBLE = sorted(
    {t.split(";")[0] for t in headers.CONTENT_TYPES.values() if t.startswith("text/") or "json" in t or "xml" in t}
    - {"text/html"}  # nginx always compresses text/html; listing it warns
)

_UNSAFE = re.compile(r'["\'\\;{}$\s]')


def server_config(
    kind: str,
    *,
    root: str,
    base_path: str = "/",
    listen: str = "127.0.0.1:8080",
    server_name: str = "_",
    upstream: str | None = None,
    frame_ancestors: str = "'self'",
    cache_dir: str = "/var/cache/nginx/prep",
    pointer_edge_ttl: int = 1,
) -> str:
    """Configuration text for ``kind`` (``nginx`` or ``apache``).

    ``root``: absolute path of the web root (ignored when ``upstream`` is given).
    ``base_path``: URL prefix of the site, e.g. ``/prep2024/``.
    ``frame_ancestors``: who may frame ordinary pages; ``/embed/`` may always be framed anywhere.
    ``upstream`` (nginx only): origin URL of the bucket/prefix; the config is then a caching proxy whose
    cache lives in ``cache_dir`` and which re-checks ``json/main.json`` with the origin at most every
    ``pointer_edge_ttl`` seconds (nginx rounds to whole seconds, so up to one more; ``0``: every request goes
    to the origin, no edge copy at all).
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown server kind {kind!r}: use one of {', '.join(KINDS)}")
    base = _base_path(base_path)
    _plain("listen", listen)
    _plain("server_name", server_name)
    csp_pages = headers.csp_header(frame_ancestors)
    csp_embed = headers.csp_header(headers.FRAME_ANCESTORS_EMBED)
    tag = "prep_" + hashlib.sha256(f"{listen} {base} {upstream or _root(root)}".encode()).hexdigest()[:6]
    if upstream is not None:
        if kind != "nginx":
            raise ConfigError("a caching proxy in front of object storage (--upstream) is only generated for nginx")
        _plain("cache_dir", cache_dir)
        if not cache_dir.startswith("/"):
            raise ConfigError(f"cache_dir must be an absolute path, got {cache_dir!r}")
        if not isinstance(pointer_edge_ttl, int) or pointer_edge_ttl < 0:
            raise ConfigError(f"pointer_edge_ttl must be a whole number of seconds >= 0, got {pointer_edge_ttl!r}")
        return _nginx_proxy(
            upstream, base, listen, server_name, tag, csp_pages, csp_embed, cache_dir, pointer_edge_ttl
        )
    webroot = _root(root)
    if kind == "nginx":
        return _nginx_root(webroot, base, listen, server_name, tag, csp_pages, csp_embed)
    return _apache(webroot, base, listen, server_name, csp_pages, csp_embed)


# --- validation ---------------------------------------------------------------------------------------------


def _plain(what: str, value: str) -> str:
    if not value or _UNSAFE.search(value):
        raise ConfigError(f"{what} {value!r} cannot go into a server config (no quotes, spaces, ';', '{{}}', '$')")
    return value


def _base_path(base_path: str) -> str:
    base = "/" + base_path.strip("/") + "/" if base_path.strip("/") else "/"
    if not re.fullmatch(r"/(?:[A-Za-z0-9._~-]+/)*", base) or "/./" in base or "/../" in base:
        raise ConfigError(f"base_path {base_path!r} must be a URL path of plain segments, e.g. /prep2024/")
    return base


def _root(root: str) -> str:
    if not root.startswith("/"):
        raise ConfigError(f"root must be an absolute path, got {root!r}")
    if re.search(r'["\\;{}$\n\r]', root):
        raise ConfigError(f"root {root!r} cannot go into a server config")
    return root.rstrip("/") + "/"


def _upstream(url: str) -> tuple[str, str, str]:
    """(scheme, host[:port], path prefix ending in '/') of the origin."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"upstream must be an http(s) URL of a bucket/prefix, got {url!r}")
    if "@" in parts.netloc:
        raise ConfigError("upstream must not carry credentials: the proxy reads a public (read-only) bucket")
    prefix = parts.path.rstrip("/") + "/"
    if not re.fullmatch(r"/(?:[A-Za-z0-9._~-]+/)*", prefix):
        raise ConfigError(f"upstream path {parts.path!r} must be plain segments, e.g. /bucket/prefix/")
    _plain("upstream host", parts.netloc)
    return parts.scheme, parts.netloc, prefix


# --- nginx --------------------------------------------------------------------------------------------------


def _nginx_headers(csp: str, *, cache: str | None = None, cors: bool = False, pad: str = "        ") -> str:
    """add_header lines for one location (nginx drops inherited add_header once a location has its own)."""
    lines = [f'add_header Content-Security-Policy "{csp}" always;']
    lines += [f'add_header {name} "{value}" always;' for name, value in headers.SECURITY_HEADERS.items()]
    if cors:
        lines += [f'add_header {name} "{value}" always;' for name, value in headers.CORS_JSON.items()]
    if cache is not None:
        # Not `always`: a 404 or 429 must not be cached for a year.
        lines.append(f'add_header Cache-Control "{cache}";')
    return "".join(f"{pad}{line}\n" for line in lines)


def _nginx_common(listen: str, server_name: str, tag: str) -> str:
    types = "\n".join(
        f"        {ctype.split(';')[0]} {ext.lstrip('.')};" for ext, ctype in headers.CONTENT_TYPES.items()
    )
    return f"""\
    listen {listen};
    server_name {server_name};
    server_tokens off;
    # Directory redirects (/gob -> /gob/) keep the reader's scheme, host and port (TLS terminators, CDNs).
    absolute_redirect off;

    types {{
{types}
    }}
    default_type application/octet-stream;
    charset utf-8;
    charset_types {" ".join(_TEXT_TYPES_WITHOUT_HTML)};

    # Results are read, never written: anything but GET/HEAD is refused.
    if ($request_method !~ ^(GET|HEAD)$) {{
        return 405;
    }}

    limit_req zone={tag}_req burst={BURST} nodelay;
    limit_req_status 429;
    limit_req_log_level warn;

    gzip on;
    gzip_vary on;
    gzip_proxied any;
    gzip_comp_level 5;
    gzip_min_length 256;
    gzip_types {" ".join(_COMPRESSIBLE)};
    # Brotli needs the ngx_brotli module (Debian: libnginx-mod-http-brotli-filter); with it loaded:
    # brotli on;
    # brotli_comp_level 5;
    # brotli_types {" ".join(_COMPRESSIBLE)};

    # HSTS binds the whole host to HTTPS for a year: enable it only in the HTTPS server of a host that is
    # HTTPS-only (repeat it in every location below, since nginx drops inherited add_header there):
    # add_header Strict-Transport-Security "{headers.HSTS_HINT}" always;
"""


def _nginx_preamble(tag: str) -> str:
    return f"""\
# Per-IP request limit: {RATE_PER_SECOND} r/s sustained, bursts of {BURST} (newsrooms and carrier NAT share
# addresses), 429 beyond. Behind a CDN or load balancer the client address is the edge's: limit on the
# forwarded address instead (set_real_ip_from <edge ranges>; real_ip_header X-Forwarded-For;) or the CDN
# itself gets throttled.
limit_req_zone $binary_remote_addr zone={tag}_req:10m rate={RATE_PER_SECOND}r/s;
"""


def _nginx_root(root: str, base: str, listen: str, server_name: str, tag: str, csp: str, csp_embed: str) -> str:
    C = headers.CACHE_CONTROL
    out = f"""\
# prepgen {__version__}: nginx site for the PREP results in {root} under {base}
# Goes inside nginx's http {{}} block, e.g. /etc/nginx/sites-available/prep (+ a link in sites-enabled/), then
# `nginx -t && systemctl reload nginx`. Cache classes: docs/DESIGN.md; the same table is used for S3 objects.

{_nginx_preamble(tag)}
server {{
{_nginx_common(listen, server_name, tag)}
    index index.html;
    autoindex off;

    # Responses of locations without add_header of their own (the hidden-file 404 below).
{_nginx_headers(csp, pad="    ")}
    # The pointer: every reader revalidates it (ETag / Last-Modified -> 304), the institute's rule.
    location = {base}json/main.json {{
        alias {root}json/main.json;
{_nginx_headers(csp, cache=C[headers.POINTER], cors=True)}    }}

    # Content-addressed data: never changes under a name.
    location {base}json/ {{
        alias {root}json/;
{_nginx_headers(csp, cache=C[headers.IMMUTABLE], cors=True)}    }}

    location {base}static/ {{
        alias {root}static/;
{_nginx_headers(csp, cache=C[headers.IMMUTABLE])}    }}

    # Embeds are for partners: any site may frame them.
    location {base}embed/ {{
        alias {root}embed/;
{_nginx_headers(csp_embed, cache=C[headers.PAGE])}    }}

    # Pages at stable URLs: short TTL, stale copies while the server or a cache in between blinks.
    location {base} {{
        alias {root};
{_nginx_headers(csp, cache=C[headers.PAGE])}    }}

    # .prepgen/ (manifest, state, report) and other dot-files are not part of the site.
    location ~ /\\.(?!well-known/) {{
        return 404;
    }}
"""
    if base != "/":
        out += """
    location / {
        return 404;
    }
"""
    return out + "}\n"


def _pcre_literal(path: str) -> str:
    return re.sub(r"([.~-])", r"\\\1", path)


def _nginx_proxy(
    upstream: str,
    base: str,
    listen: str,
    server_name: str,
    tag: str,
    csp: str,
    csp_embed: str,
    cache_dir: str,
    pointer_ttl: int,
) -> str:
    C = headers.CACHE_CONTROL
    scheme, host, prefix = _upstream(upstream)
    hostname = urlsplit(upstream).hostname or host
    origin = f"{scheme}://{tag}_origin{prefix}${tag}_key"
    b = _pcre_literal(base)
    tls = (
        f"""
    proxy_ssl_server_name on;
    proxy_ssl_name {hostname};
    proxy_ssl_verify on;
    proxy_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;
"""
        if scheme == "https"
        else ""
    )
    default_port = "443" if scheme == "https" else "80"
    server = host if re.search(r":\d+$", host) else f"{host}:{default_port}"
    if pointer_ttl == 0:
        pointer_cache = """\
        # Strict: no edge copy of the pointer at all; every request is answered by the origin.
        proxy_cache off;
"""
    else:
        pointer_cache = f"""\
        # The edge keeps the pointer {pointer_ttl} s (nginx counts whole seconds: {pointer_ttl}-{pointer_ttl + 1} s), so the
        # origin gets one conditional request per period however many readers poll (concurrent misses wait for
        # that one request), and never serves an older copy while refreshing ("updating" is left out); only if
        # the origin fails is the last copy served. Readers themselves still revalidate every time (no-cache).
        proxy_ignore_headers Cache-Control Expires Vary Set-Cookie;
        proxy_cache_valid 200 {pointer_ttl}s;
        proxy_cache_valid 403 404 1s;
        proxy_cache_use_stale error timeout http_500 http_502 http_503 http_504;
        proxy_cache_background_update off;
"""
    return f"""\
# prepgen {__version__}: nginx caching reverse proxy (CDN stand-in) for the PREP site stored at
# {upstream} served under {base}
# Goes inside nginx's http {{}} block. The objects carry their Cache-Control (set by `prepgen publish`);
# this cache honours it, serves stale copies while the origin blinks and answers X-Cache-Status.

{_nginx_preamble(tag)}
proxy_cache_path {cache_dir} levels=1:2 keys_zone={tag}_cache:50m max_size=4g inactive=7d use_temp_path=off;

# nginx resolves the origin's name once, at start or reload: reload it if the endpoint's addresses change.
upstream {tag}_origin {{
    server {server};
    keepalive 16;
}}

# Object key for a URL: directory URLs get index.html (S3 has no index documents). Built from the normalised
# $uri, never from the raw request: query strings are dropped (consumers' cache busters neither split the
# cache nor reach the origin, and S3 sub-resources such as ?acl cannot be asked for), "..", "%2F" and the
# like are resolved by nginx first.
map $uri ${tag}_key {{
    "~^{b}(?<{tag}_dir>(?:.*/)?)$" "${{{tag}_dir}}index.html";
    "~^{b}(?<{tag}_file>.+)$" "${tag}_file";
    default "";
}}

server {{
{_nginx_common(listen, server_name, tag)}
    # Site paths are IDs, slugs and hashes; anything else (spaces, encoded '?', ...) is not an object here.
    if ($uri !~ "^[A-Za-z0-9/._~-]*$") {{
        return 404;
    }}

    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host {host};
    # Identity bodies in the cache; the edge compresses per client. Objects stored gzip-encoded
    # ([publicar] gzip = true) come gzip whatever the request says (S3 does not decode): cached as they
    # are, passed on to clients that accept gzip and decoded for the rest (ngx_http_gunzip_module, in
    # Debian's and nginx.org's packages).
    proxy_set_header Accept-Encoding "";
    gunzip on;
    proxy_set_header Authorization "";
    proxy_set_header Cookie "";{tls}
    proxy_connect_timeout 2s;
    proxy_send_timeout 10s;
    proxy_read_timeout 10s;

    proxy_cache {tag}_cache;
    # One key per object whatever the query string; the cache holds one body per object (identity, or gzip
    # as stored), so no encoding in the key either.
    proxy_cache_key ${tag}_key;
    # The origin's Cache-Control wins over these; they apply only to objects stored without one.
    proxy_cache_valid 200 10s;
    proxy_cache_valid 403 404 5s;
    proxy_cache_revalidate on;
    proxy_cache_use_stale error timeout updating http_500 http_502 http_503 http_504;
    proxy_cache_background_update on;
    proxy_cache_lock on;
    proxy_cache_lock_timeout 5s;
    proxy_cache_lock_age 5s;
    # S3 may vary on Origin (bucket CORS): one copy serves every origin, CORS is answered here.
    proxy_ignore_headers Vary Set-Cookie;
    proxy_hide_header Vary;
    proxy_hide_header Set-Cookie;
    proxy_hide_header Access-Control-Allow-Origin;
    proxy_hide_header Content-Security-Policy;
    proxy_hide_header X-Content-Type-Options;
    proxy_hide_header x-amz-request-id;
    proxy_hide_header x-amz-id-2;
    proxy_hide_header x-amz-version-id;
    proxy_hide_header x-amz-server-side-encryption;

    # S3 answers 403 for a missing key in a bucket that cannot be listed: readers get a plain 404, and
    # a directory URL without its slash (/gob) is redirected to it (/gob/).
    proxy_intercept_errors on;
    error_page 403 404 = @{tag}_missing;

{_nginx_headers(csp, pad="    ")}    add_header X-Cache-Status $upstream_cache_status always;

    location = {base}json/main.json {{
{_nginx_headers(csp, cors=True)}        add_header X-Cache-Status $upstream_cache_status always;
        # The institute's rule reaches every reader whatever metadata the object was stored with.
        proxy_hide_header Cache-Control;
        add_header Cache-Control "{C[headers.POINTER]}" always;
{pointer_cache}        proxy_pass {origin};
    }}

    location {base}json/ {{
{_nginx_headers(csp, cors=True)}        add_header X-Cache-Status $upstream_cache_status always;
        proxy_pass {origin};
    }}

    location {base}static/ {{
{_nginx_headers(csp)}        add_header X-Cache-Status $upstream_cache_status always;
        proxy_pass {origin};
    }}

    location {base}embed/ {{
{_nginx_headers(csp_embed)}        add_header X-Cache-Status $upstream_cache_status always;
        proxy_pass {origin};
    }}

    location {base} {{
{_nginx_headers(csp)}        add_header X-Cache-Status $upstream_cache_status always;
        proxy_pass {origin};
    }}

    location @{tag}_missing {{
{_nginx_headers(csp)}        add_header Cache-Control "no-cache" always;
        if ($uri ~ "/[A-Za-z0-9_-]+$") {{
            return 301 $uri/;
        }}
        return 404;
    }}

    location ~ /\\.(?!well-known/) {{
        return 404;
    }}
{"" if base == "/" else '''
    location / {
        return 404;
    }
'''}}}
"""


# --- Apache -------------------------------------------------------------------------------------------------


def _apache(root: str, base: str, listen: str, server_name: str, csp: str, csp_embed: str) -> str:
    C = headers.CACHE_CONTROL
    port = listen.rsplit(":", 1)[-1]
    listen_line = (
        f"# Listen {listen}    (Debian's ports.conf already listens on port 80)"
        if port == "80"
        else f"Listen {listen}"
    )
    name = "" if server_name == "_" else f"    ServerName {server_name}\n"
    sec = "\n".join(f'    Header always set {k} "{v}"' for k, v in headers.SECURITY_HEADERS.items())
    types = "\n".join(f'    AddType "{t}" {ext}' for ext, t in headers.CONTENT_TYPES.items())
    mapping = f"    DocumentRoot \"{root.rstrip('/')}\"" if base == "/" else f'    Alias "{base}" "{root}"'
    compress = " ".join(["text/html", *_COMPRESSIBLE])
    return f"""\
# prepgen {__version__}: Apache 2.4 site for the PREP results in {root} under {base}
# /etc/apache2/sites-available/prep.conf, then: a2enmod headers mime dir alias filter deflate
# (brotli too if available), a2ensite prep, apache2ctl -t && systemctl reload apache2.
# Cache classes: docs/DESIGN.md; the same table is used for S3 objects.
#
# Rate limiting: Apache has no per-IP request limiter in core. Put the site behind the nginx config
# (`prepgen config nginx`) or a CDN, or use mod_qos / mod_evasive (Debian: libapache2-mod-qos,
# libapache2-mod-evasive) with limits that let a newsroom's NAT through (~{RATE_PER_SECOND} r/s, bursts of {BURST}).

{listen_line}

<VirtualHost {listen}>
{name}{mapping}
    ServerSignature Off
    DirectoryIndex index.html
    AddDefaultCharset Off
{types}

    Header always set Content-Security-Policy "{csp}"
{sec}
    # HSTS binds the whole host to HTTPS for a year: only in the HTTPS vhost of an HTTPS-only host.
    # Header always set Strict-Transport-Security "{headers.HSTS_HINT}"

    <IfModule mod_brotli.c>
        AddOutputFilterByType BROTLI_COMPRESS;DEFLATE {compress}
    </IfModule>
    <IfModule !mod_brotli.c>
        <IfModule mod_deflate.c>
            AddOutputFilterByType DEFLATE {compress}
        </IfModule>
    </IfModule>

    # Results are read, never written.
    <Location "{base}">
        <LimitExcept GET>
            Require all denied
        </LimitExcept>
    </Location>

    # Pages at stable URLs: short TTL plus stale-while-revalidate / stale-if-error.
    <Directory "{root.rstrip('/')}">
        Options None
        AllowOverride None
        Require all granted
        Header set Cache-Control "{C[headers.PAGE]}"
    </Directory>

    # Content-addressed data and assets: immutable. JSON is polled by partners' pages: CORS.
    <Directory "{root}json">
        Header set Cache-Control "{C[headers.IMMUTABLE]}"
        Header always set Access-Control-Allow-Origin "*"
    </Directory>
    <Directory "{root}static">
        Header set Cache-Control "{C[headers.IMMUTABLE]}"
    </Directory>

    # Embeds are for partners: any site may frame them.
    <Directory "{root}embed">
        Header always set Content-Security-Policy "{csp_embed}"
    </Directory>

    # The pointer: every reader revalidates it (the institute's rule). <Location> merges after <Directory>.
    <Location "{base}json/main.json">
        Header set Cache-Control "{C[headers.POINTER]}"
    </Location>

    # .prepgen/ (manifest, state, report) and other dot-files are not part of the site.
    RedirectMatch 404 "/\\.(?!well-known/)"
</VirtualHost>
"""
