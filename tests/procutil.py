"""Process helpers shared by the real-server fixtures (nginx, Apache, ...)."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable


def wait_listening(
    proc: subprocess.Popen, port: int, timeout: float, name: str, exit_detail: Callable[[], str]
) -> None:
    """Return once ``port`` accepts connections; fail with the process's own words if it dies first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited with {proc.returncode}:\n{exit_detail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    terminate(proc)
    raise AssertionError(f"{name} did not listen on port {port} within {timeout} s")


def terminate(proc: subprocess.Popen | None, timeout: float = 10) -> None:
    """TERM, then KILL if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)
