"""prepgen/s3put.py: the SigV4 signer against botocore's, and the PUT retry policy on a loopback server."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import http.server
import random
import re
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import quote

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
        server.peers.add(self.client_address)
        status, code, delay = server.script.pop(0) if server.script else (200, "", 0.0)
        time.sleep(delay)
        payload = ERROR.format(code=code, message=f"{code} happened").encode() if status >= 300 else b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    # Room for every pool connection opening at once: a full accept queue drops SYNs, which come back
    # after 1 s, the putters' connect timeout here.
    request_queue_size = 64


@pytest.fixture
def scripted() -> Iterator[Any]:
    server: Any = _Server(("127.0.0.1", 0), _Script)
    server.requests, server.script, server.peers = [], [], set()
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
    p = putter(url, ca_certs=str(cert))
    p.put("k", b"x", {}, hashlib.sha256(b"x").hexdigest())
    assert scripted.requests[-1][1]["Host"] == f"127.0.0.1:{scripted.server_port}"
    # The TLS connection is kept alive for the next PUT.
    p.put("k2", b"y", {}, hashlib.sha256(b"y").hexdigest())
    assert [r[2] for r in scripted.requests] == [b"x", b"y"] and len(scripted.peers) == 1
    p.close()
    # Another CA (the default bundle): refused at once, not retried.
    with pytest.raises(PutError, match="SSL validation failed"):
        putter(url).put("k", b"x", {}, hashlib.sha256(b"x").hexdigest())
    assert no_sleep == []


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class _RawServer:
    """A loopback TCP server running ``handler(index, conn, rfile)`` per connection, for the cases
    http.server will not script: a close with no answer, chunked bodies, bodies without a length."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.listener.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/bucket/"
        self.stop = threading.Event()
        self.accepted = 0
        self.finished = 0  # connections handled and closed
        self.threads = [threading.Thread(target=self._serve, daemon=True)]
        self.threads[0].start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            thread = threading.Thread(target=self._run, args=(self.accepted, conn), daemon=True)
            self.accepted += 1
            self.threads.append(thread)
            thread.start()

    def _run(self, index: int, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as rfile, contextlib.suppress(OSError):
            self.handler(index, conn, rfile)
        self.finished += 1

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(5)
        self.listener.close()


@pytest.fixture
def raw_server() -> Iterator[Any]:
    servers: list[_RawServer] = []

    def start(handler: Any) -> _RawServer:
        servers.append(_RawServer(handler))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _read_request(rfile: Any) -> tuple[str, bytes] | None:
    """(path, body) of the next request on the connection, None once the client has closed it."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        line = rfile.readline()
        if not line:
            return None
        head += line
    length = re.search(rb"(?im)^content-length: *(\d+)", head)
    assert length is not None
    return head.split(b" ")[1].decode(), rfile.read(int(length.group(1)))


def _sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def test_connection_closed_by_the_server_while_idle_costs_no_attempt(
    raw_server: Any, no_sleep: list[float]
) -> None:
    seen: list[tuple[int, str]] = []

    def handler(index: int, conn: socket.socket, rfile: Any) -> None:
        while (request := _read_request(rfile)) is not None:
            seen.append((index, request[0]))
            if len(seen) == 2:
                return  # the second request on the kept-alive connection: hang up without an answer
            conn.sendall(OK)

    server = raw_server(handler)
    p = putter(server.url, max_attempts=1)
    p.put("a", b"1", {}, _sha(b"1"))
    p.put("b", b"2", {}, _sha(b"2"))
    # Sent again at once on a new connection: max_attempts=1 would have failed it otherwise.
    assert seen == [(0, "/bucket/a"), (0, "/bucket/b"), (1, "/bucket/b")]
    assert no_sleep == []
    p.close()


def test_connection_seen_closed_before_reuse_is_not_used(
    raw_server: Any, no_sleep: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, str]] = []

    def handler(index: int, conn: socket.socket, rfile: Any) -> None:
        request = _read_request(rfile)
        assert request is not None
        seen.append((index, request[0]))
        conn.sendall(OK)  # and close, without saying Connection: close

    checks: list[bool] = []
    dropped = s3put._Conn.dropped
    monkeypatch.setattr(s3put._Conn, "dropped", lambda self: checks.append(dropped(self)) or checks[-1])
    server = raw_server(handler)
    p = putter(server.url, max_attempts=1)
    p.put("a", b"1", {}, _sha(b"1"))
    deadline = time.monotonic() + 5
    while server.finished < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    p.put("b", b"2", {}, _sha(b"2"))
    assert checks == [True]  # the FIN was seen before sending, not discovered by a failed request
    assert seen == [(0, "/bucket/a"), (1, "/bucket/b")] and no_sleep == []
    p.close()


def test_new_connection_closed_without_answer_is_an_attempt(
    raw_server: Any, no_sleep: list[float]
) -> None:
    def handler(index: int, conn: socket.socket, rfile: Any) -> None:
        _read_request(rfile)

    server = raw_server(handler)
    with pytest.raises(PutError) as info:
        putter(server.url, max_attempts=3).put("k", b"x", {}, _sha(b"x"))
    assert str(info.value) == (
        f'Connection was closed before we received a valid response from endpoint URL: "{server.url}k".'
    )
    assert len(no_sleep) == 2 and server.accepted == 3


def test_chunked_error_body_is_parsed_and_the_connection_kept(
    raw_server: Any, no_sleep: list[float]
) -> None:
    xml = ERROR.format(code="AccessDenied", message="Access Denied").encode()
    chunks = [xml[:20], xml[20:47], xml[47:]]
    body = b"".join(b"%x;name=value\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\nX-Trailer: t\r\n\r\n"
    head = b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n"
    response = head + body
    seen: list[int] = []

    def handler(index: int, conn: socket.socket, rfile: Any) -> None:
        while _read_request(rfile) is not None:
            seen.append(index)
            if len(seen) > 1:
                conn.sendall(OK)
                continue
            for start in range(0, len(response), 37):  # in pieces, so the parser has to wait for more
                conn.sendall(response[start : start + 37])
                time.sleep(0.005)

    server = raw_server(handler)
    p = putter(server.url)
    with pytest.raises(PutError, match="^AccessDenied 403: Access Denied$"):
        p.put("k", b"x", {}, _sha(b"x"))
    p.put("k", b"x", {}, _sha(b"x"))
    # Same connection: the chunked body, trailer included, was read to its end and no further.
    assert seen == [0, 0] and no_sleep == []
    p.close()


def test_connection_close_response_is_not_reused(raw_server: Any, no_sleep: list[float]) -> None:
    seen: list[tuple[int, str]] = []

    def handler(index: int, conn: socket.socket, rfile: Any) -> None:
        request = _read_request(rfile)
        assert request is not None
        seen.append((index, request[0]))
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        # Left open: a client that sent its next request here would wait for an answer in vain.
        server.stop.wait(10)

    server = raw_server(handler)
    p = putter(server.url, max_attempts=1, read_timeout=1.0)
    p.put("a", b"1", {}, _sha(b"1"))
    p.put("b", b"2", {}, _sha(b"2"))
    assert seen == [(0, "/bucket/a"), (1, "/bucket/b")] and no_sleep == []
    p.close()


def test_body_without_length_is_read_to_the_close(raw_server: Any, no_sleep: list[float]) -> None:
    seen: list[int] = []

    def handler(index: int, conn: socket.socket, rfile: Any) -> None:
        while _read_request(rfile) is not None:
            seen.append(index)
            if index == 0:
                conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\n\r\n")
                conn.sendall(ERROR.format(code="InternalError", message="boom").encode())
                return
            conn.sendall(OK)

    server = raw_server(handler)
    p = putter(server.url, max_attempts=1)
    with pytest.raises(PutError, match="^InternalError 500: boom$"):
        p.put("k", b"x", {}, _sha(b"x"))
    p.put("k", b"x", {}, _sha(b"x"))
    assert seen == [0, 1] and no_sleep == []
    p.close()


def test_early_answer_to_a_large_put_beats_the_broken_pipe(raw_server: Any, no_sleep: list[float]) -> None:
    error = ERROR.format(code="AccessDenied", message="early").encode()

    def handler(index: int, conn: socket.socket, rfile: Any) -> None:
        while rfile.readline() not in (b"\r\n", b""):
            pass
        # Answers without reading the body, then closes on it unread: the client's send breaks.
        conn.sendall(b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(error))
        conn.sendall(error)
        time.sleep(0.1)

    server = raw_server(handler)
    body = bytes(16_000_000)  # more than the loopback socket buffers take
    with pytest.raises(PutError, match="^AccessDenied 403: early$"):
        putter(server.url).put("k", body, {}, _sha(body))
    assert server.accepted == 1 and no_sleep == []


def test_many_threads_share_a_smaller_pool_and_every_body_arrives_intact(
    scripted: Any, no_sleep: list[float]
) -> None:
    rng = random.Random(5)
    # Sizes on both sides of JOIN_MAX: head and body in one send, and in two.
    sizes = [0, 1, 700, 9_000, s3put.JOIN_MAX, s3put.JOIN_MAX + 1, 200_000]
    objects = {f"t/{i:03d}/índice.html": rng.randbytes(rng.choice(sizes)) for i in range(200)}
    p = putter(f"http://127.0.0.1:{scripted.server_port}/bucket/", threads=4)
    futures = []
    with ThreadPoolExecutor(8) as pool:
        for key, body in objects.items():
            futures.append(pool.submit(p.put, key, body, {"Content-Type": "text/html"}, _sha(body)))
    for future in futures:
        future.result()
    p.close()
    got = {path: body for path, _, body in scripted.requests}
    assert got == {"/bucket/" + quote(key): body for key, body in objects.items()}
    for _, headers, body in scripted.requests:
        assert headers["X-Amz-Content-SHA256"] == _sha(body)  # heads and bodies not crossed between threads
    assert len(scripted.requests) == 200 and no_sleep == []
    assert 1 <= len(scripted.peers) <= 4  # kept alive, and never more connections than the putter's threads


def test_header_with_a_line_break_is_refused_before_sending(scripted: Any, no_sleep: list[float]) -> None:
    p = putter(f"http://127.0.0.1:{scripted.server_port}/bucket/")
    with pytest.raises(PutError, match="line break"):
        p.put("k", b"x", {"Content-Type": "text/html\r\nX-Injected: 1"}, _sha(b"x"))
    assert scripted.requests == []
