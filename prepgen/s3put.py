"""The S3 PUT hot path: a minimal HTTP/1.1 client on raw sockets and a small AWS Signature V4 signer.

boto3 stays prepgen's S3 stack (credentials, GET, LIST); only PUT goes through here, because a corte is
thousands of small PUTs and botocore spends ~3 ms of CPU on each (event hooks, parameter validation,
checksums, signing) on a 2-core machine it shares with the storage server: docs/PERFORMANCE.md has the
numbers. The HTTP side is stdlib sockets rather than urllib3 (botocore's HTTP library) for the same reason:
on bench/putrate.py (6,100 objects, 4 and 16 threads, the loopback SeaweedFS under other load) urllib3
took 1.3-1.6 ms of client CPU per PUT and this client 0.5-0.7 ms (against a trivial server, one thread:
0.51 ms and 0.13 ms). A PUT needs little HTTP: a request line, a few headers and the body out; a status,
three headers and at most a short error body back.

What it does speak: keep-alive connections (a pool of at most ``threads``, each checked for a close or
junk from the server before reuse), ``Content-Length``, chunked or read-to-close response bodies, TLS with
the certificate and host name verified. What it does not: proxies, redirects, 100-continue, pipelining.

Addressing: path-style (``ENDPOINT/BUCKET/KEY``) when an endpoint URL is given (SeaweedFS, MinIO, R2 all
accept it); without one, AWS virtual-hosted style ``https://BUCKET.s3.REGION.amazonaws.com/KEY`` (path-style
on ``s3.REGION.amazonaws.com`` for bucket names with dots, which break the TLS wildcard).

Retries follow botocore's ``standard`` mode: up to ``max_attempts`` attempts, full-jitter exponential
backoff (``random() * 2**(attempt-1)`` s, at most 20 s) on connection errors, timeouts, 5xx and throttling.
A kept-alive connection that the server closed while it sat idle costs no attempt: the request goes again
at once on a new connection, as HTTP clients do.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import random
import re
import select
import socket
import ssl
import threading
import time
import weakref
from typing import Any
from urllib.parse import quote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
# botocore standard mode: these codes are transient or throttling whatever the status says.
RETRY_CODES = frozenset(
    {
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestThrottled",
        "TooManyRequestsException",
    }
)
MAX_BACKOFF = 20.0
_sleep = time.sleep  # tests replace it to check the backoff without waiting
# Up to this size the body leaves in the same send as the head (one syscall, one packet); above it
# the copy that joining them makes costs more than a second send.
JOIN_MAX = 64 * 1024
# A response head or chunk-size line longer than this is not S3 talking: the connection is given up.
MAX_HEAD = 64 * 1024
RECV_SIZE = 65536


class PutError(Exception):
    """One line, in botocore's words (``Code status: Message`` or the connection failure)."""


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class SigV4Signer:
    """AWS Signature Version 4 for S3 header-signed requests (the subset PUT needs: no query string)."""

    def __init__(self, region: str, service: str = "s3") -> None:
        self.region = region
        self.service = service
        # The derived key changes once a day per secret; every PUT would otherwise pay four HMACs for it.
        self._key: tuple[str, str, bytes] | None = None

    def _signing_key(self, secret: str, date: str) -> bytes:
        cached = self._key
        if cached is not None and cached[0] == secret and cached[1] == date:
            return cached[2]
        key = _hmac(("AWS4" + secret).encode(), date)
        for part in (self.region, self.service, "aws4_request"):
            key = _hmac(key, part)
        self._key = (secret, date, key)
        return key

    def sign(
        self,
        method: str,
        host: str,
        path: str,
        headers: dict[str, str],
        payload_sha256: str,
        credentials: Any,
        now: datetime.datetime | None = None,
    ) -> dict[str, str]:
        """``headers`` plus ``Host``, the ``X-Amz-*`` headers and ``Authorization``; all of them signed.

        ``path`` is already URI-encoded (S3 does not encode it twice); ``credentials`` has ``access_key``,
        ``secret_key`` and ``token`` (botocore's frozen credentials)."""
        now = now or datetime.datetime.now(datetime.UTC)
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        date = stamp[:8]
        out = dict(headers)
        out["Host"] = host
        out["X-Amz-Date"] = stamp
        out["X-Amz-Content-SHA256"] = payload_sha256
        if credentials.token:
            out["X-Amz-Security-Token"] = credentials.token
        canonical = sorted((k.lower(), " ".join(v.split())) for k, v in out.items())
        signed = ";".join(k for k, _ in canonical)
        request = "\n".join(
            [method, path, "", *(f"{k}:{v}" for k, v in canonical), "", signed, payload_sha256]
        )
        scope = f"{date}/{self.region}/{self.service}/aws4_request"
        to_sign = f"{ALGORITHM}\n{stamp}\n{scope}\n{hashlib.sha256(request.encode()).hexdigest()}"
        signature = hmac.new(
            self._signing_key(credentials.secret_key, date), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        out["Authorization"] = (
            f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )
        return out


def bucket_url(bucket: str, region: str, endpoint_url: str | None) -> str:
    """Base URL that a quoted key is appended to (see the module docstring for the addressing rule)."""
    if endpoint_url:
        return endpoint_url.rstrip("/") + "/" + quote(bucket, safe="") + "/"
    if "." in bucket:
        return f"https://s3.{region}.amazonaws.com/{bucket}/"
    return f"https://{bucket}.s3.{region}.amazonaws.com/"


class S3Putter:
    """Thread-safe PUTs of whole bodies over a pool of kept-alive connections (one per worker thread)."""

    def __init__(
        self,
        base_url: str,
        *,
        region: str,
        credentials: Any,
        threads: int,
        max_attempts: int,
        connect_timeout: float,
        read_timeout: float,
        ca_certs: str | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PutError(f"bad endpoint URL {base_url!r}; expected http(s)://HOST[:PORT]")
        if re.search(r"[\x00-\x20\x7f]", parts.path):
            # The path goes verbatim into the request line, where a space or line break would split it.
            raise PutError(f"bad endpoint URL {base_url!r}; spaces or control characters in the path")
        self.base_url = base_url
        self.path_prefix = parts.path
        default_port = 443 if parts.scheme == "https" else 80
        # As botocore: the default port is not part of the signed Host.
        self.host = parts.hostname if parts.port in (None, default_port) else f"{parts.hostname}:{parts.port}"
        self.credentials = credentials
        self.signer = SigV4Signer(region)
        self.max_attempts = max(1, max_attempts)
        self._random = random.Random()
        self._lock = threading.Lock()
        self._address = (parts.hostname, parts.port or default_port)
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        # create_default_context requires a certificate and checks the host name against it.
        self._tls = ssl.create_default_context(cafile=ca_certs) if parts.scheme == "https" else None
        # At most `threads` connections, in use or idle: a worker beyond that waits for one (urllib3's
        # block=True) instead of opening a connection the pool would then have to drop.
        self._slots = threading.BoundedSemaphore(max(1, threads))
        self._idle: list[_Conn] = []  # LIFO: the most recently used connection is the least likely closed
        self._closed = False
        # A putter dropped without close() still closes its sockets (urllib3's pools do the same), and
        # without a ResourceWarning for each.
        weakref.finalize(self, _close_all, self._idle)

    def url(self, key: str) -> str:
        return self.base_url + quote(key, safe="/~")

    def put(self, key: str, body: bytes, headers: dict[str, str], payload_sha256: str) -> None:
        """PUT ``body`` under ``key`` (the full object key, prefix included); raises PutError."""
        path = self.path_prefix + quote(key, safe="/~")
        attempt = 0
        while True:
            attempt += 1
            frozen = self.credentials.get_frozen_credentials()
            signed = self.signer.sign("PUT", self.host, path, headers, payload_sha256, frozen)
            head = _request_head(path, signed, len(body))
            try:
                try:
                    response = self._exchange(head, body, fresh=False)
                except _Failure as exc:
                    if not exc.stale:
                        raise
                    # The server closed the idle connection as we picked it up: not the server failing,
                    # so no attempt spent and no backoff. A new connection cannot be stale.
                    response = self._exchange(head, body, fresh=True)
            except _Failure as exc:
                if exc.kind == SSL_FAILURE:
                    # A certificate that does not validate will not start validating on the next attempt.
                    raise PutError(_connection_error_text(self.url(key), exc)) from None
                error = _connection_error_text(self.url(key), exc)
            else:
                if 200 <= response.status < 300:
                    return
                code, message = _error_code(response.data)
                error = f"{code or 'error'} {response.status}: {message}".strip()
                if response.status < 500 and response.status != 429 and code not in RETRY_CODES:
                    raise PutError(_redirect_hint(response, error))
            if attempt >= self.max_attempts:
                raise PutError(error)
            with self._lock:
                jitter = self._random.random()
            _sleep(min(jitter * 2 ** (attempt - 1), MAX_BACKOFF))

    def close(self) -> None:
        """Close the idle connections; one in use is closed when its request ends."""
        with self._lock:
            self._closed = True
            idle = self._idle[:]
            self._idle.clear()
        _close_all(idle)

    def _exchange(self, head: bytes, body: bytes, *, fresh: bool) -> _Response:
        """One request and its response, on a new connection if ``fresh``; raises _Failure."""
        conn = self._acquire(fresh)
        reader = _Reader(conn.sock)
        keep = False
        try:
            sent = False
            try:
                if len(body) <= JOIN_MAX:
                    conn.sock.sendall(head + body)
                else:
                    conn.sock.sendall(head)
                    conn.sock.sendall(body)
                sent = True
            except (BrokenPipeError, ConnectionResetError):
                # The server may have answered before reading the whole body (an early 4xx) and closed:
                # that answer says more than the broken pipe (urllib3 reads it too). Nothing to read,
                # and the read below fails as the send did.
                pass
            response, keep = _read_response(reader)
            keep = keep and sent
        except TimeoutError as exc:
            raise _Failure(READ_TIMEOUT, exc) from None
        except (OSError, _Closed) as exc:
            # A reset or EOF before the first response byte, on a connection that had sat idle, is the
            # server's close racing our request. Bytes that are not HTTP, or a close mid-response, are not.
            raise _Failure(CLOSED, exc, stale=conn.reused and not reader.got) from None
        finally:
            self._release(conn, keep=keep)
        return response

    def _acquire(self, fresh: bool) -> _Conn:
        self._slots.acquire()
        try:
            while not fresh:
                with self._lock:
                    if not self._idle:
                        break
                    conn = self._idle.pop()
                if not conn.dropped():
                    conn.reused = True
                    return conn
                conn.close()
            return self._connect()
        except BaseException:
            self._slots.release()
            raise

    def _release(self, conn: _Conn, *, keep: bool) -> None:
        pooled = False
        if keep:
            with self._lock:
                if not self._closed:
                    self._idle.append(conn)
                    pooled = True
        if not pooled:
            conn.close()
        self._slots.release()

    def _connect(self) -> _Conn:
        try:
            sock = socket.create_connection(self._address, timeout=self._connect_timeout)
        except TimeoutError as exc:
            raise _Failure(CONNECT_TIMEOUT, exc) from None
        except OSError as exc:
            raise _Failure(CONNECT, exc) from None
        try:
            # The request goes out in one write (two for a large body); without this, the second write
            # or the next request could wait on Nagle plus the server's delayed ACK (40 ms on Linux).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self._address[0])
            sock.settimeout(self._read_timeout)
        except (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionError) as exc:
            # The server hung up during the handshake: a connection failure, retried like one.
            sock.close()
            raise _Failure(CONNECT, exc) from None
        except ssl.SSLError as exc:
            sock.close()
            raise _Failure(SSL_FAILURE, exc) from None
        except TimeoutError as exc:
            sock.close()
            raise _Failure(CONNECT_TIMEOUT, exc) from None
        except OSError as exc:
            sock.close()
            raise _Failure(CONNECT, exc) from None
        return _Conn(sock, tls=self._tls is not None)


def _close_all(conns: list[_Conn]) -> None:
    for conn in conns:
        conn.close()


def _request_head(path: str, headers: dict[str, str], length: int) -> bytes:
    text = f"PUT {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    text += f"Content-Length: {length}\r\n\r\n"
    # A CR or LF inside a header would end it early and smuggle what follows in as headers (http.client
    # refuses them too): one count over the whole head checks every value.
    lines = len(headers) + 3
    if text.count("\n") != lines or text.count("\r") != lines:
        raise PutError("a header name or value has a line break: " + ", ".join(sorted(headers)))
    return text.encode("latin-1")


def _error_code(body: bytes) -> tuple[str, str]:
    # S3 error bodies are a flat <Error><Code/><Message/></Error>; a regex spares an XML parser per error.
    text = body[:4096].decode("utf-8", "replace")
    code = re.search(r"<Code>([^<]*)</Code>", text)
    message = re.search(r"<Message>([^<]*)</Message>", text)
    return (code.group(1) if code else "", message.group(1) if message else "")


def _redirect_hint(response: Any, error: str) -> str:
    region = response.headers.get("x-amz-bucket-region")
    if region and response.status in (301, 307, 400):
        return f"{error} (the bucket is in region {region}: set AWS_DEFAULT_REGION={region})"
    return error


def _connection_error_text(url: str, exc: _Failure) -> str:
    # The texts botocore gives for the same failures, so messages do not depend on which path failed.
    if exc.kind == READ_TIMEOUT:
        return f'Read timeout on endpoint URL: "{url}"'
    if exc.kind == CONNECT:
        return f'Could not connect to the endpoint URL: "{url}"'
    if exc.kind == CONNECT_TIMEOUT:
        return f'Connect timeout on endpoint URL: "{url}"'
    if exc.kind == SSL_FAILURE:
        return f"SSL validation failed for {url} {exc.detail}"
    return f'Connection was closed before we received a valid response from endpoint URL: "{url}".'


# _Failure kinds, each with botocore's text in _connection_error_text.
CONNECT = "connect"
CONNECT_TIMEOUT = "connect-timeout"
READ_TIMEOUT = "read-timeout"
SSL_FAILURE = "ssl"
CLOSED = "closed"


class _Failure(Exception):
    """A request that got no usable response."""

    def __init__(self, kind: str, detail: BaseException, *, stale: bool = False) -> None:
        super().__init__(kind, detail)
        self.kind = kind
        self.detail = detail
        # On a reused connection, before any response byte: the server had closed it while it sat idle.
        self.stale = stale


class _Closed(Exception):
    """The server closed the connection mid-response, or sent something that is not HTTP/1.x."""


class _Response:
    __slots__ = ("status", "headers", "data")

    def __init__(self, status: int, headers: dict[str, str], data: bytes) -> None:
        self.status = status
        self.headers = headers  # names lower-cased
        self.data = data


class _Conn:
    __slots__ = ("sock", "poller", "tls", "reused")

    def __init__(self, sock: socket.socket, *, tls: bool) -> None:
        self.sock = sock
        self.tls = tls
        self.reused = False
        # poll, not select: select fails on descriptors above 1024, which a busy process can reach.
        self.poller = select.poll()
        self.poller.register(sock, select.POLLIN | select.POLLPRI)

    def dropped(self) -> bool:
        # An idle connection has nothing to read: readable means EOF (the server closed it), a reset, or
        # bytes nobody asked for, and the next response read on it would be wrong (urllib3's
        # is_connection_dropped makes the same check). POLLHUP and POLLERR come whatever the mask.
        if self.poller.poll(0):
            return True
        return self.tls and self.sock.pending() > 0  # type: ignore[attr-defined]

    def close(self) -> None:
        self.sock.close()


class _Reader:
    """The bytes of one response, pulled from the socket as the parser asks for them."""

    __slots__ = ("sock", "buf", "got")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.got = False  # any byte received: a failure after that is no stale connection

    def fill(self) -> bool:
        chunk = self.sock.recv(RECV_SIZE)
        if not chunk:
            return False
        self.got = True
        self.buf += chunk
        return True

    def until(self, mark: bytes, what: str) -> bytes:
        """The bytes up to ``mark``, which is consumed too."""
        while (end := self.buf.find(mark)) < 0:
            if len(self.buf) > MAX_HEAD:
                raise _Closed(f"{what} too long")
            if not self.fill():
                raise _Closed(f"closed before the end of the {what}")
        out = bytes(self.buf[:end])
        del self.buf[: end + len(mark)]
        return out

    def exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self.fill():
                raise _Closed("closed mid-body")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def to_close(self) -> bytes:
        while self.fill():
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out


def _read_response(reader: _Reader) -> tuple[_Response, bool]:
    """The response, and whether the connection can carry another request."""
    while True:
        lines = reader.until(b"\r\n\r\n", "response head").decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/1.") or not rest[:3].isdigit():
            raise _Closed(f"bad status line {lines[0][:80]!r}")
        status = int(rest[:3])
        # 1xx is informational (we send no Expect: 100-continue, but a server may still send one): the
        # real response follows it.
        if status >= 200 or status == 101:
            break
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise _Closed(f"bad header line {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep = "keep-alive" in connection if version == "HTTP/1.0" else "close" not in connection
    if status in (204, 304) or status < 200:
        data = b""
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        parts = []
        while True:
            size_field = reader.until(b"\r\n", "chunk size line").split(b";", 1)[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError:
                raise _Closed(f"bad chunk size {size_field[:40]!r}") from None
            if size == 0:
                break
            parts.append(reader.exact(size))
            if reader.exact(2) != b"\r\n":
                raise _Closed("chunk not followed by CRLF")
        while reader.until(b"\r\n", "trailer"):  # trailers, up to the empty line that ends them
            pass
        data = b"".join(parts)
    elif (length := headers.get("content-length")) is not None:
        if not length.isdigit():
            raise _Closed(f"bad Content-Length {length[:40]!r}")
        data = reader.exact(int(length))
    else:
        # No length: the body ends when the server closes, so the connection cannot be reused.
        data = reader.to_close()
        keep = False
    if reader.buf:
        keep = False  # bytes past the response: we never pipeline, so the stream is out of step
    return _Response(status, headers, data), keep
