"""prepgen/s3put.py: the SigV4 signer against botocore's, and the PUT retry policy on a loopback server."""

from __future__ import annotations

import datetime
import hashlib
import http.server
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from prepgen import s3put
from prepgen.s3put import PutError, S3Putter, SigV4Signer, bucket_url

NOW = datetime.datetime(2021, 6, 7, 1, 2, 3, tzinfo=datetime.UTC)
ERROR = "<?xml version='1.0'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"


@pytest.mark.parametrize(
    ("host", "key", "token", "extra"),
    [
        ("127.0.0.1:8333", "/bucket/site/index.html", None, {}),
        ("bucket.s3.eu-west-1.amazonaws.com", "/dip-loc/secci%C3%B3n/a%20b/index.html", "tok/en+=", {}),
        ("r2.example", "/b/json/main.json", None, {"Content-Encoding": "gzip"}),
    ],
)
def test_signer_matches_botocore(host: str, key: str, token: str | None, extra: dict[str, str]) -> None:
    body = b'{"corte_id": "20210607_2000"}'
    payload = hashlib.sha256(body).hexdigest()
    headers = {"Content-Type": "application/json", "Cache-Control": "no-cache", **extra}
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    ours = SigV4Signer("eu-west-1").sign("PUT", host, key, headers, payload, creds.get_frozen_credentials(), NOW)

    request = AWSRequest(method="PUT", url=f"https://{host}{key}", data=body, headers=dict(headers))
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        S3SigV4Auth(creds, "s3", "eu-west-1").add_auth(request)
    assert ours["Authorization"] == request.headers["Authorization"]
    assert ours["X-Amz-Content-SHA256"] == request.headers["X-Amz-Content-SHA256"] == payload


def test_bucket_url_addressing() -> None:
    assert bucket_url("b", "us-east-1", "http://127.0.0.1:8333/") == "http://127.0.0.1:8333/b/"
    assert bucket_url("prep", "eu-west-1", None) == "https://prep.s3.eu-west-1.amazonaws.com/"
    # Dots break the *.s3 TLS wildcard: path-style on the regional endpoint.
    assert bucket_url("prep.example.mx", "us-east-2", None) == "https://s3.us-east-2.amazonaws.com/prep.example.mx/"


class _Script(http.server.BaseHTTPRequestHandler):
    """Answers each PUT with the next (status, code, delay) of ``server.script``; records what it got."""

    protocol_version = "HTTP/1.1"

    def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
        server: Any = self.server
        body = self.rfile.read(int(self.headers["Content-Length"]))
        server.requests.append((self.path, dict(self.headers), body))
        status, code, delay = server.script.pop(0) if server.script else (200, "", 0.0)
        time.sleep(delay)
        payload = ERROR.format(code=code, message=f"{code} happened").encode() if status >= 300 else b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[Any]:
    server: Any = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Script)
    server.requests, server.script = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(s3put, "_sleep", slept.append)
    return slept


def putter(url: str, **kw: Any) -> S3Putter:
    options: dict[str, Any] = {"threads": 2, "max_attempts": 5, "connect_timeout": 1.0, "read_timeout": 5.0}
    options.update(kw)
    return S3Putter(url, region="us-east-1", credentials=Credentials("AKID", "SECRET"), **options)


def test_put_retries_5xx_and_throttling_then_succeeds(scripted: Any, no_sleep: list[float]) -> None:
    scripted.script = [(503, "SlowDown", 0), (500, "InternalError", 0), (429, "TooManyRequests", 0)]
    body = b"<html>hola</html>"
    headers = {"Content-Type": "text/html", "Cache-Control": "public, max-age=10", "Content-Encoding": "gzip"}
    p = putter(f"http://127.0.0.1:{scripted.server_port}/bucket/")
    p.put("site/a b/index.html", body, headers, hashlib.sha256(body).hexdigest())
    assert len(scripted.requests) == 4
    path, got, sent = scripted.requests[-1]
    assert path == "/bucket/site/a%20b/index.html" and sent == body
    for name, value in headers.items():
        assert got[name] == value
    assert got["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKID/")
    # Full-jitter exponential backoff: attempt n waits at most 2**(n-1) s.
    assert len(no_sleep) == 3 and all(0 <= s <= 2**i for i, s in enumerate(no_sleep))


def test_put_gives_up_after_max_attempts_with_one_line(scripted: Any, no_sleep: list[float]) -> None:
    scripted.script = [(503, "SlowDown", 0)] * 3
    p = putter(f"http://127.0.0.1:{scripted.server_port}/bucket/", max_attempts=3)
    with pytest.raises(PutError) as info:
        p.put("k", b"x", {"Content-Type": "text/plain"}, hashlib.sha256(b"x").hexdigest())
    assert str(info.value) == "SlowDown 503: SlowDown happened"
    assert len(scripted.requests) == 3


def test_put_does_not_retry_client_errors(scripted: Any, no_sleep: list[float]) -> None:
    scripted.script = [(403, "AccessDenied", 0)]
    p = putter(f"http://127.0.0.1:{scripted.server_port}/bucket/")
    with pytest.raises(PutError, match="^AccessDenied 403: AccessDenied happened$"):
        p.put("k", b"x", {}, hashlib.sha256(b"x").hexdigest())
    assert len(scripted.requests) == 1 and no_sleep == []


def test_put_retries_a_read_timeout(scripted: Any, no_sleep: list[float]) -> None:
    scripted.script = [(200, "", 1.0)]
    p = putter(f"http://127.0.0.1:{scripted.server_port}/bucket/", read_timeout=0.2)
    p.put("k", b"x", {}, hashlib.sha256(b"x").hexdigest())
    assert len(scripted.requests) == 2 and len(no_sleep) == 1


def test_put_connection_refused_is_botocores_text(no_sleep: list[float]) -> None:
    p = putter("http://127.0.0.1:9/bucket/", max_attempts=2)
    with pytest.raises(PutError) as info:
        p.put("json/main.json", b"x", {}, hashlib.sha256(b"x").hexdigest())
    assert str(info.value) == 'Could not connect to the endpoint URL: "http://127.0.0.1:9/bucket/json/main.json"'
    assert len(no_sleep) == 1


def test_https_endpoint_verifies_the_certificate(scripted: Any, tmp_path: Path, no_sleep: list[float]) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    scripted.socket = context.wrap_socket(scripted.socket, server_side=True)
    url = f"https://127.0.0.1:{scripted.server_port}/bucket/"
    putter(url, ca_certs=str(cert)).put("k", b"x", {}, hashlib.sha256(b"x").hexdigest())
    assert scripted.requests[-1][1]["Host"] == f"127.0.0.1:{scripted.server_port}"
    # Another CA (the default bundle): refused at once, not retried.
    with pytest.raises(PutError, match="SSL validation failed"):
        putter(url).put("k", b"x", {}, hashlib.sha256(b"x").hexdigest())
    assert no_sleep == []
