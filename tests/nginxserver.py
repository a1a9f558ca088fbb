"""A real nginx for tests: foreground process, every path inside one directory, free loopback port.

Debian's nginx (packages nginx-light or nginx) is required; `.ci/run` installs it. A missing nginx is a
test failure with a message, never a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from procutil import terminate, wait_listening

# Debian puts it in /usr/sbin, which is not on a normal user's PATH.
_CANDIDATES = ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in _CANDIDATES if os.access(p, os.X_OK)), None)
    if found is None:
        pytest.fail(
            "nginx is not installed: these tests run the generated config in a real nginx. "
            "Install it with `apt-get install -y nginx-light` (.ci/run does this).",
            pytrace=False,
        )
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NginxServer:
    """nginx with ``site`` (text for inside ``http {}``) included; all state under ``prefix``."""

    def __init__(self, prefix: Path) -> None:
        self.binary = nginx_binary()
        self.prefix = prefix
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        for sub in ("logs", "tmp", "conf"):
            (prefix / sub).mkdir(parents=True, exist_ok=True)
        self.conf = prefix / "conf" / "nginx.conf"
        self.error_log = prefix / "logs" / "error.log"
        self.pid = prefix / "logs" / "nginx.pid"

    @property
    def listen(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.listen}"

    def write(self, site: str) -> None:
        (self.prefix / "conf" / "site.conf").write_text(site)
        tmp = self.prefix / "tmp"
        # Workers of a root master run as `nobody` unless told otherwise and could not read tmp_path.
        user = "user root;\n" if os.geteuid() == 0 else ""
        self.conf.write_text(
            f"""{user}worker_processes 1;
events {{ worker_connections 512; }}
http {{
    access_log {self.prefix / "logs" / "access.log"};
    client_body_temp_path {tmp / "client_body"};
    proxy_temp_path {tmp / "proxy"};
    fastcgi_temp_path {tmp / "fastcgi"};
    uwsgi_temp_path {tmp / "uwsgi"};
    scgi_temp_path {tmp / "scgi"};
    include {self.prefix / "conf" / "site.conf"};
}}
"""
        )

    def _args(self, *extra: str, foreground: bool) -> list[str]:
        g = f"pid {self.pid};" + (" daemon off;" if foreground else "")
        return [self.binary, "-p", str(self.prefix), "-c", str(self.conf), "-e", str(self.error_log), "-g", g, *extra]

    def test_config(self) -> subprocess.CompletedProcess[str]:
        """`nginx -t` on the written config."""
        return subprocess.run(self._args("-t", foreground=False), capture_output=True, text=True, timeout=30)

    def start(self, site: str, timeout: float = 10.0) -> NginxServer:
        self.write(site)
        checked = self.test_config()
        if checked.returncode != 0:
            raise AssertionError(f"nginx -t rejected the config:\n{checked.stderr}")
        self.proc = subprocess.Popen(
            self._args(foreground=True), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        proc = self.proc

        def detail() -> str:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            log = self.error_log.read_text(errors="replace") if self.error_log.exists() else ""
            return f"{err}\n{log}"

        wait_listening(proc, self.port, timeout, "nginx", detail)
        return self

    def stop(self) -> None:
        try:
            terminate(self.proc)  # TERM: fast shutdown of master and workers
        finally:
            if self.proc is not None and self.proc.stderr:
                self.proc.stderr.close()

    def errors(self) -> str:
        return self.error_log.read_text(errors="replace") if self.error_log.exists() else ""
