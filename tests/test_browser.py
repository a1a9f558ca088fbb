"""Browser smoke test: Debian's headless Chromium on the real Campeche 20:00 build (incremental since 22:40),
served by real nginx with the config `prepgen config nginx` prints (so the real CSP header applies).

Chromium is required: CI installs it (`apt-get install -y chromium`); a missing browser is a failure.
Screenshots are left in /tmp/prepgen-screenshots/ for a human to look at.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from nginxserver import NginxServer

from prepgen.cli import main
from prepgen.headers import CSP

C2, C3 = "20210607_1320", "20210607_2000"
TEXT2, TEXT3 = "07/06/2021 13:20 (UTC-5)", "07/06/2021 20:00 (UTC-5)"
SHOTS = Path("/tmp/prepgen-screenshots")
# How Chromium reports a blocked resource or inline code in the console (wording varies by version).
CSP_VIOLATION = re.compile(r"Refused to|violates the following Content Security Policy", re.I)


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "no Chromium found (chromium, chromium-browser or google-chrome): the browser smoke test needs it. "
        "Install it with `apt-get install -y chromium` (.ci/run does this).",
        pytrace=False,
    )


class Browser:
    def __init__(self, binary: str, profile: Path) -> None:
        self.binary = binary
        self.profile = profile

    def run(self, url: str, *action: str, width: int = 1280, height: int = 900) -> tuple[str, str]:
        """(stdout, console lines) of one headless run."""
        args = [
            self.binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
            f"--user-data-dir={self.profile}", "--enable-logging=stderr", "--v=0",
            "--virtual-time-budget=5000", f"--window-size={width},{height}", *action, url,
        ]
        done = subprocess.run(args, capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stderr[-3000:]
        console = "\n".join(line for line in done.stderr.splitlines() if ":CONSOLE" in line)
        return done.stdout, console

    def dom(self, url: str) -> tuple[str, str]:
        return self.run(url, "--dump-dom")

    def screenshot(self, url: str, path: Path, width: int, height: int) -> str:
        path.unlink(missing_ok=True)
        _, console = self.run(url, f"--screenshot={path}", width=width, height=height)
        assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
        return console


@pytest.fixture
def browser(tmp_path: Path) -> Browser:
    return Browser(chromium_binary(), tmp_path / "chromium-profile")


@pytest.fixture
def site(campeche_builds: dict[str, Path], nginx: NginxServer) -> Iterator[tuple[str, Path, NginxServer]]:
    build = campeche_builds[C3]
    result = CliRunner().invoke(main, ["config", "nginx", "--root", str(build), "--listen", nginx.listen])
    assert result.exit_code == 0, result.output
    nginx.start(result.output)
    yield nginx.url, build, nginx


def visible_text(dom: str, element_id: str) -> str | None:
    """Text of the element with that id, or None when it is hidden (or absent)."""
    m = re.search(rf'<(\w+)([^>]*)\bid="{element_id}"([^>]*)>(.*?)</\1>', dom, re.S)
    if not m or re.search(r"\bhidden\b", m.group(2) + m.group(3)):
        return None
    return m.group(4).strip()


def test_pages_render_in_chromium_with_the_corte_and_candidates(
    browser: Browser, site: tuple[str, Path, NginxServer]
) -> None:
    url, build, nginx = site
    main_json = json.loads((build / "json" / "main.json").read_bytes())
    gob = json.loads((build / main_json["elecciones"][0]["json"].lstrip("/")).read_bytes())
    names = [c["nombre"] for c in gob["candidaturas"]]
    district = gob["ambitos"][0]
    sections = [
        s
        for f in sorted((build / "json" / "gob").glob("*.json"))
        for s in json.loads(f.read_bytes()).get("secciones", {}).values()
    ]
    # A section whose figures last changed at 13:20 and one that changed at 20:00, in the 20:00 build.
    old = next(s for s in sections if s["corte_id"] == C2)
    new = next(s for s in sections if s["corte_id"] == C3)

    consoles = []
    for path, corte in (("/", TEXT3), ("/gob/", TEXT3), (district["html"], TEXT3)):
        dom, console = browser.dom(url + path)
        consoles.append(console)
        assert corte in dom, path
        assert visible_text(dom, "corte-js") is None, path  # the page is of the live corte: nothing to say
        if path != "/":
            for name in names:
                assert name in dom, (path, name)

    dom, console = browser.dom(url + f"/gob/seccion/{old['id']}/")
    consoles.append(console)
    assert TEXT2 in dom and old["nombre"] in dom
    # prep.js ran under the CSP (script-src 'self', connect-src 'self'), fetched main.json and says so.
    assert visible_text(dom, "corte-js") == f"Sin cambios desde el corte {TEXT2} · último corte {TEXT3}"

    dom, console = browser.dom(url + f"/gob/seccion/{new['id']}/")
    consoles.append(console)
    assert TEXT3 in dom and visible_text(dom, "corte-js") is None

    for console in consoles:
        assert not CSP_VIOLATION.search(console), console
    # The page's own stylesheet and script were fetched (and, per the console, not blocked).
    log = (nginx.prefix / "logs" / "access.log").read_text()
    assert re.search(r'"GET /static/style\.[0-9a-f]+\.css HTTP/1\.1" 200', log), log[-2000:]
    assert re.search(r'"GET /static/prep\.[0-9a-f]+\.js HTTP/1\.1" 200', log), log[-2000:]
    assert re.search(r'"GET /json/main\.json HTTP/1\.1" 200', log), log[-2000:]

    SHOTS.mkdir(exist_ok=True)
    for name, path, width, height in (
        ("seccion-390", f"/gob/seccion/{old['id']}/", 390, 844),
        ("eleccion-1280", "/gob/", 1280, 900),
    ):
        console = browser.screenshot(url + path, SHOTS / f"{name}.png", width, height)
        assert not CSP_VIOLATION.search(console), console


def test_console_check_catches_a_csp_violation(browser: Browser, tmp_path: Path) -> None:
    """Control for the check above: the same CSP with inline code must produce a console violation, or the
    absence of one in the real pages would prove nothing."""
    root = tmp_path / "control"
    root.mkdir()
    (root / "index.html").write_text(
        f'<!doctype html><meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<p style="color:red">x</p><script>document.title = "inline";</script>'
    )
    handler_cls = type("Quiet", (SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    handler = functools.partial(handler_cls, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        dom, console = browser.dom(f"http://127.0.0.1:{server.server_address[1]}/")
    finally:
        server.shutdown()
        server.server_close()
    assert "<title>inline</title>" not in dom
    assert CSP_VIOLATION.search(console), console
