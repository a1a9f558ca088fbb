"""Fixture factory: build dirs shaped like DESIGN.md's layout, made without the real pipeline.

Only for publish tests, until the lead's reader/model/render/build lands on main. It keeps the properties
publish relies on: content-addressed immutable JSON/static paths, stable page paths, a pointer naming the
corte, and section pages whose bytes only change when their figures do (they carry the corte they last
changed in, like the real incremental build).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from prepgen.headers import classify, content_type


def corte_fields(corte_id: str) -> dict[str, str]:
    """``20210607_2000`` → the manifest's corte / corte_texto (Campeche, UTC-5)."""
    d, hm = corte_id.split("_")
    return {
        "corte": f"{d[:4]}-{d[4:6]}-{d[6:]}T{hm[:2]}:{hm[2:]}:00-05:00",
        "corte_id": corte_id,
        "corte_texto": f"{d[6:]}/{d[4:6]}/{d[:4]} {hm[:2]}:{hm[2:]} (UTC-5)",
    }


def _dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


class FakeSite:
    """Successive cortes of one fake election (``gob``) with a handful of sections.

    ``build(corte_id, figures)`` writes ``root/<corte_id>/`` and returns that build dir; sections whose
    figure did not change keep their page bytes. ``bulk`` adds that many extra immutable JSON objects that
    change every corte (to make a publish long enough to interrupt), ``pages`` that many extra pages that
    change every corte (to interrupt a publish among its pages).
    """

    def __init__(self, root: Path, theme: str = "body{color:#222}") -> None:
        self.root = Path(root)
        self.theme = theme
        self._figures: dict[str, int] = {}
        self._stamps: dict[str, str] = {}
        self.manifests: dict[str, dict[str, Any]] = {}

    def build(
        self, corte_id: str, figures: dict[str, int], *, bulk: int = 0, pages: int = 0, theme: str | None = None
    ) -> Path:
        out = self.root / corte_id
        files: dict[str, bytes] = {}
        corte = corte_fields(corte_id)
        css = (theme or self.theme).encode()
        css_path = f"static/app.{hashlib.sha256(css).hexdigest()[:12]}.css"
        files[css_path] = css

        def immutable(value: Any) -> str:
            data = _dumps(value)
            path = f"json/gob/{hashlib.sha256(data).hexdigest()[:20]}.json"
            files[path] = data
            return path

        sections = []
        for sid, votes in sorted(figures.items()):
            if self._figures.get(sid) != votes:
                self._figures[sid] = votes
                self._stamps[sid] = corte_id
            stamp = self._stamps[sid]
            sections.append({"id": sid, "json": immutable({"id": sid, "corte": stamp, "votos": votes})})
            files[f"gob/seccion/{sid}/index.html"] = self._page(
                f"Sección {sid}: {votes} votos", stamp, css_path
            )
        for i in range(bulk):
            immutable({"bulk": i, "corte": corte_id})
        for i in range(pages):
            files[f"gob/extra/{i:04d}/index.html"] = self._page(f"Extra {i}", corte_id, css_path)
        election = immutable({"id": "gob", "corte": corte_id, "secciones": sections})
        pointer = {
            **corte,
            "elecciones": [{"id": "gob", "nombre": "Gubernatura", "json": "/" + election, "html": "/gob/"}],
            "aviso": None,
            "final": False,
        }
        files["json/main.json"] = _dumps(pointer)
        total = sum(figures.values())
        files["index.html"] = self._page(f"Inicio: {total} votos", corte_id, css_path)
        files["gob/index.html"] = self._page(f"Gubernatura: {total} votos", corte_id, css_path)

        manifest: dict[str, Any] = {
            "version": 1,
            **corte,
            "paquete": {"nombre": f"{corte_id}_PREP_CAMP.zip", "sha256": "0" * 64},
            "files": {},
        }
        for path, data in sorted(files.items()):
            target = out / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            manifest["files"][path] = {
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "type": content_type(path),
                "class": classify(path),
            }
        (out / ".prepgen").mkdir(parents=True, exist_ok=True)
        (out / ".prepgen" / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        self.manifests[corte_id] = manifest
        return out

    @staticmethod
    def _page(body: str, corte_id: str, css_path: str) -> bytes:
        return (
            f'<!doctype html><html lang="es"><link rel="stylesheet" href="/{css_path}">'
            f'<main data-corte="{corte_id}"><p>{body}</p><p>Corte {corte_id}</p></main></html>'
        ).encode()


def changed_paths(old: dict[str, Any] | None, new: dict[str, Any]) -> set[str]:
    """Paths of ``new`` whose sha256 differs from ``old`` (all of them when there is no old manifest)."""
    before = (old or {}).get("files", {})
    return {p for p, e in new["files"].items() if before.get(p, {}).get("sha256") != e["sha256"]}
