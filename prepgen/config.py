"""prepgen.toml: one file for every setting; CLI options override a key only when given.

Every key is documented in ``docs/CONFIG.md``. Unknown keys are an error (a typo in a config file on
election night must not be silently ignored).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

CONFIG_NAME = "prepgen.toml"


@dataclass(frozen=True)
class Config:
    # [proceso] — which PREP this site republishes (the watcher refuses other packages)
    entidad: str | None = None  # e.g. "CAMP"; matched against the package name scope
    anio: int | None = None  # election year, matched against the corte date
    elecciones: tuple[str, ...] = ()  # e.g. ("GOB", "DIP_LOC"); empty = accept what the package has
    institucion: str = "el Instituto Electoral"  # shown in the source legend
    # [sitio]
    datos: str = "data"  # folder with the shipped packages (`prepgen build` with no argument)
    salida: str = "build"
    base_path: str = "/"  # URL prefix of every link, e.g. "/prep2023/"
    base_url: str = ""  # absolute site origin for feeds/embeds, e.g. "https://example.mx"
    tema: str | None = None  # a theme override folder; themes/zocalo is always the fallback
    titulo: str = "Resultados preliminares"
    zona_horaria: str = "America/Mexico_City"  # for "hora local" in the bitácora and avisos
    # [publicar]
    destino: str | None = None  # s3://bucket/prefix or /var/www/prep
    endpoint_url: str | None = None  # S3-compatible endpoint (SeaweedFS, MinIO, R2)
    hilos: int = 16  # concurrent uploads
    gzip: bool = False  # store html/json/css/js/svg gzip-encoded on S3 (a web root is always plain)
    # [operacion]
    periodo_minutos: float = 5.0  # institute's publication period
    periodos_sin_corte: int = 3  # silent periods before the automatic aviso
    aviso_texto: str = (
        "La publicación de resultados preliminares está temporalmente detenida. "
        "Los datos mostrados corresponden al último corte recibido."
    )
    final_texto: str = "Resultados preliminares finales: el PREP ha concluido."
    inicio: str | None = None  # operation window start, ISO-8601 (watcher ignores silence before it)
    fin: str | None = None  # operation window end
    entrada: str | None = None  # the inbox the institute uploads packages into (`prepgen watch`)
    trabajo: str = "trabajo"  # watcher work dir: state, bitácora, packages, persistent build
    sondeo_segundos: float = 0.5  # how often the watcher looks at the inbox (a scandir: cheap)
    incompleto_segundos: float = 60.0  # a stable file that is still not a readable zip is refused after this
    source_path: Path | None = field(default=None, compare=False)

    def override(self, **options: Any) -> Config:
        """Return a copy where every option that was given (not None) replaces the config value."""
        given = {k: v for k, v in options.items() if v is not None}
        unknown = set(given) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return replace(self, **given)

    @property
    def root(self) -> Path:
        """Folder relative paths in the config are resolved against."""
        return self.source_path.parent if self.source_path else Path.cwd()


_SECTIONS = {
    "proceso": ("entidad", "anio", "elecciones", "institucion"),
    "sitio": ("datos", "salida", "base_path", "base_url", "tema", "titulo", "zona_horaria"),
    "publicar": ("destino", "endpoint_url", "hilos", "gzip"),
    "operacion": (
        "periodo_minutos",
        "periodos_sin_corte",
        "aviso_texto",
        "final_texto",
        "inicio",
        "fin",
        "entrada",
        "trabajo",
        "sondeo_segundos",
        "incompleto_segundos",
    ),
}


def load_config(path: str | Path | None = None) -> Config:
    """Read ``prepgen.toml`` (given path, or ./prepgen.toml if present, else defaults)."""
    if path is None:
        candidate = Path.cwd() / CONFIG_NAME
        if not candidate.exists():
            return Config()
        path = candidate
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found; create it or drop --config") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file and retry") from None
    values: dict[str, Any] = {}
    for section, body in raw.items():
        allowed = _SECTIONS.get(section)
        if allowed is None or not isinstance(body, dict):
            raise ConfigError(
                f"{path}: unknown section [{section}]; expected one of {', '.join('[' + s + ']' for s in _SECTIONS)}"
            )
        for key, value in body.items():
            if key not in allowed:
                raise ConfigError(f"{path}: unknown key {key!r} in [{section}]; see docs/CONFIG.md")
            values[key] = value
    if "elecciones" in values:
        values["elecciones"] = tuple(str(e).upper() for e in values["elecciones"])
    if "base_path" in values:
        values["base_path"] = normalise_base_path(values["base_path"])
    if "gzip" in values and not isinstance(values["gzip"], bool):
        raise ConfigError(f"{path}: [publicar] gzip must be true or false, not {values['gzip']!r}")
    for key in ("aviso_texto", "final_texto"):
        if key in values and not str(values[key]).strip():
            # An empty banner is a blank box on every page at the moment readers most need the words.
            raise ConfigError(
                f"{path}: [operacion] {key} is empty, so the banner would show no text; write the text or "
                "remove the key to use the default"
            )
    try:
        return Config(source_path=path.resolve(), **values)
    except TypeError as exc:  # pragma: no cover - guarded by the key check above
        raise ConfigError(f"{path}: {exc}") from None


def normalise_base_path(value: str) -> str:
    """``prep2023`` / ``/prep2023`` / ``/prep2023/`` all mean ``/prep2023/``."""
    value = "/" + str(value).strip("/")
    return value if value == "/" else value + "/"
