"""Shared pieces of the benchmarks: measured child processes, SeaweedFS, rclone, progress lines."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # tests/s3server.py: the same SeaweedFS the publish tests use

from s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server  # noqa: E402

# Runs one command and reports wall time, CPU and the peak RSS of the largest process in its tree (the
# wrapper is a fresh process, so RUSAGE_CHILDREN only covers that command and its forked workers).
_WRAPPER = """
import json, resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": rc.returncode, "seconds": wall, "cpu": ru.ru_utime + ru.ru_stime,
                  "peak_rss_mib": ru.ru_maxrss / 1024, "stderr": rc.stderr.decode()[-2000:]}))
"""


def measured(cmd: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *cmd], capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )
    result = json.loads(out.stdout)
    if result["rc"] != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result['stderr']}")
    return result


def need_rclone(alternative: str = "") -> None:
    """Stop at once, in one line, where rclone is missing (``.ci/run`` installs it; a new machine has
    none): a national bench otherwise found out ~10 minutes in, at its naive step."""
    if shutil.which("rclone") is None:
        raise SystemExit(f"rclone not found: this bench runs `rclone sync`; install Debian's (apt-get install "
                         f"rclone){alternative}")


def prepgen(*args: str) -> list[str]:
    return [sys.executable, "-m", "prepgen.cli", "-q", *args]


def manifest(build_dir: Path) -> dict[str, Any]:
    return json.loads((build_dir / ".prepgen" / "manifest.json").read_bytes())


def pages(build_dir: Path) -> int:
    return sum(1 for p in manifest(build_dir)["files"] if p.endswith(".html"))


class Progress:
    """Stage lines on a terminal; silent with --quiet or when CI is set or stderr is not a TTY."""

    def __init__(self, quiet: bool, force: bool = False) -> None:
        self.on = force or (not quiet and not os.environ.get("CI") and sys.stderr.isatty())
        self.t0 = time.monotonic()

    def __call__(self, text: str) -> None:
        if self.on:
            print(f"[{time.monotonic() - self.t0:7.1f} s] {text}", file=sys.stderr, flush=True)


class Storage:
    """A loopback SeaweedFS with the test keys in the environment (for prepgen publish and rclone)."""

    def __init__(self, root: Path) -> None:
        self.server = S3Server(root)

    def __enter__(self) -> Storage:
        os.environ.update(
            AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_DEFAULT_REGION=REGION,
            AWS_EC2_METADATA_DISABLED="true",
        )
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    @property
    def endpoint(self) -> str:
        return self.server.endpoint_url

    def bucket(self) -> str:
        name = f"bench-{uuid.uuid4().hex[:10]}"
        self.server.client().create_bucket(Bucket=name)
        return name

    def publish(self, build_dir: Path, bucket: str) -> dict[str, Any]:
        """prepgen's publish (in this process: its result has the exact counts)."""
        from prepgen.publish import publish

        t = time.perf_counter()
        r = publish(build_dir, f"s3://{bucket}/site", endpoint_url=self.endpoint)
        return {
            "seconds": time.perf_counter() - t,
            "objects": r.uploaded + r.record_objects,
            "bytes": r.uploaded_bytes,
            "skipped": r.skipped,
        }

    def rclone_env(self) -> dict[str, str]:
        """Environment for rclone with a remote ``bench:`` on this server."""
        # AWS_CA_BUNDLE makes rclone's S3 backend replace its HTTP transport, which it then refuses
        # ("LoadCustomCABundleError"); the endpoint is plain-HTTP loopback, no CA is involved.
        return {
            **{k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"},
            "RCLONE_CONFIG_BENCH_TYPE": "s3",
            "RCLONE_CONFIG_BENCH_PROVIDER": "Other",
            "RCLONE_CONFIG_BENCH_ENDPOINT": self.endpoint,
            "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": ACCESS_KEY,
            "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": SECRET_KEY,
            "RCLONE_CONFIG_BENCH_REGION": REGION,
        }

    def rclone_sync(self, build_dir: Path, bucket: str, transfers: int = 16) -> dict[str, Any]:
        """The naive upload: `rclone sync --checksum` of the whole build dir (Debian's rclone)."""
        env = self.rclone_env()
        cmd = ["rclone", "sync", "--checksum", "--transfers", str(transfers), "--checkers", str(transfers),
               "--exclude", ".prepgen/**", "--use-json-log", "-v",
               str(build_dir), f"bench:{bucket}/site"]
        t = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - t
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
        # Objects rclone copied: its -v log has one "Copied (new)" / "Copied (replaced existing)" per object;
        # bytes are those objects' sizes on disk.
        objects = nbytes = 0
        for line in out.stderr.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and str(rec.get("msg", "")).startswith("Copied"):
                objects += 1
                obj = rec.get("object")
                if isinstance(obj, str) and (build_dir / obj).is_file():
                    nbytes += (build_dir / obj).stat().st_size
        return {"seconds": seconds, "objects": objects, "bytes": nbytes}


def cpu_seconds(pid: int, children: bool = False) -> float:
    """CPU seconds of a process so far (user + system); ``children``: with the reaped children's too."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11 : 15 if children else 13]) / os.sysconf("SC_CLK_TCK")


def _disk_counters(folder: Path) -> tuple[int, int, int] | None:
    """(I/Os in flight, sectors written, sectors discarded) of the block device holding ``folder``."""
    dev = os.stat(folder).st_dev
    wanted = (os.major(dev), os.minor(dev))
    try:
        lines = Path("/proc/diskstats").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        f = line.split()
        if (int(f[0]), int(f[1])) == wanted:
            discarded = int(f[16]) if len(f) > 16 else 0  # kernels before 4.18 have no discard fields
            return int(f[11]), int(f[9]), discarded
    return None  # a device /proc/diskstats does not list (overlay, tmpfs): nothing to wait for


# ext4 without a journal (this box's root) does not reuse an inode freed in the last ~30 s (35 when its
# block is dirty): recently_deleted() in find_inode_bit.
RECENTLY_DELETED_S = 35.0


def settle_disk(folder: Path, limit: float = 600.0) -> float:
    """Sync, then wait until the disk holding ``folder`` is idle (nothing in flight, under 1 MiB written and
    nothing discarded in a second) and RECENTLY_DELETED_S have passed; seconds waited.

    What a cold build costs in the kernel follows the disk's state: right after GBs were written (the
    simulacros) or deleted (online discard: this box mounts ext4 with ``discard``) the same build took
    72 s / 122 CPU-s instead of 45 s / 69 CPU-s. Both cold builds the bench times (the cold row and the
    naive pipeline's rebuild) start from a settled disk, as a build on election night does. A disk idle again
    right after a big delete is not settled yet: for ~30 s more every new file's inode is found by scanning
    past the ones just freed (run AG's cold build started seconds after a 216,000-file delete: 69.9 s)."""
    t = time.perf_counter()
    os.sync()
    before = _disk_counters(folder)
    while before is not None and time.perf_counter() - t < limit:
        time.sleep(1.0)
        now = _disk_counters(folder)
        assert now is not None
        idle = now[0] == 0 and now[1] - before[1] < 2048 and now[2] == before[2]
        if idle and time.perf_counter() - t >= RECENTLY_DELETED_S:
            break
        before = now
    return time.perf_counter() - t


def human(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n}"


class Watcher:
    """`prepgen watch` on a fresh inbox, publishing to a SeaweedFS bucket, for the whole bench run."""

    def __init__(
        self, root: Path, storage: Storage, bucket: str, package: Path, poll: float = 0.2, gzip: bool = False
    ) -> None:
        self.root, self.storage, self.bucket, self.gzip = root, storage, bucket, gzip
        self.inbox, self.work = root / "inbox", root / "trabajo"
        self.inbox.mkdir(parents=True)
        self.config = root / "prepgen.toml"
        # The watcher takes only its pinned process (a federal one has no scope in its package names); a short
        # poll for a file written in place (two equal looks); one renamed in, as deliver() does, is taken as it
        # lands where inotify works (Linux).
        parts = package.name.split(".")[0].split("_")
        entidad = parts[3] if len(parts) > 3 else "NACIONAL"
        self.config.write_text(
            f'[proceso]\nentidad = "{entidad}"\nanio = {parts[0][:4]}\n\n[operacion]\nsondeo_segundos = {poll}\n'
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.client = storage.server.client()

    def __enter__(self) -> Watcher:
        cmd = [sys.executable, "-m", "prepgen.cli", "-q", "--config", str(self.config), "watch", str(self.inbox),
               "--to", f"s3://{self.bucket}/site", "--endpoint-url", self.storage.endpoint, "--work", str(self.work),
               *(["--gzip"] if self.gzip else [])]
        self.log = open(self.root / "watch.log", "wb")  # noqa: SIM115 - closed in __exit__
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()

    def live(self) -> str | None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key="site/json/main.json")["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        return json.loads(body).get("corte_id")

    def settle(self, limit: float = 120.0) -> float:
        """Wait until the watcher and SeaweedFS are idle (under 5 % of a core for a second); seconds waited.

        On election night the next package comes ~5 minutes after a corte goes live, long after the
        watcher's after-live work (collecting the previous model, removing replaced files) and the storage's
        own flushing are done; a package dropped the instant the pointer flips would be timed with them.
        The same goes for the kernel writing back what they wrote (dirty pages older than 30 s are written
        out anyway): a baseline leaves GBs dirty (216,000 build files, the storage's volumes), whose
        writeback — block allocation for each small file included — would otherwise share the timed corte's
        two cores. Hence the sync first."""
        assert self.proc is not None and self.storage.server.proc is not None
        pids = [self.proc.pid, self.storage.server.proc.pid]
        os.sync()

        def cpu() -> float:
            return sum(cpu_seconds(pid) for pid in pids)

        t = time.perf_counter()
        before = cpu()
        while time.perf_counter() - t < limit:
            time.sleep(1.0)
            now = cpu()
            if now - before < 0.05:
                break
            before = now
        return time.perf_counter() - t

    def deliver(self, package: Path, timeout: float = 3600, pause: float = 0.0) -> dict[str, Any]:
        """Drop ``package`` into the inbox the way an upload finishes (rename), once the watcher is idle
        (see settle) and at least ``pause`` seconds have passed since it was asked to; wait for the pointer
        to name it.

        ``pause``: election night's cadence (a package every ~300 s). On a VM that hands the memory its guest
        frees back to the host (this one: Firecracker, free page reporting), a corte that comes after minutes of
        idling costs more than one dropped the moment the previous one settled (docs/PERFORMANCE.md, run AG)."""
        corte = "_".join(package.name.split("_")[:2])
        waited = self.settle()
        if pause > waited:
            time.sleep(pause - waited)
        tmp = self.inbox / f".{package.name}.part"
        shutil.copyfile(package, tmp)
        cpu0 = self._cpu_split()
        t = time.perf_counter()
        os.replace(tmp, self.inbox / package.name)
        while self.live() != corte:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"the watcher stopped: {(self.root / 'watch.log').read_text()[-2000:]}")
            if time.perf_counter() - t > timeout:
                raise RuntimeError(f"{package.name} not live after {timeout} s")
            time.sleep(0.05)
        seconds = time.perf_counter() - t
        cpu = {k: round(b - a, 1) for (k, a), b in zip(cpu0.items(), self._cpu_split().values(), strict=True)}
        cpu["otros"] = round(cpu.pop("maquina") - cpu["prepgen"] - cpu["almacen"], 1)
        entry = self._bitacora(corte)
        return {"seconds": seconds, "build_seconds": entry.get("construccion_segundos"),
                "build_stages": self._bitacora(corte, "construccion").get("etapas"),
                "publish_seconds": entry["segundos"], "objects": entry["objetos"], "bytes": entry["bytes"],
                "latencia_bitacora": entry.get("latencia_segundos"), "espera_inactivo": round(waited, 1),
                "pausa": pause, "cpu_s": cpu}

    def _cpu_split(self) -> dict[str, float]:
        """CPU seconds so far of the watcher (with its render workers, reaped when each build's pool closes),
        of SeaweedFS, and of the whole machine. On two cores the split says where a corte's time went and
        whether other work shared the box (``otros`` in deliver's result), which wall seconds cannot."""
        assert self.proc is not None and self.storage.server.proc is not None
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ticks = [int(x) for x in first]
        busy = (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # user..steal minus idle, iowait
        return {"prepgen": cpu_seconds(self.proc.pid, children=True),
                "almacen": cpu_seconds(self.storage.server.proc.pid, children=True), "maquina": busy}

    def _bitacora(self, corte: str, evento: str = "publicacion") -> dict[str, Any]:
        for _ in range(100):  # the pointer flips just before the watcher logs it
            for line in reversed((self.work / "bitacora.jsonl").read_text().splitlines()):
                rec = json.loads(line)
                if rec.get("evento") == evento and rec.get("corte") == corte:
                    return rec
            time.sleep(0.05)
        raise RuntimeError(f"no {evento} of {corte} in the bitácora")

    def peak_rss_mib(self) -> float:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")
