"""A real Apache 2.4 (Debian's apache2) for tests: foreground (-X), minimal module set, free loopback port.

`.ci/run` installs apache2; a missing one is a test failure with a message, never a skip. As root, Apache
serves as `nobody`, so the web root must be world-readable: pass a directory made with :func:`public_dir`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from nginxserver import free_port
from procutil import terminate, wait_listening

MODULES = ("mpm_event", "authz_core", "mime", "dir", "alias", "headers", "filter", "deflate")
_MODULE_DIR = Path("/usr/lib/apache2/modules")


def apache_binary() -> str:
    found = shutil.which("apache2") or next(
        (p for p in ("/usr/sbin/apache2", "/usr/sbin/httpd") if os.access(p, os.X_OK)), None
    )
    if found is None or not _MODULE_DIR.is_dir():
        pytest.fail(
            "apache2 is not installed: the generated Apache config is checked in a real Apache. "
            "Install it with `apt-get install -y apache2` (.ci/run does this).",
            pytrace=False,
        )
    return found


def public_dir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="prepgen-apache-"))
    path.chmod(0o755)
    return path


class ApacheServer:
    def __init__(self, state: Path) -> None:
        self.binary = apache_binary()
        self.state = state
        state.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf = state / "httpd.conf"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def listen(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.listen}"

    def write(self, site: str) -> None:
        (self.state / "site.conf").write_text(site)
        loads = "\n".join(f"LoadModule {m}_module {_MODULE_DIR}/mod_{m}.so" for m in MODULES)
        self.conf.write_text(
            f"""ServerRoot {self.state}
ServerName localhost
PidFile {self.state}/httpd.pid
ErrorLog {self.state}/error.log
DefaultRuntimeDir {self.state}
Mutex file:{self.state} default
{loads}
TypesConfig /etc/mime.types
User nobody
Group nogroup
Include {self.state}/site.conf
"""
        )

    def test_config(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, "-t", "-f", str(self.conf)], capture_output=True, text=True, timeout=30
        )

    def start(self, site: str, timeout: float = 10.0) -> ApacheServer:
        self.write(site)
        checked = self.test_config()
        if checked.returncode != 0:
            raise AssertionError(f"apache2 -t rejected the config:\n{checked.stderr}")
        self.proc = subprocess.Popen(
            [self.binary, "-X", "-f", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        log = self.state / "error.log"
        wait_listening(
            self.proc, self.port, timeout, "apache2",
            lambda: log.read_text(errors="replace") if log.exists() else "",
        )
        return self

    def stop(self) -> None:
        terminate(self.proc)
