"""`prepgen config nginx|apache`: the generated text run in a real nginx and checked over real HTTP."""

from __future__ import annotations

import gzip
import http.client
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from apacheserver import ApacheServer, public_dir
from nginxserver import NginxServer

from prepgen import headers
from prepgen.errors import ConfigError
from prepgen.serverconf import BURST, server_config

C = headers.CACHE_CONTROL
CSP_PAGES = headers.csp_header("'self'")
CSP_EMBED = headers.csp_header("*")
MAIN_JSON = b'{"corte": "2021-06-07T20:00:00-05:00", "elecciones": [{"id": "GOB", "json": "json/gob/abc123.json"}]}'
UNIT_JSON = b'{"id": "GOB", "candidaturas": [' + b", ".join([b'{"clave": "PAN", "votos": 12345}'] * 40) + b"]}"

SITE = {
    "index.html": b"<!doctype html><title>PREP</title><p>inicio</p>",
    "gob/index.html": b"<!doctype html><title>GOB</title><p>gubernatura</p>",
    "json/main.json": MAIN_JSON,
    "json/gob/abc123.json": UNIT_JSON,
    "static/site.abc.css": b"body { color: #111; }\n" * 30,
    "embed/x/index.html": b"<!doctype html><title>embed</title>",
    ".prepgen/manifest.json": b"{}",
}


def make_site(root: Path) -> Path:
    for rel, data in SITE.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


# urllib without redirects and without any proxy from the environment: loopback only.
class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003
        return None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def fetch(url: str, method: str = "GET", **req_headers: str) -> tuple[int, http.client.HTTPMessage, bytes]:
    request = urllib.request.Request(url, method=method, headers=req_headers)
    try:
        with _OPENER.open(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        with err:
            return err.code, err.headers, err.read()


def assert_security(h: http.client.HTTPMessage, csp: str = CSP_PAGES) -> None:
    assert h["Content-Security-Policy"] == csp
    assert "unsafe-inline" not in h["Content-Security-Policy"]
    for name, value in headers.SECURITY_HEADERS.items():
        assert h[name] == value, name
    assert h.get("Strict-Transport-Security") is None  # a commented hint only


# --- text-level checks ---------------------------------------------------------------------------------------


def test_csp_constants() -> None:
    assert "frame-ancestors" not in headers.CSP  # a <meta> CSP ignores it
    assert "unsafe-inline" not in headers.CSP
    assert headers.csp_header("'self'") == headers.CSP + "; frame-ancestors 'self'"
    assert headers.csp_header("'self'  https://socio.example") .endswith("frame-ancestors 'self' https://socio.example")
    for bad in ("", "'self'; script-src *", 'x" always; add_header X "y'):
        with pytest.raises(ConfigError):
            headers.csp_header(bad)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "iis"},
        {"root": "relative/dir"},
        {"base_path": "/a b/"},
        {"listen": "127.0.0.1:80; include /etc/passwd"},
        {"frame_ancestors": "'self'; sandbox"},
        {"kind": "apache", "upstream": "http://127.0.0.1:8333/b/"},
        {"upstream": "ftp://127.0.0.1/b/"},
        {"upstream": "http://user:pw@127.0.0.1/b/"},
        {"upstream": "http://127.0.0.1/b/", "cache_dir": "cache"},
    ],
)
def test_bad_arguments_are_config_errors(kwargs: dict) -> None:
    args = {"kind": "nginx", "root": "/var/www/prep"} | kwargs
    with pytest.raises(ConfigError):
        server_config(args.pop("kind"), **args)


def test_output_is_deterministic() -> None:
    a = server_config("nginx", root="/var/www/prep", base_path="prep")
    assert a == server_config("nginx", root="/var/www/prep/", base_path="/prep/")
    assert "location /prep/json/" in a


def test_apache_text() -> None:
    text = server_config("apache", root="/var/www/prep", base_path="/prep/", listen="127.0.0.1:8081")
    assert "Listen 127.0.0.1:8081" in text
    assert 'Alias "/prep/" "/var/www/prep/"' in text
    assert f'Header always set Content-Security-Policy "{CSP_PAGES}"' in text
    assert f'Header always set Content-Security-Policy "{CSP_EMBED}"' in text
    assert '<Location "/prep/json/main.json">\n        Header set Cache-Control "no-cache"' in text
    assert f'Header set Cache-Control "{C[headers.IMMUTABLE]}"' in text
    assert 'Header always set Access-Control-Allow-Origin "*"' in text
    assert "# Header always set Strict-Transport-Security" in text
    assert 'AddType "text/html; charset=utf-8" .html' in text


# --- nginx serving a web root ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        {"base_path": "/"},
        {"base_path": "/prep/"},
        {"upstream": "http://127.0.0.1:9/bucket/prefix/"},
        {"upstream": "https://127.0.0.1/bucket/", "base_path": "/x/", "pointer_edge_ttl": 0},
    ],
)
def test_nginx_t_accepts_generated_config(nginx: NginxServer, tmp_path: Path, variant: dict) -> None:
    nginx.write(server_config("nginx", root=str(tmp_path / "www"), listen=nginx.listen,
                              cache_dir=str(tmp_path / "cache"), **variant))
    checked = nginx.test_config()
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr


@pytest.fixture(params=["/", "/prep/"], ids=["root", "base-path"])
def served(request: pytest.FixtureRequest, nginx: NginxServer, tmp_path: Path) -> Iterator[tuple[str, NginxServer]]:
    base = request.param
    root = make_site(tmp_path / "www")
    nginx.start(server_config("nginx", root=str(root), base_path=base, listen=nginx.listen))
    yield nginx.url + base.rstrip("/"), nginx


def test_nginx_headers_per_class(served: tuple[str, NginxServer]) -> None:
    url, _ = served
    expected = {
        "/": ("text/html; charset=utf-8", C[headers.PAGE], "index.html"),
        "/gob/": ("text/html; charset=utf-8", C[headers.PAGE], "gob/index.html"),
        "/json/main.json": ("application/json", C[headers.POINTER], "json/main.json"),
        "/json/gob/abc123.json": ("application/json", C[headers.IMMUTABLE], "json/gob/abc123.json"),
        "/static/site.abc.css": ("text/css; charset=utf-8", C[headers.IMMUTABLE], "static/site.abc.css"),
        "/embed/x/": ("text/html; charset=utf-8", C[headers.PAGE], "embed/x/index.html"),
    }
    for path, (ctype, cache, source) in expected.items():
        status, h, body = fetch(url + path)
        assert (status, h["Content-Type"], h["Cache-Control"]) == (200, ctype, cache), path
        assert body == SITE[source], path
        assert_security(h, CSP_EMBED if path.startswith("/embed/") else CSP_PAGES)
        cors = h.get("Access-Control-Allow-Origin")
        assert cors == ("*" if path.startswith("/json/") else None), path
        assert headers.classify(source) == {v: k for k, v in C.items()}[cache]


def test_nginx_pointer_revalidates_with_304(served: tuple[str, NginxServer]) -> None:
    url, _ = served
    status, h, _ = fetch(url + "/json/main.json")
    assert status == 200 and h["ETag"]
    status, h304, body = fetch(url + "/json/main.json", **{"If-None-Match": h["ETag"]})
    assert (status, body) == (304, b"")
    assert h304["Cache-Control"] == "no-cache"
    assert h304["Access-Control-Allow-Origin"] == "*"


def test_nginx_errors_and_hidden_files(served: tuple[str, NginxServer]) -> None:
    url, nginx = served
    for path in ("/nada/", "/json/gob/missing.json", "/static/x.css", "/.prepgen/manifest.json", "/.git/config"):
        status, h, _ = fetch(url + path)
        assert status == 404, path
        assert_security(h)
        assert h.get("Cache-Control") is None, path  # a 404 is never cached as immutable
    status, h, _ = fetch(url + "/json/gob/missing.json")
    assert h["Access-Control-Allow-Origin"] == "*"  # partners see the 404, not a CORS error
    # Directory without its slash: a relative redirect (keeps scheme/host behind TLS terminators).
    status, h, _ = fetch(url + "/gob")
    assert (status, h["Location"]) == (301, url.removeprefix(nginx.url) + "/gob/")
    status, h, _ = fetch(url + "/", method="POST")
    assert status == 405
    assert_security(h)
    if url != nginx.url:  # outside the base path nothing is served
        assert fetch(nginx.url + "/index.html")[0] == 404
        assert fetch(nginx.url + "/")[0] == 404


def test_nginx_gzip_when_asked(served: tuple[str, NginxServer]) -> None:
    url, _ = served
    for path, source in (("/json/gob/abc123.json", "json/gob/abc123.json"), ("/static/site.abc.css", "static/site.abc.css")):
        status, h, body = fetch(url + path, **{"Accept-Encoding": "gzip"})
        assert (status, h["Content-Encoding"]) == (200, "gzip"), path
        assert "Accept-Encoding" in h["Vary"]
        assert gzip.decompress(body) == SITE[source]
        status, h, body = fetch(url + path)
        assert h.get("Content-Encoding") is None and body == SITE[source]


def test_nginx_custom_frame_ancestors(nginx: NginxServer, tmp_path: Path) -> None:
    root = make_site(tmp_path / "www")
    nginx.start(server_config("nginx", root=str(root), listen=nginx.listen,
                              frame_ancestors="'self' https://socio.example"))
    assert fetch(nginx.url + "/")[1]["Content-Security-Policy"].endswith(
        "; frame-ancestors 'self' https://socio.example")
    assert fetch(nginx.url + "/embed/x/")[1]["Content-Security-Policy"] == CSP_EMBED


def test_nginx_rate_limit_answers_429(nginx: NginxServer, tmp_path: Path) -> None:
    root = make_site(tmp_path / "www")
    nginx.start(server_config("nginx", root=str(root), listen=nginx.listen))
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=5)
    statuses: list[int] = []
    deadline = time.monotonic() + 30
    try:
        # Bounded: at most 5 * BURST requests or 30 s, loopback only.
        for _ in range(5 * BURST):
            conn.request("GET", "/json/main.json")
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
            if response.status == 429:
                limited = response.headers
                break
            assert time.monotonic() < deadline, "rate limit never reached"
    finally:
        conn.close()
    assert statuses[-1] == 429, f"no 429 after {len(statuses)} requests"
    assert set(statuses[:-1]) == {200}
    assert len(statuses) > BURST  # the burst is generous: a newsroom NAT is not cut off
    assert_security(limited)
    assert limited.get("Cache-Control") is None


# --- nginx as a caching proxy in front of S3-compatible storage -------------------------------------------------


class Origin:
    """A minimal S3-like origin (path-style GET, ETag, 403 for missing keys) that records what it is asked."""

    def __init__(self, objects: dict[str, tuple[bytes, str, str]]) -> None:
        self.objects = dict(objects)
        self.requests: list[str] = []
        self.failing = False
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                origin.requests.append(self.path)
                if origin.failing:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                obj = origin.objects.get(self.path)
                if obj is None:
                    body = b"<Error><Code>AccessDenied</Code></Error>"
                    self.send_response(403)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("x-amz-request-id", "TEST")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                data, ctype, cache = obj
                etag = f'"{hash(data) & 0xFFFFFFFF:08x}"'
                if self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.send_header("Cache-Control", cache)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Cache-Control", cache)
                self.send_header("ETag", etag)
                self.send_header("x-amz-request-id", "TEST")
                self.send_header("Vary", "Origin")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def hits(self, key: str) -> int:
        return sum(1 for r in self.requests if r == key)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


PREFIX = "/bucket/sitio/"


@pytest.fixture
def origin() -> Iterator[Origin]:
    objects = {
        PREFIX + rel: (data, headers.content_type(rel), C[headers.classify(rel)])
        for rel, data in SITE.items()
        if not rel.startswith(".prepgen/")
    }
    # A page that goes stale after 1 s, to see stale-if-error at work.
    objects[PREFIX + "gob/index.html"] = (SITE["gob/index.html"], "text/html; charset=utf-8",
                                          "public, max-age=1, stale-while-revalidate=30, stale-if-error=86400")
    server = Origin(objects)
    yield server
    server.close()


@pytest.fixture
def edge(nginx: NginxServer, origin: Origin, tmp_path: Path) -> NginxServer:
    return nginx.start(server_config(
        "nginx", root="/unused", base_path="/prep/", listen=nginx.listen,
        upstream=f"http://127.0.0.1:{origin.port}{PREFIX}", cache_dir=str(tmp_path / "cache"),
    ))


def test_proxy_maps_directories_and_caches(edge: NginxServer, origin: Origin) -> None:
    for path, key in (("/prep/", "index.html"), ("/prep/gob/", "gob/index.html"), ("/prep/embed/x/", "embed/x/index.html")):
        first = fetch(edge.url + path)
        second = fetch(edge.url + path + "?v=2")
        assert first[0] == second[0] == 200, path
        assert first[2] == second[2] == SITE[key]
        assert first[1]["X-Cache-Status"] == "MISS"
        assert second[1]["X-Cache-Status"] == "HIT"
        assert origin.hits(PREFIX + key) == 1, origin.requests
        assert_security(first[1], CSP_EMBED if "/embed/" in path else CSP_PAGES)
        assert first[1]["Content-Type"] == "text/html; charset=utf-8"
        assert first[1].get("x-amz-request-id") is None


def test_proxy_ignores_query_strings_on_immutable(edge: NginxServer, origin: Origin) -> None:
    key = PREFIX + "json/gob/abc123.json"
    results = [fetch(edge.url + f"/prep/json/gob/abc123.json?_={i}") for i in range(5)]
    assert [r[0] for r in results] == [200] * 5
    assert [r[1]["X-Cache-Status"] for r in results] == ["MISS"] + ["HIT"] * 4
    assert origin.requests == [key]  # one origin request, query string never forwarded
    h = results[-1][1]
    assert h["Cache-Control"] == C[headers.IMMUTABLE]  # the origin's own metadata
    assert h["Access-Control-Allow-Origin"] == "*"
    assert "Origin" not in h["Vary"]  # the origin's Vary: Origin would split the cache per partner
    gz = fetch(edge.url + "/prep/json/gob/abc123.json", **{"Accept-Encoding": "gzip"})
    assert gz[1]["Content-Encoding"] == "gzip" and gzip.decompress(gz[2]) == UNIT_JSON


def test_proxy_pointer_is_never_older_than_two_seconds(edge: NginxServer, origin: Origin) -> None:
    key = PREFIX + "json/main.json"
    status, h, body = fetch(edge.url + "/prep/json/main.json?t=1")
    assert (status, body, h["Cache-Control"]) == (200, MAIN_JSON, "no-cache")
    assert h["Access-Control-Allow-Origin"] == "*"
    new = MAIN_JSON.replace(b"20:00", b"20:30")
    origin.objects[key] = (new, "application/json", "no-cache")
    time.sleep(2.1)  # pointer_edge_ttl=1, counted in whole seconds by nginx
    status, h, body = fetch(edge.url + "/prep/json/main.json?t=2")
    assert (status, body) == (200, new)
    assert h["Cache-Control"] == "no-cache"


def test_proxy_missing_keys_and_directory_redirect(edge: NginxServer, origin: Origin) -> None:
    status, h, body = fetch(edge.url + "/prep/nada/")
    assert status == 404 and b"AccessDenied" not in body
    assert_security(h)
    status, h, _ = fetch(edge.url + "/prep/gob")
    assert (status, h["Location"]) == (301, "/prep/gob/")
    for path in ("/prep/.prepgen/manifest.json", "/prep/a%20b/", "/prep/json/x%3Facl", "/otro/"):
        assert fetch(edge.url + path)[0] == 404, path
    assert not any("?" in r or ".prepgen" in r for r in origin.requests), origin.requests
    assert fetch(edge.url + "/prep/", method="POST")[0] == 405


def test_proxy_serves_stale_when_origin_fails(edge: NginxServer, origin: Origin) -> None:
    assert fetch(edge.url + "/prep/gob/")[1]["X-Cache-Status"] == "MISS"
    assert fetch(edge.url + "/prep/json/main.json")[0] == 200
    time.sleep(2.1)  # both expired at the edge (max-age=1 and the 1 s pointer copy)
    origin.failing = True
    status, h, body = fetch(edge.url + "/prep/gob/")
    assert (status, body) == (200, SITE["gob/index.html"])
    assert h["X-Cache-Status"] in ("STALE", "UPDATING")
    status, h, body = fetch(edge.url + "/prep/json/main.json")
    assert (status, body, h["X-Cache-Status"]) == (200, MAIN_JSON, "STALE")


# --- Apache ----------------------------------------------------------------------------------------------------


def test_apache_headers_per_class(apache: ApacheServer) -> None:
    root = make_site(public_dir())
    try:
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        apache.start(server_config("apache", root=str(root), base_path="/prep/", listen=apache.listen))
        url = apache.url + "/prep"
        expected = {
            "/": ("text/html; charset=utf-8", C[headers.PAGE], CSP_PAGES),
            "/gob/": ("text/html; charset=utf-8", C[headers.PAGE], CSP_PAGES),
            "/json/main.json": ("application/json", C[headers.POINTER], CSP_PAGES),
            "/json/gob/abc123.json": ("application/json", C[headers.IMMUTABLE], CSP_PAGES),
            "/static/site.abc.css": ("text/css; charset=utf-8", C[headers.IMMUTABLE], CSP_PAGES),
            "/embed/x/": ("text/html; charset=utf-8", C[headers.PAGE], CSP_EMBED),
        }
        for path, (ctype, cache, csp) in expected.items():
            status, h, _ = fetch(url + path)
            assert (status, h["Content-Type"], h["Cache-Control"]) == (200, ctype, cache), path
            assert_security(h, csp)
            assert h.get("Access-Control-Allow-Origin") == ("*" if path.startswith("/json/") else None), path
        for path in ("/nada/", "/.prepgen/manifest.json"):
            status, h, _ = fetch(url + path)
            assert status == 404 and h.get("Cache-Control") is None, path
            assert_security(h)
        status, h, body = fetch(url + "/json/gob/abc123.json", **{"Accept-Encoding": "gzip"})
        assert h["Content-Encoding"] == "gzip" and gzip.decompress(body) == UNIT_JSON
        assert fetch(url + "/", method="POST")[0] in (403, 405)
    finally:
        apache.stop()
        shutil.rmtree(root)


def test_apache_t_accepts_document_root_variant(apache: ApacheServer, tmp_path: Path) -> None:
    apache.write(server_config("apache", root=str(make_site(tmp_path / "www")), listen=apache.listen,
                               frame_ancestors="'self' https://socio.example"))
    checked = apache.test_config()
    assert checked.returncode == 0 and "Syntax OK" in checked.stdout + checked.stderr, checked.stderr
