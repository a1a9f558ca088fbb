"""Make format variants of a real package (as other operators write them) for reader tests."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path


def rewrite_package(src: Path, dst: Path, edit: Callable[[str, bytes], bytes | None]) -> Path:
    """Copy a nested package, passing every innermost member through ``edit(name, data)``.

    ``edit`` returns new bytes, or None to drop the member.
    """
    with zipfile.ZipFile(src) as outer, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as out:
        for name in outer.namelist():
            data = outer.read(name)
            if name.endswith(".zip"):
                buf = io.BytesIO()
                with zipfile.ZipFile(io.BytesIO(data)) as inner, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as w:
                    for m in inner.namelist():
                        new = edit(m, inner.read(m))
                        if new is not None:
                            w.writestr(m, new)
                data = buf.getvalue()
                out.writestr(name, data)
            else:
                new = edit(name, data)
                if new is not None:
                    out.writestr(name, new)
    return dst


def only_csv(pattern: str, fn: Callable[[str], str]) -> Callable[[str, bytes], bytes | None]:
    def edit(name: str, data: bytes) -> bytes:
        if pattern in name and name.endswith(".csv"):
            return fn(data.decode("utf-8")).encode("utf-8")
        return data

    return edit
