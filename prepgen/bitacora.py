"""The publication log (bitácora): append-only JSON lines in the work dir, one event per line.

It is the raw material of the institute's *memoria técnica* (incidents, timings), so it is only ever
appended to, each line is written with one ``write`` on an ``O_APPEND`` descriptor (a killed process leaves
at most one torn last line, which the reader skips) and flushed to disk before the call returns.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from .errors import ConfigError

LOG_NAME = "bitacora.jsonl"


def now_iso(tz: Any = None) -> str:
    """Wall-clock time, ISO-8601 with offset and milliseconds (the zone only changes how it reads)."""
    return datetime.now(tz or UTC).isoformat(timespec="milliseconds")


class Bitacora:
    def __init__(self, work: Path, tz: Any = None) -> None:
        self.path = Path(work) / LOG_NAME
        self.tz = tz

    def log(self, evento: str, **fields: Any) -> dict[str, Any]:
        entry = {"ts": now_iso(self.tz), "evento": evento, **{k: v for k, v in fields.items() if v is not None}}
        line = orjson.dumps(entry) + b"\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        return entry

    def entries(self) -> Iterator[dict[str, Any]]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        for line in raw.splitlines():
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # a line torn by a kill
            if isinstance(entry, dict):
                yield entry


# Which fields a table row shows after the event name, per event (the rest stays in --json).
_DETAIL: dict[str, tuple[str, ...]] = {
    "inicio": ("entrada", "destino", "reinicio", "pendiente"),
    "fin": ("motivo",),
    "llegada": ("archivo", "sha256", "bytes"),
    "validacion": ("archivo", "corte", "resultado", "discrepancias", "advertencias"),
    "construccion": ("corte", "segundos", "archivos", "escritos"),
    "publicacion": ("tipo", "corte", "segundos", "objetos", "bytes", "reanudados", "puntero", "latencia_segundos"),
    "reanudacion": ("corte", "archivo"),
    "duplicado": ("archivo", "sha256", "igual_a"),
    "rechazo": ("archivo", "motivo"),
    "error": ("archivo", "motivo"),
    "aviso": ("accion", "origen", "texto", "corte"),
    "final": ("accion", "corte"),
    "rollback": ("corte", "anterior", "paginas"),
}


def _cell(key: str, value: Any) -> str:
    if key == "sha256" and isinstance(value, str):
        return f"sha256={value[:12]}…"
    if key in ("discrepancias", "advertencias") and isinstance(value, list):
        return f"{key}={len(value)}"
    if isinstance(value, float):
        return f"{key}={value:.2f}"
    if isinstance(value, bool):
        return key if value else ""
    return f"{key}={value}"


def format_table(entries: list[dict[str, Any]]) -> str:
    """One line per event: time, event, the fields that matter for it."""
    lines = []
    for e in entries:
        fields = [k for k in _DETAIL.get(str(e.get("evento")), ()) if k in e]
        if not fields:
            fields = [k for k in e if k not in ("ts", "evento")]
        detail = "  ".join(c for c in (_cell(k, e[k]) for k in fields) if c)
        lines.append(f"{e.get('ts', '?'):<29}  {e.get('evento', '?'):<12}  {detail}".rstrip())
    return "\n".join(lines)


def read_log(work: Path) -> list[dict[str, Any]]:
    bit = Bitacora(work)
    if not bit.path.exists():
        raise ConfigError(
            f"{bit.path}: no bitácora in this work dir; pass --work with the watcher's work dir "
            "(or set [operacion] trabajo)"
        )
    return list(bit.entries())
