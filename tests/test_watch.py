"""prepgen watch / aviso / final / bitacora against a real SeaweedFS S3 server."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hostile import HOSTILE, truncated, zip_bomb, zip_slip
from paths import CAMPECHE
from s3server import S3Server

from prepgen import watch as watch_module
from prepgen.bitacora import Bitacora
from prepgen.cli import main
from prepgen.config import Config
from prepgen.publish import S3Storage
from prepgen.render import SiteOptions
from prepgen.simulate import simulate
from prepgen.watch import Operacion, Watcher, operacion

C2240, C1320, C2000 = (p.name for p in CAMPECHE)
ROOT = Path(__file__).resolve().parents[1]
AVISO = "Publicación detenida temporalmente"  # [operacion] aviso_texto in these tests


def corte_of(name: str) -> str:
    return name[:13]


class Bucket:
    """A reader of the published site on S3 (plain bytes, None for 404)."""

    def __init__(self, server: S3Server, bucket: str, prefix: str = "prep/") -> None:
        self.client = server.client(max_pool_connections=8)
        self.bucket = bucket
        self.prefix = prefix

    def get(self, key: str) -> bytes | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except self.client.exceptions.NoSuchKey:
            return None
        # As an HTTP client would: corte records are stored gzip-encoded.
        data = response["Body"].read()
        return gzip.decompress(data) if response.get("ContentEncoding") == "gzip" else data

    def pointer(self) -> dict[str, Any] | None:
        raw = self.get("json/main.json")
        return json.loads(raw) if raw else None

    def text(self, key: str) -> str:
        raw = self.get(key)
        assert raw is not None, key
        return raw.decode()


@pytest.fixture
def site(s3server: S3Server, s3bucket: str) -> tuple[str, str, Bucket]:
    return f"s3://{s3bucket}/prep", s3server.endpoint_url, Bucket(s3server, s3bucket)


def make_op(tmp_path: Path, target: str, endpoint: str | None, **settings: Any) -> Operacion:
    process = {"entidad": "CAMP", "anio": 2021, "elecciones": ("GOB", "DIP_LOC")}
    cfg = Config(
        destino=target, endpoint_url=endpoint, aviso_texto=AVISO,
        **{"sondeo_segundos": 0.1, "incompleto_segundos": 0.5, **process, **settings},
    )
    return operacion(cfg, SiteOptions(), work=tmp_path / "work", require_process=True)


def drop(inbox: Path, src: Path, name: str | None = None) -> Path:
    """Arrive like an SFTP upload that renames when done: written aside, then renamed into the inbox."""
    inbox.mkdir(exist_ok=True)
    tmp = inbox / f".{name or src.name}.part"
    shutil.copyfile(src, tmp)
    final = inbox / (name or src.name)
    os.replace(tmp, final)
    return final


def events(work: Path) -> list[dict[str, Any]]:
    return list(Bitacora(work).entries())


def wait_for(what: str, check: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def has(work: Path, evento: str, **fields: Any) -> Callable[[], bool]:
    return lambda: any(
        e["evento"] == evento and all(e.get(k) == v for k, v in fields.items()) for e in events(work)
    )


def index_of(log: list[dict[str, Any]], evento: str, **fields: Any) -> int:
    for i, e in enumerate(log):
        if e["evento"] == evento and all(e.get(k) == v for k, v in fields.items()):
            return i
    raise AssertionError(f"no {evento} {fields} in the bitácora: {[e['evento'] for e in log]}")


@contextmanager
def watching(op: Operacion, inbox: Path) -> Iterator[Watcher]:
    watcher = Watcher(op, inbox)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            watcher.run()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    thread = threading.Thread(target=run, name="watcher")
    thread.start()
    try:
        yield watcher
    finally:
        watcher.stop()
        thread.join(timeout=120)
    assert not thread.is_alive()
    assert not failures, failures


def tree(root: Path, skip: tuple[str, ...]) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.relative_to(root).parts[0] not in skip}


def run_cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


# --------------------------------------------------------------------------------------------- acceptance


def test_inbox_out_of_order_duplicates_stale_and_hostile(
    site: tuple[str, str, Bucket], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, endpoint, bucket = site
    inbox, work = tmp_path / "buzon", tmp_path / "work"
    sandbox = tmp_path / "tmp"
    sandbox.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(sandbox))  # anything using a temp file would land here
    # Wave 1, newest first; plus a truncated upload, a zip slip and a zip bomb (all claiming newer cortes).
    drop(inbox, CAMPECHE[2])
    drop(inbox, CAMPECHE[1])
    staging = tmp_path / "staging"
    staging.mkdir()
    bad = {"20210607_2100_PREP_CAMP.zip": truncated, "20210607_2110_PREP_CAMP.zip": zip_slip,
           "20210607_2120_PREP_CAMP.zip": zip_bomb}
    for name, make in bad.items():
        make(staging / name)
        drop(inbox, staging / name)
    before = tree(tmp_path, ("buzon", "work"))
    op = make_op(tmp_path, target, endpoint)
    # The watcher hands publish the build's manifest and the record it left live, corte after corte.
    handed: list[tuple[str, str, bool]] = []
    targets: list[Any] = []

    def spy(*args: Any, **kwargs: Any) -> Any:
        result = real_publish(*args, **kwargs)
        handed.append((result.corte_id, result.live_source, kwargs.get("manifest") is not None))
        targets.append(args[1])
        return result

    real_publish = watch_module.publish
    monkeypatch.setattr(watch_module, "publish", spy)
    with watching(op, inbox) as watcher:
        wait_for("corte 2000 live and three refusals", lambda: has(work, "publicacion", corte="20210607_2000")()
                 and sum(e["evento"] == "rechazo" for e in events(work)) == 3)
        # Wave 2: the oldest corte arrives late, and the institute re-sends the newest one.
        drop(inbox, CAMPECHE[0])
        drop(inbox, CAMPECHE[2])
        wait_for("stale and duplicate handled", lambda: has(work, "rechazo", archivo=C2240)()
                 and has(work, "duplicado", archivo=C2000)())

    assert bucket.pointer()["corte_id"] == "20210607_2000"  # type: ignore[index]
    assert handed == [("20210607_1320", "none", True), ("20210607_2000", "memory", True)]
    # One storage (boto3 client, kept-alive PUT connections) for the watcher's life, not one per corte.
    assert isinstance(targets[0], S3Storage) and targets[1] is targets[0] is watcher.engine.storage()
    live = watcher.engine.live
    assert live is not None and live.corte_id == "20210607_2000"
    assert live.files == json.loads(bucket.text("_prepgen/cortes/20210607_2000/manifest.json"))["files"]
    refused = inbox / "rechazados"
    expected = {**{n: "" for n in bad}, C2240: "anterior al corte 20210607_2000"}
    assert sorted(p.name for p in refused.iterdir() if not p.name.endswith(".error.txt")) == sorted(expected)
    reasons = {}
    for name, phrase in expected.items():
        lines = (refused / (name + ".error.txt")).read_text(encoding="utf-8").splitlines()
        assert len(lines) == 1 and lines[0].strip() and phrase in lines[0], (name, lines)
        reasons[name] = lines[0]
    assert "no es un zip legible" in reasons["20210607_2100_PREP_CAMP.zip"]
    assert "escapes the archive" in reasons["20210607_2110_PREP_CAMP.zip"]
    assert "zip bomb" in reasons["20210607_2120_PREP_CAMP.zip"]
    assert sorted(p.name for p in (inbox / "procesados").iterdir()) == sorted(
        [C1320, C2000, "20210607_2000_PREP_CAMP.2.zip"]
    )
    assert [p.name for p in inbox.iterdir() if p.is_file()] == []
    # Nothing written outside the work area (inbox + work dir), not even a temp file.
    assert tree(tmp_path, ("buzon", "work")) == before
    assert list(sandbox.iterdir()) == []
    assert not (work / "entrada").exists() or list((work / "entrada").iterdir()) == []

    log = events(work)
    assert log[0]["evento"] == "inicio" and log[-1]["evento"] == "fin"
    for name, corte in ((C1320, "20210607_1320"), (C2000, "20210607_2000")):
        steps = [
            index_of(log, "llegada", archivo=name),
            index_of(log, "validacion", archivo=name, corte=corte),
            index_of(log, "construccion", archivo=name),
            index_of(log, "publicacion", archivo=name, corte=corte),
        ]
        assert steps == sorted(steps), name
        etapas = log[steps[2]]["etapas"]
        assert set(etapas) == {"leer", "modelo", "render", "escribir"}, etapas
        assert all(isinstance(v, float) and v >= 0 for v in etapas.values()) and etapas["render"] > 0, etapas
        pub = log[steps[-1]]
        assert pub["objetos"] > 0 and pub["bytes"] > 0 and pub["latencia_segundos"] > 0 and pub["puntero"]
        assert len(log[steps[0]]["sha256"]) == 64
    # Out of order on disk, in corte order on the site.
    assert index_of(log, "publicacion", corte="20210607_1320") < index_of(log, "publicacion", corte="20210607_2000")
    dip = log[index_of(log, "validacion", archivo=C2000)]["discrepancias"]
    assert {"eleccion": "DIP_LOC", "campo": "ACTAS_CONTABILIZADAS", "publicado": 1060, "recuento": 1056} in dip
    assert index_of(log, "publicacion", corte="20210607_2000") < index_of(log, "rechazo", archivo=C2240)
    assert index_of(log, "publicacion", corte="20210607_2000") < index_of(log, "duplicado", archivo=C2000)
    assert sum(e["evento"] == "publicacion" for e in log) == 2


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_or_foreign_package_is_refused_with_one_line(
    kind: str, site: tuple[str, str, Bucket], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target, endpoint, bucket = site
    name, make, phrase = HOSTILE[kind]
    sandbox = tmp_path / "tmp"
    sandbox.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(sandbox))
    staging = tmp_path / "staging"
    staging.mkdir()
    make(staging / name)
    inbox = tmp_path / "buzon"
    drop(inbox, staging / name)
    before = tree(tmp_path, ("buzon", "work"))
    Watcher(make_op(tmp_path, target, endpoint), inbox).run(once=True)
    reason = (inbox / "rechazados" / (name + ".error.txt")).read_text(encoding="utf-8")
    assert reason.count("\n") == 1 and phrase in reason, reason
    assert (inbox / "rechazados" / name).exists() and not (inbox / name).exists()
    assert tree(tmp_path, ("buzon", "work")) == before and list(sandbox.iterdir()) == []
    assert bucket.pointer() is None
    log = events(tmp_path / "work")
    assert [e["evento"] for e in log if e["evento"] not in ("llegada", "validacion")] == ["inicio", "rechazo", "fin"]


def test_sigkill_mid_publish_then_restart(site: tuple[str, str, Bucket], tmp_path: Path) -> None:
    target, endpoint, bucket = site
    inbox, work = tmp_path / "buzon", tmp_path / "work"
    config = tmp_path / "prepgen.toml"
    config.write_text(
        "[proceso]\nentidad = \"CAMP\"\nanio = 2021\nelecciones = [\"GOB\", \"DIP_LOC\"]\n"
        f"[publicar]\ndestino = \"{target}\"\nendpoint_url = \"{endpoint}\"\nhilos = 2\n"
        "[operacion]\nentrada = \"buzon\"\ntrabajo = \"work\"\nsondeo_segundos = 0.1\n",
        encoding="utf-8",
    )
    # The first corte goes out at full speed; the watcher that gets killed publishes on two threads.
    drop(inbox, CAMPECHE[1])
    result = run_cli("-q", "--config", str(config), "watch", "--once", "--threads", "16")
    assert result.exit_code == 0, result.output
    drop(inbox, CAMPECHE[2])

    problems: list[str] = []
    seen: set[str] = set()
    stop = threading.Event()

    def reader() -> None:
        # A reader polling main.json and following everything the corte's manifest names: never a 404.
        while not stop.is_set():
            pointer = bucket.pointer()
            if pointer is None:
                time.sleep(0.05)
                continue
            cid = pointer["corte_id"]
            raw = bucket.get(f"_prepgen/cortes/{cid}/manifest.json")
            if raw is None:
                problems.append(f"pointer names {cid} but its manifest is missing")
                return
            for path in json.loads(raw)["files"]:
                if stop.is_set():
                    break
                if bucket.get(path) is None:
                    problems.append(f"404 on {path} while {cid} is live")
            seen.add(cid)

    thread = threading.Thread(target=reader)
    thread.start()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-m", "prepgen.cli", "-q", "watch"], cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        journal_dir = work / "build" / ".prepgen"

        def mid_publish_of_2000() -> bool:
            for j in journal_dir.glob("publish-journal-*.jsonl"):
                lines = j.read_text().splitlines()
                if lines and json.loads(lines[0])["corte_id"] == "20210607_2000" and len(lines) > 60:
                    return True
            assert child.poll() is None, child.stderr.read().decode()  # type: ignore[union-attr]
            return False

        wait_for("the publish of corte 2000 to be under way", mid_publish_of_2000, timeout=180)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
        assert child.stderr is not None
        child.stderr.close()
    try:
        assert child.returncode == -signal.SIGKILL
        assert bucket.pointer()["corte_id"] == "20210607_1320"  # type: ignore[index]
        assert bucket.get("_prepgen/cortes/20210607_2000/manifest.json") is None
        assert (inbox / C2000).exists()  # not taken away until its corte is live
        time.sleep(0.5)  # let the reader follow the corte that stayed live
        result = run_cli("--config", str(config), "watch", "--once")
        assert result.exit_code == 0, result.output
    finally:
        stop.set()
        thread.join(timeout=120)
    assert problems == []
    assert "20210607_1320" in seen
    assert bucket.pointer()["corte_id"] == "20210607_2000"  # type: ignore[index]
    log = events(work)
    restart = index_of(log, "inicio", reinicio=True, pendiente="20210607_2000")
    resumed = index_of(log, "reanudacion", corte="20210607_2000")
    pub = index_of(log, "publicacion", corte="20210607_2000")
    assert restart < resumed < pub and log[pub]["reanudados"] > 0
    assert (inbox / "procesados" / C2000).exists() and not (inbox / C2000).exists()
    assert not list((work / "build" / ".prepgen").glob("publish-journal-*"))


def test_automatic_aviso_after_silence_and_cleared_by_next_corte(
    site: tuple[str, str, Bucket], tmp_path: Path
) -> None:
    target, endpoint, bucket = site
    inbox, work = tmp_path / "buzon", tmp_path / "work"
    op = make_op(tmp_path, target, endpoint, periodo_minutos=0.02, periodos_sin_corte=2)  # 2.4 s
    drop(inbox, CAMPECHE[0])
    with watching(op, inbox):
        wait_for("the automatic aviso", has(work, "aviso", accion="activado", origen="automatico"))
        wait_for("the aviso published", has(work, "publicacion", tipo="aviso"))
        pointer = bucket.pointer()
        assert pointer is not None and pointer["aviso"] == AVISO and pointer["corte_id"] == "20210606_2240"
        for page in ("index.html", "gob/index.html", "dip-loc/index.html"):
            assert AVISO in bucket.text(page), page
        # Only the pages above section level and main.json were re-uploaded: sections keep their bytes.
        log = events(work)
        aviso_pub = log[index_of(log, "publicacion", tipo="aviso")]
        first_pub = log[index_of(log, "publicacion", tipo="corte")]
        assert aviso_pub["objetos"] < first_pub["objetos"] / 3
        assert AVISO not in bucket.text("gob/seccion/0001/index.html")
        drop(inbox, CAMPECHE[1])
        wait_for("the next corte", has(work, "publicacion", corte="20210607_1320", tipo="corte"))
    pointer = bucket.pointer()
    assert pointer is not None and pointer["aviso"] is None and pointer["corte_id"] == "20210607_1320"
    assert AVISO not in bucket.text("index.html")
    log = events(work)
    cleared = index_of(log, "aviso", accion="retirado", origen="automatico")
    assert index_of(log, "aviso", accion="activado") < cleared < index_of(log, "publicacion", corte="20210607_1320")
    assert log[index_of(log, "aviso", accion="activado")]["silencio_segundos"] >= 2.4


# --------------------------------------------------------------------------------------------- CLI


def write_config(tmp_path: Path, target: str, endpoint: str | None) -> Path:
    path = tmp_path / "prepgen.toml"
    ep = f'endpoint_url = "{endpoint}"\n' if endpoint else ""
    path.write_text(
        '[proceso]\nentidad = "CAMP"\nanio = 2021\nelecciones = ["GOB", "DIP_LOC"]\n'
        f'[publicar]\ndestino = "{target}"\n{ep}'
        f'[operacion]\nentrada = "buzon"\ntrabajo = "trabajo"\nsondeo_segundos = 0.1\naviso_texto = "{AVISO}"\n'
        'final_texto = "Resultados finales del PREP"\n',
        encoding="utf-8",
    )
    return path


def test_cli_watch_once_aviso_final_bitacora_rollback(site: tuple[str, str, Bucket], tmp_path: Path) -> None:
    target, endpoint, bucket = site
    write_config(tmp_path, target, endpoint)  # ./prepgen.toml: tests run in tmp_path
    inbox, work = tmp_path / "buzon", tmp_path / "trabajo"
    drop(inbox, CAMPECHE[0])
    result = run_cli("watch", "--once")
    assert result.exit_code == 0, result.output
    assert bucket.pointer()["corte_id"] == "20210606_2240"  # type: ignore[index]

    texto = "Falla de red <script>alert(1)</script>"
    result = run_cli("aviso", texto)
    assert result.exit_code == 0, result.output
    assert bucket.pointer()["aviso"] == texto  # type: ignore[index]
    html = bucket.text("index.html")
    assert "&lt;script>alert(1)&lt;/script>" in html and "<script>alert" not in html  # text, not markup

    drop(inbox, CAMPECHE[1])
    result = run_cli("-q", "watch", "--once")
    assert result.exit_code == 0, result.output
    pointer = bucket.pointer()
    assert pointer is not None and pointer["corte_id"] == "20210607_1320" and pointer["aviso"] == texto
    assert "Falla de red" in bucket.text("gob/index.html")  # a manual aviso stays on later cortes

    result = run_cli("aviso", "--quitar")
    assert result.exit_code == 0, result.output
    assert bucket.pointer()["aviso"] is None  # type: ignore[index]
    assert "Falla de red" not in bucket.text("index.html")
    result = run_cli("aviso", "--quitar")
    assert result.exit_code == 0 and "nothing to remove" in result.output, result.output

    result = run_cli("final")
    assert result.exit_code == 0, result.output
    pointer = bucket.pointer()
    assert pointer is not None and pointer["final"] is True and pointer["corte_id"] == "20210607_1320"
    assert "Resultados finales del PREP" in bucket.text("index.html")

    result = run_cli("rollback", "20210606_2240")
    assert result.exit_code == 0, result.output
    assert bucket.pointer()["corte_id"] == "20210606_2240"  # type: ignore[index]

    result = run_cli("bitacora")
    assert result.exit_code == 0, result.output
    rows = result.output.splitlines()
    kinds = [r.split()[1] for r in rows]
    for kind in ("inicio", "llegada", "validacion", "construccion", "publicacion", "aviso", "final", "rollback", "fin"):
        assert kind in kinds, kind
    assert kinds.index("aviso") < kinds.index("final") < kinds.index("rollback")
    result = run_cli("bitacora", "--json", "--work", str(work))
    assert result.exit_code == 0, result.output
    log = [json.loads(line) for line in result.output.splitlines()]
    assert [e["evento"] for e in log] == [e["evento"] for e in events(work)]
    assert log[index_of(log, "rollback")]["anterior"] == "20210607_1320"
    assert all(e["ts"][:4].isdigit() and "T" in e["ts"] for e in log)


def test_gzip_setting_reaches_the_watcher_aviso_and_rollback(site: tuple[str, str, Bucket], tmp_path: Path) -> None:
    """[publicar] gzip = true stores text objects gzip-encoded; --no-gzip overrides it for one run."""
    target, endpoint, bucket = site
    config = write_config(tmp_path, target, endpoint)
    config.write_text(config.read_text(encoding="utf-8").replace("[publicar]\n", "[publicar]\ngzip = true\n"),
                      encoding="utf-8")
    inbox, work = tmp_path / "buzon", tmp_path / "trabajo"

    def stored(key: str) -> tuple[str | None, bytes]:
        response = bucket.client.get_object(Bucket=bucket.bucket, Key=bucket.prefix + key)
        return response.get("ContentEncoding"), response["Body"].read()

    def chunk(page: str) -> str:
        # The section page's JSON link: a content-addressed chunk uploaded with the corte's data tree.
        return bucket.text(page).split('href=/json/', 1)[1].split(">", 1)[0].removesuffix('"')

    drop(inbox, CAMPECHE[0])
    result = run_cli("watch", "--once")
    assert result.exit_code == 0, result.output
    built = work / "build"
    for key in ("index.html", "gob/seccion/0001/index.html", "json/" + chunk("gob/seccion/0001/index.html")):
        encoding, body = stored(key)
        assert encoding == "gzip", key
        assert gzip.decompress(body) == (built / key).read_bytes(), key

    drop(inbox, CAMPECHE[1])
    result = run_cli("-q", "watch", "--once", "--no-gzip")
    assert result.exit_code == 0, result.output
    assert bucket.pointer()["corte_id"] == "20210607_1320"  # type: ignore[index]
    encoding, body = stored("index.html")
    assert encoding is None and body == (built / "index.html").read_bytes()

    result = run_cli("aviso", "Falla de red")  # the setting again: the re-rendered pages go gzip-encoded
    assert result.exit_code == 0, result.output
    encoding, body = stored("index.html")
    assert encoding == "gzip" and b"Falla de red" in gzip.decompress(body)

    result = run_cli("rollback", "20210606_2240")
    assert result.exit_code == 0, result.output
    encoding, body = stored("gob/index.html")  # restored from the corte's archive, gzip-encoded
    assert encoding == "gzip" and b"06/06/2021 22:40" in gzip.decompress(body)

    config.write_text(config.read_text(encoding="utf-8").replace("gzip = true", 'gzip = "yes"'), encoding="utf-8")
    result = run_cli("watch", "--once")
    assert result.exit_code == 1 and "[publicar] gzip must be true or false" in result.output, result.output

@pytest.mark.parametrize(
    "args, needs",
    [
        (["watch", "nowhere"], "inbox folder not found"),
        (["watch", "buzon", "--config-less"], None),  # replaced below: usage error
        (["aviso", "hola"], "nothing is published there yet"),
        (["aviso", "hola", "--to", "/elsewhere"], "not /elsewhere"),
        (["final"], "nothing is published there yet"),
        (["bitacora", "--work", "vacio"], "no bitácora"),
        (["rollback", "20210607_1320", "--work", "no-such-dir"], "no such work dir"),
    ],
    ids=["watch-no-inbox", "usage", "aviso-nothing-live", "aviso-other-target", "final-nothing-live",
         "bitacora-empty", "rollback-bad-work"],
)
def test_bad_input_is_one_error_line_exit_1(tmp_path: Path, args: list[str], needs: str | None) -> None:
    www = tmp_path / "www"
    write_config(tmp_path, str(www), None)
    (tmp_path / "buzon").mkdir()
    # A work dir that already publishes to www (so a different --to is refused).
    (tmp_path / "trabajo").mkdir()
    (tmp_path / "trabajo" / "estado.json").write_text(json.dumps({"destino": str(www)}))
    if needs is None:
        result = run_cli(*args)
        assert result.exit_code == 2, result.output
        return
    result = run_cli(*args)
    assert result.exit_code == 1, result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and needs in errors[0], result.output
    assert "Traceback" not in result.output


def test_watch_needs_the_process_pinned(tmp_path: Path) -> None:
    (tmp_path / "buzon").mkdir()
    result = run_cli("watch", "buzon", "--to", str(tmp_path / "www"))
    assert result.exit_code == 1, result.output
    assert "set [proceso] entidad and anio" in result.output


@pytest.mark.parametrize(
    "args",
    [["aviso", "--quitar", "texto"], ["aviso", "  "], ["watch", "--threads", "0"], ["bitacora", "--nope"],
     ["final", "extra"], ["rollback"]],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run_cli(*args)
    assert result.exit_code == 2, result.output


# --------------------------------------------------------------------------------------------- config


def test_shipped_config_loads_and_builds_the_shipped_data(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("-q", "--config", str(ROOT / "prepgen.toml"), "build", "-o", str(out))
    assert result.exit_code == 0, result.output
    pointer = json.loads((out / "json" / "main.json").read_text())
    assert pointer["corte_id"] == "20210607_2000"


@pytest.mark.parametrize("key", ["aviso_texto", "final_texto"])
def test_an_empty_banner_text_is_refused(tmp_path: Path, key: str) -> None:
    config = tmp_path / "prepgen.toml"
    config.write_text(f'[operacion]\n{key} = "  "\n', encoding="utf-8")
    result = run_cli("--config", str(config), "final")
    assert result.exit_code == 1, result.output
    assert f"[operacion] {key} is empty" in result.output and "remove the key" in result.output
    assert "Traceback" not in result.output


def test_every_config_key_is_documented() -> None:
    from prepgen.config import _SECTIONS

    doc = (ROOT / "docs" / "CONFIG.md").read_text(encoding="utf-8")
    shipped = (ROOT / "prepgen.toml").read_text(encoding="utf-8")
    for section, keys in _SECTIONS.items():
        assert f"[{section}]" in doc and f"[{section}]" in shipped, section
        for key in keys:
            assert f"`{key}`" in doc, f"[{section}] {key} is not documented in docs/CONFIG.md"
            assert key in shipped, f"[{section}] {key} is not shown in prepgen.toml"


def test_federal_process_takes_unscoped_packages_only(site: tuple[str, str, Bucket], tmp_path: Path) -> None:
    """INE names its packages without a scope; entidad = "NACIONAL" pins that, and a state package is refused."""
    target, endpoint, bucket = site
    [federal] = simulate(tmp_path / "sim", "nacional-mini", 1, 5)
    assert federal.name == "20240602_2000_PREP.zip"
    inbox = tmp_path / "buzon"
    drop(inbox, CAMPECHE[0])
    drop(inbox, federal)
    op = make_op(tmp_path, target, endpoint, entidad="NACIONAL", anio=2024, elecciones=("PRES", "SEN", "DIP_FED"))
    Watcher(op, inbox).run(once=True)
    assert bucket.pointer()["corte_id"] == "20240602_2000"
    reason = (inbox / "rechazados" / (CAMPECHE[0].name + ".error.txt")).read_text(encoding="utf-8")
    assert "es de CAMP, este sitio publica NACIONAL" in reason, reason


def test_build_leftovers_wait_until_the_corte_is_live(
    site: tuple[str, str, Bucket], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between package and pointer the watcher runs no full collection of the model (it stays frozen) and
    removes none of the files the new build replaced; both happen once the corte is live — and the heap is
    handed back too when a package is refused after being read."""
    import gc

    import prepgen.watch as watch_module

    target, endpoint, bucket = site
    inbox, work = tmp_path / "buzon", tmp_path / "work"
    seen: list[tuple[int, int]] = []  # (objects frozen, files on disk the build manifest does not list)
    real_publish = watch_module.publish

    def on_disk_not_in_manifest(manifest: dict[str, Any]) -> int:
        build = work / "build"
        listed = set(manifest["files"])
        return sum(
            1 for p in build.rglob("*") if p.is_file() and ".prepgen" not in p.parts
            and p.relative_to(build).as_posix() not in listed
        )

    early: list[dict[str, str] | None] = []

    def spying_publish(*args: Any, **kwargs: Any) -> Any:
        # The build's manifest as handed over: its file on disk is written while the pages upload.
        seen.append((gc.get_freeze_count(), on_disk_not_in_manifest(kwargs["manifest"])))
        early.append(kwargs.get("early"))
        return real_publish(*args, **kwargs)

    monkeypatch.setattr(watch_module, "publish", spying_publish)
    monkeypatch.setenv("PREPGEN_EARLY_UPLOADS", "1")
    gc.unfreeze()
    drop(inbox, CAMPECHE[1])
    drop(inbox, CAMPECHE[2])
    # The content says corte 22:40 of the day before, the name 20:05: read and modelled, then refused.
    drop(inbox, CAMPECHE[0], "20210607_2005_PREP_CAMP.zip")
    op = make_op(tmp_path, target, endpoint)
    with watching(op, inbox):
        wait_for("corte 2000 live and the misnamed package refused", lambda: has(work, "publicacion",
                 corte="20210607_2000")() and has(work, "rechazo")())
    assert bucket.pointer()["corte_id"] == "20210607_2000"  # type: ignore[index]
    # Campeche's model is tens of thousands of objects: frozen means out of every collection.
    assert len(seen) == 2 and all(frozen > 10_000 for frozen, _ in seen)
    # The first corte replaced nothing; the second replaced unit and candidate JSON, still on disk then.
    assert seen[0][1] == 0 and seen[1][1] > 0
    # Once live, the build folder is exactly its manifest file.
    assert on_disk_not_in_manifest(json.loads((work / "build" / ".prepgen" / "manifest.json").read_bytes())) == 0
    assert gc.get_freeze_count() == 0
    # The second corte's new JSON went up while it was built (the first had no live record to diff with).
    assert early[0] is None and early[1] and all(p.startswith("json/") for p in early[1])


def test_early_uploads_are_opt_in_and_need_the_live_record(
    site: tuple[str, str, Bucket], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prepgen.publish import EarlyUploads, LiveRecord
    from prepgen.watch import Engine

    target, endpoint, _ = site
    engine = Engine(make_op(tmp_path, target, endpoint))
    monkeypatch.delenv("PREPGEN_EARLY_UPLOADS", raising=False)
    engine.live = LiveRecord(engine.storage().description, "20210607_1320", "0" * 64, {})
    assert engine.early_uploads() is None  # off by default
    monkeypatch.setenv("PREPGEN_EARLY_UPLOADS", "1")
    engine.live = None
    assert engine.early_uploads() is None  # nothing known about the target yet
    engine.live = LiveRecord(engine.storage().description, "20210607_1320", "0" * 64, {})
    early = engine.early_uploads()
    assert isinstance(early, EarlyUploads)
    early.abort()
    engine.live = LiveRecord("s3://another-bucket/site", "20210607_1320", "0" * 64, {})
    assert engine.early_uploads() is None  # a record of another target says nothing about this one
    engine.live = LiveRecord(engine.storage().description, "20210607_1320", "0" * 64, {})
    monkeypatch.setenv("PREPGEN_EARLY_UPLOADS", "0")
    assert engine.early_uploads() is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's; elsewhere the watcher polls")
def test_a_package_renamed_in_is_taken_at_the_first_look_one_written_in_place_at_the_second(
    tmp_path: Path,
) -> None:
    from prepgen.watch import _InboxEvents

    inbox = tmp_path / "buzon"
    inbox.mkdir()
    watcher = Watcher(make_op(tmp_path, "s3://bucket/prep", None), inbox)
    watcher.events = _InboxEvents(inbox)
    try:
        assert watcher.events.active
        assert watcher._scan(final_pass=False) == []
        in_place = inbox / C1320
        in_place.write_bytes(CAMPECHE[1].read_bytes())  # written where it lands: it could still be growing
        watcher.events.wait(30)  # woken by its close, long before the poll period
        assert watcher._scan(final_pass=False) == []  # first look: not yet known to be stable
        drop(inbox, CAMPECHE[2])  # written aside, renamed in: whole
        watcher.events.wait(30)
        ready = [path.name for path, _ in watcher._scan(final_pass=False)]
        assert ready == [C1320, C2000]  # the renamed one at its first look, the other at its second
        # A name renamed in is trusted once: rewritten in place afterwards, it needs two looks again.
        (inbox / C2000).write_bytes(CAMPECHE[2].read_bytes() + b"\0")
        watcher.events.wait(30)
        assert [path.name for path, _ in watcher._scan(final_pass=False)] == [C1320]
    finally:
        watcher.events.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's; elsewhere the watcher polls")
def test_a_renamed_in_corte_goes_live_without_waiting_for_the_poll_and_stop_wakes_the_watcher(
    site: tuple[str, str, Bucket], tmp_path: Path
) -> None:
    """With a one-minute poll, only the inbox events can explain a corte live within seconds (polling would
    look at 60 s and again at 120 s), and only the wake pipe a stop well inside the minute."""
    target, endpoint, bucket = site
    inbox, work = tmp_path / "buzon", tmp_path / "work"
    inbox.mkdir()
    op = make_op(tmp_path, target, endpoint, sondeo_segundos=60.0)
    started = time.monotonic()
    with watching(op, inbox):
        wait_for("the watcher started", has(work, "inicio"))
        assert events(work)[0]["eventos"] is True
        drop(inbox, CAMPECHE[1])
        wait_for("corte 1320 live", has(work, "publicacion", corte="20210607_1320"), timeout=50)
        assert time.monotonic() - started < 60
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 30
    assert bucket.pointer()["corte_id"] == "20210607_1320"  # type: ignore[index]
