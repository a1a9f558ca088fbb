"""The S3 PUT hot path: persistent urllib3 connections and a small AWS Signature V4 signer.

boto3 stays prepgen's S3 stack (credentials, GET, LIST); only PUT goes through here, because a corte is
thousands of small PUTs and botocore spends ~3 ms of CPU on each (event hooks, parameter validation,
checksums, signing) on a 2-core machine it shares with the storage server: docs/PERFORMANCE.md has the
numbers. urllib3 is botocore's own HTTP library, so this adds no dependency.

Addressing: path-style (``ENDPOINT/BUCKET/KEY``) when an endpoint URL is given (SeaweedFS, MinIO, R2 all
accept it); without one, AWS virtual-hosted style ``https://BUCKET.s3.REGION.amazonaws.com/KEY`` (path-style
on ``s3.REGION.amazonaws.com`` for bucket names with dots, which break the TLS wildcard).

Retries follow botocore's ``standard`` mode: up to ``max_attempts`` attempts, full-jitter exponential backoff
(``random() * 2**(attempt-1)`` s, at most 20 s) on connection errors, timeouts, 5xx and throttling.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import random
import re
import threading
import time
from typing import Any
from urllib.parse import quote, urlsplit

import urllib3

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
        kwargs: dict[str, Any] = {}
        if parts.scheme == "https":
            kwargs = {"cert_reqs": "CERT_REQUIRED", "ca_certs": ca_certs}
        pool_cls = urllib3.HTTPSConnectionPool if parts.scheme == "https" else urllib3.HTTPConnectionPool
        # block=True: a worker waits for a free connection instead of opening (and dropping) extra ones.
        self.pool = pool_cls(
            parts.hostname,
            parts.port or default_port,
            maxsize=max(1, threads),
            block=True,
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            retries=False,
            **kwargs,
        )

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
            try:
                response = self.pool.urlopen(
                    "PUT", path, body=body, headers=signed, retries=False, redirect=False,
                    preload_content=True, assert_same_host=False,
                )
            except urllib3.exceptions.SSLError as exc:
                # A certificate that does not validate will not start validating on the next attempt.
                raise PutError(_connection_error_text(self.url(key), exc)) from None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
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
        self.pool.close()


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


def _connection_error_text(url: str, exc: BaseException) -> str:
    # The texts botocore gives for the same failures, so messages do not depend on which path failed.
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return f'Read timeout on endpoint URL: "{url}"'
    # NewConnectionError subclasses ConnectTimeoutError: test it first.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return f'Could not connect to the endpoint URL: "{url}"'
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return f'Connect timeout on endpoint URL: "{url}"'
    if isinstance(exc, urllib3.exceptions.SSLError):
        return f"SSL validation failed for {url} {exc}"
    return f'Connection was closed before we received a valid response from endpoint URL: "{url}".'
