"""Hostile and wrong packages, generated on disk by the tests (a zip bomb is streamed, never in memory)."""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path

from paths import CAMPECHE
from variants import rewrite_package

NEWER = "20210607_2100_PREP_CAMP.zip"  # a corte after every real one, so only the contents can refuse it


def truncated(dst: Path) -> None:
    data = CAMPECHE[-1].read_bytes()
    dst.write_bytes(data[: len(data) // 2])


def not_a_zip(dst: Path) -> None:
    dst.write_text("ENTIDAD,VOTOS\nCAMPECHE,1\n", encoding="utf-8")


def zip_slip(dst: Path) -> None:
    with zipfile.ZipFile(dst, "w") as zf:
        zf.writestr("../../../escape.csv", "a,b\n1,2\n")


def absolute_path(dst: Path) -> None:
    with zipfile.ZipFile(dst, "w") as zf:
        zf.writestr(zipfile.ZipInfo("/tmp/escape.csv"), "a,b\n1,2\n")


def symlink(dst: Path) -> None:
    info = zipfile.ZipInfo("CAMP_GOB_2021.csv")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(dst, "w") as zf:
        zf.writestr(info, "/etc/passwd")


def zip_bomb(dst: Path, megabytes: int = 64) -> None:
    # Streamed member by member: the test never holds the uncompressed bytes (nor the zip) in memory.
    chunk = b"0" * (1 << 20)
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("CAMP_GOB_2021.csv", "w") as fh:
        for _ in range(megabytes):
            fh.write(chunk)


def too_many_members(dst: Path) -> None:
    with zipfile.ZipFile(dst, "w") as zf:
        for i in range(1000):
            zf.writestr(f"m{i:04d}.csv", "")


def nested(dst: Path) -> None:
    def zipped(name: str, data: bytes) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr(name, data)
        return buf.getvalue()

    level3 = zipped("CAMP_GOB_2021.csv", b"a,b\n1,2\n")
    level2 = zipped("mas.zip", level3)
    dst.write_bytes(zipped("GOB.zip", level2))


def utf16(dst: Path) -> None:
    rewrite_package(
        CAMPECHE[-1], dst, lambda name, data: data.decode("utf-8").encode("utf-16") if name.endswith(".csv") else data
    )


def wrong_elections(dst: Path) -> None:
    rewrite_package(CAMPECHE[-1], dst, lambda name, data: None if "DIP_LOC" in name else data)


# kind -> (file name, maker, phrase the one-line reason must contain)
HOSTILE: dict[str, tuple[str, Callable[[Path], None], str]] = {
    "truncated": (NEWER, truncated, "no es un zip legible"),
    "not-a-zip": (NEWER, not_a_zip, "no es un zip legible"),
    "zip-slip": (NEWER, zip_slip, "escapes the archive"),
    "absolute-path": (NEWER, absolute_path, "escapes the archive"),
    "symlink": (NEWER, symlink, "symbolic link"),
    "zip-bomb": (NEWER, zip_bomb, "zip bomb"),
    "member-count": (NEWER, too_many_members, "over the cap"),
    "nesting": (NEWER, nested, "nested deeper"),
    "utf-16": (NEWER, utf16, "UTF-16"),
    "other-entity": ("20210607_2100_PREP_PUE.zip", lambda d: d.write_bytes(CAMPECHE[-1].read_bytes()), "este sitio publica CAMP"),
    "other-year": ("20240607_2100_PREP_CAMP.zip", lambda d: d.write_bytes(CAMPECHE[-1].read_bytes()), "este sitio publica 2021"),
    "other-elections": (CAMPECHE[-1].name, wrong_elections, "este sitio publica GOB, DIP_LOC"),
    "name-vs-contents": (NEWER, lambda d: d.write_bytes(CAMPECHE[-1].read_bytes()), "el contenido es del corte 20210607_2000"),
    "not-a-package-name": ("resultados.zip", lambda d: d.write_bytes(CAMPECHE[-1].read_bytes()), "no es el de un paquete PREP"),
}
