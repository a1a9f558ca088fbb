"""Acceptance: real nginx with the config `prepgen config nginx` prints, on the real Campeche build — serving
the build dir, and as a caching proxy (CDN stand-in) in front of real SeaweedFS across a pointer flip."""

from __future__ import annotations

import gzip
import http.client
import json
import time
from pathlib import Path

from click.testing import CliRunner
from e2esite import HttpGetter, key_of, load_manifest, make_public, page_corte
from nginxserver import NginxServer
from s3server import S3Server

from prepgen import headers
from prepgen.cli import main
from prepgen.publish import publish

C2, C3 = "20210607_1320", "20210607_2000"
CC = headers.CACHE_CONTROL
CSP_PAGES = headers.csp_header("'self'")


def config(*args: str) -> str:
    result = CliRunner().invoke(main, ["config", "nginx", *args])
    assert result.exit_code == 0, result.output
    return result.output


def assert_security(h, csp: str = CSP_PAGES) -> None:  # noqa: ANN001 - http.client.HTTPMessage
    assert h["Content-Security-Policy"] == csp
    assert "frame-ancestors 'self'" in h["Content-Security-Policy"]
    assert "unsafe-inline" not in h["Content-Security-Policy"]
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert h["Permissions-Policy"] == headers.SECURITY_HEADERS["Permissions-Policy"]


def real_paths(build: Path) -> dict[str, list[str]]:
    """Site keys of each class, taken from the build itself (pointer → election → unit → bundle)."""
    m = json.loads((build / "json" / "main.json").read_bytes())
    election = m["elecciones"][0]["json"].lstrip("/")
    e = json.loads((build / election).read_bytes())
    unit = e["ambitos"][0]["json"].lstrip("/")
    u = json.loads((build / unit).read_bytes())["unidades"][e["ambitos"][0]["id"]]
    bundle = u["ambitos"][0]["json"].lstrip("/")
    files = load_manifest(build)["files"]
    static = sorted(p for p in files if p.startswith("static/"))
    return {
        "pointer": ["json/main.json"],
        "immutable": [election, unit, bundle, *static],
        "page": [
            "",
            m["elecciones"][0]["html"].lstrip("/"),
            e["ambitos"][0]["html"].lstrip("/"),
            u["ambitos"][0]["html"].lstrip("/"),
            e["candidaturas"][0]["html"].lstrip("/"),
        ],
    }


def test_nginx_serves_the_real_build_with_headers_per_class(
    campeche_builds: dict[str, Path], nginx: NginxServer
) -> None:
    build = campeche_builds[C3]
    nginx.start(config("--root", str(build), "--listen", nginx.listen))
    get = HttpGetter(nginx.url + "/")
    try:
        paths = real_paths(build)
        for cls, keys in paths.items():
            for key in keys:
                status, h, body = get.request(key, "HEAD")  # curl -I
                assert status == 200, (key, status)
                assert body == b""
                assert h["Cache-Control"] == CC[cls], key
                assert h["Content-Type"] == headers.content_type(key_of("/" + key)), key
                assert_security(h)
                if key.startswith("json/"):
                    assert h["Access-Control-Allow-Origin"] == "*", key
                else:
                    assert h.get("Access-Control-Allow-Origin") is None, key
        # The pointer revalidates (the institute's rule): a conditional GET answers 304.
        _, h, _ = get.request("json/main.json")
        conn = get._conn()
        conn.request("GET", "/json/main.json", headers={"If-None-Match": h["ETag"]})
        response = conn.getresponse()
        response.read()
        assert response.status == 304
        # Build internals are not part of the site; directory URLs get their slash.
        assert get.request(".prepgen/manifest.json")[0] == 404
        status, h, _ = get.request("gob", "HEAD")
        assert (status, h["Location"]) == (301, "/gob/")
        assert get.request("gob/seccion/9999/")[0] == 404
    finally:
        get.close()
    assert "[crit]" not in nginx.errors() and "[emerg]" not in nginx.errors()


def test_nginx_caching_proxy_in_front_of_seaweedfs_across_a_pointer_flip(
    campeche_builds: dict[str, Path], nginx: NginxServer, s3server: S3Server, s3bucket: str, tmp_path: Path
) -> None:
    """Corte A (13:20) published and read through two edges (pointer edge TTL 0 and the default 1 s); corte
    B (20:00) published; right after the flip the edges serve main.json naming B while A's immutable
    objects keep coming from the cache (HIT) and B's new objects are fetched once (MISS, then HIT)."""
    make_public(s3server.client(), s3bucket)
    to = f"s3://{s3bucket}/prep2021"
    upstream = f"{s3server.endpoint_url}/{s3bucket}/prep2021/"
    publish(campeche_builds[C2], to, endpoint_url=s3server.endpoint_url)

    strict = nginx.start(config(
        "--upstream", upstream, "--listen", nginx.listen, "--cache-dir", str(tmp_path / "cache0"),
        "--pointer-edge-ttl", "0",
    ))
    relaxed = NginxServer(tmp_path / "nginx1")
    edges = [strict, relaxed]
    getters: list[HttpGetter] = []
    try:
        relaxed.start(config("--upstream", upstream, "--listen", relaxed.listen, "--cache-dir", str(tmp_path / "cache1")))
        getters = [HttpGetter(e.url + "/") for e in edges]
        a = real_paths(campeche_builds[C2])
        a_keys = a["immutable"] + a["page"]
        for get in getters:
            status, h, body = get.request("json/main.json")
            assert status == 200 and json.loads(body)["corte_id"] == C2
            assert h["Cache-Control"] == "no-cache" and h["Access-Control-Allow-Origin"] == "*"
            assert_security(h)
            for key in a_keys:
                first = get.request(key)
                second = get.request(key + "?_=cachebuster")
                assert first[0] == second[0] == 200, key
                assert (first[1]["X-Cache-Status"], second[1]["X-Cache-Status"]) == ("MISS", "HIT"), key
                assert first[2] == second[2]
                assert first[1]["Cache-Control"] == CC["page" if key in a["page"] else "immutable"], key
                assert_security(first[1])
                assert first[1].get("x-amz-request-id") is None

        publish(campeche_builds[C3], to, endpoint_url=s3server.endpoint_url)
        flipped = time.monotonic()

        # TTL 0: the very next request names B.
        status, h, body = getters[0].request("json/main.json")
        assert (status, json.loads(body)["corte_id"]) == (200, C3)
        assert h["Cache-Control"] == "no-cache"
        # Default TTL (1 s, whole seconds in nginx): B within ~2 s of the flip.
        while json.loads(getters[1].request("json/main.json")[2])["corte_id"] != C3:
            assert time.monotonic() - flipped < 3.0, "the 1 s edge kept the old pointer for more than 3 s"
            time.sleep(0.1)

        b = real_paths(campeche_builds[C3])
        for get in getters:
            # A's immutable objects are still valid (never deleted, never changed) and come from the cache.
            for key in a["immutable"]:
                status, h, _ = get.request(key)
                assert (status, h["X-Cache-Status"]) == (200, "HIT"), key
            # B's new data tree is fetched once, then cached.
            for key in b["immutable"]:
                if key in a["immutable"]:
                    continue
                statuses = [get.request(key)[1]["X-Cache-Status"] for _ in range(2)]
                assert statuses == ["MISS", "HIT"], key
            # Pages are stable URLs with a 10 s TTL: within it the edge still answers A's page (accepted:
            # neighbouring pages of two consecutive cortes for a few seconds, DECISIONS.md); the page's own
            # script then says a newer corte exists. After max-age the edge refreshes it.
            status, h, body = get.request("gob/")
            assert status == 200 and page_corte(body) in (C2, C3)
    finally:
        for g in getters:
            g.close()
        relaxed.stop()


def test_nginx_edge_decodes_gzip_stored_objects_for_clients_without_gzip(
    campeche_builds: dict[str, Path], nginx: NginxServer, s3server: S3Server, s3bucket: str, tmp_path: Path
) -> None:
    """With [publicar] gzip = true the storage answers gzip bytes whatever the request says (S3 does not
    decode; SeaweedFS neither): the edge hands them on to clients that accept gzip and decodes them for
    the rest."""
    make_public(s3server.client(), s3bucket)
    to = f"s3://{s3bucket}/prep2021"
    build = campeche_builds[C2]
    publish(build, to, endpoint_url=s3server.endpoint_url, compress=True)
    edge = nginx.start(config(
        "--upstream", f"{s3server.endpoint_url}/{s3bucket}/prep2021/", "--listen", nginx.listen,
        "--cache-dir", str(tmp_path / "cache"),
    ))
    paths = real_paths(build)
    conn = http.client.HTTPConnection(edge.url.split("//", 1)[1], timeout=10)
    try:
        for key in [*paths["page"], *paths["immutable"]]:
            wanted = (build / (key + "index.html" if key == "" or key.endswith("/") else key)).read_bytes()
            for accept in ("gzip", None, "gzip"):  # a cached gzip copy must not leak to a client without gzip
                conn.request("GET", "/" + key, headers={"Accept-Encoding": accept} if accept else {})
                response = conn.getresponse()
                body = response.read()
                assert response.status == 200, key
                if accept:
                    assert response.headers["Content-Encoding"] == "gzip", key
                    body = gzip.decompress(body)
                else:
                    assert response.headers["Content-Encoding"] is None, key
                assert body == wanted, key
    finally:
        conn.close()
