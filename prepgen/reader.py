"""Reading PREP packages as the institutes publish them.

A package is a nested zip (outer zip per corte → inner zip per election → election CSV, candidaturas
CSV, LEEME), an inner election zip on its own, or either of those unpacked into folders. Everything is
found by content, never by line number or column position: operators move blank lines, rename columns
(``ID_ESTADO``/``ID_ENTIDAD``, ``SHA``/``CODIGO_INTEGRIDAD``, ``NO_REGISTRADOS``/``NO_REGISTRADAS``), guard
IDs with apostrophes and write special markers (``SIN DATO``, ``ILEGIBLE``…) in vote cells.

Archives are untrusted input: member names, sizes, ratios, counts and nesting are capped before any byte
is decompressed into memory (see :class:`Limits`).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import functools
import hashlib
import io
import re
import stat
import threading
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from itertools import compress, count, repeat
from operator import is_, itemgetter, ne
from pathlib import Path, PurePosixPath

from isal import isal_zlib

from .errors import PackageError

SUMMARY_FIELDS = (
    "ACTAS_ESPERADAS",
    "ACTAS_REGISTRADAS",
    "ACTAS_FUERA_CATALOGO",
    "ACTAS_CAPTURADAS",
    "PORCENTAJE_ACTAS_CAPTURADAS",
    "ACTAS_CONTABILIZADAS",
    "PORCENTAJE_ACTAS_CONTABILIZADAS",
    "PORCENTAJE_ACTAS_INCONSISTENCIAS",
    "ACTAS_NO_CONTABILIZADAS",
    "LISTA_NOMINAL_ACTAS_CONTABILIZADAS",
    "TOTAL_VOTOS_C_CS",
    "TOTAL_VOTOS_S_CS",
    "PORCENTAJE_PARTICIPACION_CIUDADANA",
)

# Old or operator-specific column names → the name the rest of prepgen uses.
COLUMN_ALIASES = {
    "ID_ESTADO": "ID_ENTIDAD",
    "ESTADO": "ENTIDAD",
    "SHA": "CODIGO_INTEGRIDAD",
    "SHA256": "CODIGO_INTEGRIDAD",
    "MD5": "CODIGO_INTEGRIDAD",
    "NO_REGISTRADAS": "NO_REGISTRADOS",
    "CANDIDATOS_NO_REGISTRADOS": "NO_REGISTRADOS",
    "VOTOS_NULOS": "NULOS",
}

# Columns that come before the vote columns in every layout seen; the vote block starts after the last
# of these that the file has and ends at NO_REGISTRADOS (or NULOS).
PRE_VOTE_COLUMNS = (
    "TIPO_ACTA",
    "TOTAL_BOLETAS_SOBRANTES",
    "TOTAL_PERSONAS_VOTARON",
    "TOTAL_REP_PARTIDO_CI_VOTARON",
    "TOTAL_VOTOS_SACADOS",
)
REQUIRED_COLUMNS = ("CLAVE_CASILLA", "SECCION", "TIPO_CASILLA", "NULOS", "LISTA_NOMINAL", "CONTABILIZADA")

# Markers that mean "no number here" (never zero). Compared after upper-casing and dropping accents.
NO_NUMBER = {"", "-", "SIN DATO", "ILEGIBLE", "SIN ACTA", "N/A", "NA", "SIN REGISTRO", "NULL", "S/D"}

ELECTION_NAMES = {
    "GUB": "Gubernatura",
    "GOB": "Gubernatura",
    "DIP_LOC": "Diputaciones locales",
    "AYUN": "Ayuntamientos",
    "JUNTAS": "Juntas municipales",
    "PRES": "Presidencia de la República",
    "SEN": "Senadurías",
    "DIP_FED": "Diputaciones federales",
}

GEO_TIPOS = {
    "MUNICIPIO": "municipio",
    "DISTRITO_LOCAL": "distrito",
    "DISTRITO_FEDERAL": "distrito",
    "DISTRITO": "distrito",
    "JUNTA": "junta",
    "DEMARCACION": "demarcacion",
    "ALCALDIA": "alcaldia",
}

CORTE_RE = re.compile(
    r"^(?P<fecha>\d{1,2}/\d{1,2}/\d{4}|\d{4}-\d{2}-\d{2})[ T](?P<hora>\d{1,2}:\d{2})(?::\d{2})?"
    r"\s*(?:\(\s*UTC\s*(?P<off>[+-]\s*\d{1,2}(?::?\d{2})?)?\s*\))?\s*$",
    re.IGNORECASE,
)
PACKAGE_NAME_RE = re.compile(r"^(?P<fecha>\d{8})_(?P<hora>\d{4})_PREP(?:_(?P<resto>.+))?$", re.IGNORECASE)


@dataclass(frozen=True)
class Limits:
    """Caps applied to every archive before decompressing it (zip bombs, zip slip, absurd packages)."""

    max_members: int = 200
    max_depth: int = 2  # outer zip → inner zip; a zip inside an inner zip is refused
    max_total_bytes: int = 2 * 1024**3
    max_member_bytes: int = 1024**3
    max_ratio: int = 400  # uncompressed/compressed per member; real CSVs stay below ~60


@dataclass(frozen=True)
class Corte:
    texto: str  # exactly as published: "07/06/2021 20:00 (UTC-5)"
    fecha: datetime  # aware when the package gives an offset

    @functools.cached_property
    def iso(self) -> str:  # cached, as id: asked for on every section of a cold build
        return self.fecha.isoformat()

    @functools.cached_property
    def id(self) -> str:  # cached: asked for on every page, and strftime is not free
        """Sortable id, e.g. ``20210607_2000``."""
        return self.fecha.strftime("%Y%m%d_%H%M")


@dataclass(slots=True)
class Acta:
    line: int
    clave_casilla: str
    clave_acta: str
    entidad: str
    unidad_id: str
    unidad_nombre: str
    seccion: str
    id_casilla: str
    tipo_casilla: str
    ext_contigua: str
    tipo_acta: str
    votos: tuple[int | None, ...]  # aligned with ElectionData.vote_columns
    marcas: dict[str, str]  # column -> original marker, for cells that are not numbers
    no_registrados: int | None
    nulos: int | None
    total_asentado: int | None
    total_calculado: int | None
    lista_nominal: int | None
    contabilizada: str  # "1", "0", "2", "" or "-" as published
    observaciones: str
    sha: str
    acopio: str
    captura: str
    verificacion: str
    fuera_catalogo: bool

    @property
    def contada(self) -> bool:
        return self.contabilizada == "1"

    @property
    def capturada(self) -> bool:
        return self.contabilizada in ("0", "1") and not self.fuera_catalogo


@dataclass
class Candidatura:
    line: int
    unidad: str | None  # geographic id (as an int string, no zero padding) or None for state-wide
    codigo: str  # PARTIDO_CI, e.g. "SUM-PAN-PRI-PRD", "MOR", "CI1", "CNR"
    nombre: str
    suplente: str = ""
    # ID_ESTADO as an int string (like unidad), None when the file has no entity column: in a federal
    # election district numbers repeat in every state, so (entidad, unidad) is what names a district.
    entidad: str | None = None


@dataclass
class ElectionData:
    codigo: str  # GOB, DIP_LOC, ...
    nombre: str  # display name
    nombre_publicado: str  # first line of the CSV
    corte: Corte
    resumen: dict[str, int | Decimal | None]
    resumen_texto: dict[str, str]
    columns: list[str]
    geo_columna: str  # e.g. ID_DISTRITO_LOCAL
    geo_tipo: str  # distrito / municipio
    vote_columns: list[str]  # party, independent and combination columns, in file order
    actas: list[Acta]
    candidaturas: list[Candidatura]
    archivo: str
    archivo_candidaturas: str | None
    multi_entidad: bool = False


@dataclass
class Package:
    nombre: str
    sha256: str
    corte: Corte
    alcance: str | None  # scope from the package name, e.g. "CAMP"
    elecciones: list[ElectionData] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# Archive access


class _File:
    """One CSV of a package: ``name`` for messages (outer.zip:inner.zip:member.csv), ``data`` its bytes,
    inflated on first use unless ``prefetch`` already set that going in a thread."""

    __slots__ = ("name", "_data", "_load", "_future")

    def __init__(self, name: str, data: bytes | None = None, load: Callable[[], bytes] | None = None) -> None:
        self.name = name
        self._data = data
        self._load = load
        self._future: Future[bytes] | None = None

    def prefetch(self, pool: ThreadPoolExecutor) -> None:
        if self._data is None and self._future is None and self._load is not None:
            self._future = pool.submit(self._load)

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = self._future.result() if self._future is not None else self._load()  # type: ignore[misc]
            self._load = self._future = None
        return self._data


# Members are inflated in threads (see read_package), all of them charged to one package's budget.
_BUDGET_LOCK = threading.Lock()


def _check_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, limits: Limits) -> None:
    name = info.filename
    pure = PurePosixPath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in pure.parts:
        raise PackageError(
            f"{where}: member {name!r} escapes the archive (absolute path or '..'); refusing the package"
        )
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise PackageError(f"{where}: member {name!r} is a symbolic link; packages must contain plain files")
    if info.file_size > limits.max_member_bytes:
        raise PackageError(
            f"{where}: member {name!r} declares {info.file_size} bytes, over the {limits.max_member_bytes}-byte cap"
        )
    if info.compress_size and info.file_size / info.compress_size > limits.max_ratio:
        raise PackageError(
            f"{where}: member {name!r} expands {info.file_size // max(info.compress_size, 1)}:1 "
            f"(cap {limits.max_ratio}:1): looks like a zip bomb; refusing the package"
        )


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str, budget: list[int], limits: Limits) -> bytes:
    # Declared sizes can lie: count what actually comes out and stop at the cap. Chunks are joined once at
    # the end (a growing BytesIO re-copied the ~140 MB of a national package's CSVs as it grew).
    chunks: list[bytes] = []
    size = 0
    try:
        for chunk in _member_chunks(zf, info):
            chunks.append(chunk)
            size += len(chunk)
            with _BUDGET_LOCK:
                over = size > limits.max_member_bytes or len(chunk) > budget[0]
                if not over:
                    budget[0] -= len(chunk)
            if over:
                raise PackageError(
                    f"{where}: member {info.filename!r} decompresses past the size cap; refusing the package"
                )
            if info.compress_size and size > limits.max_ratio * info.compress_size + (1 << 20):
                raise PackageError(
                    f"{where}: member {info.filename!r} expands beyond {limits.max_ratio}:1: "
                    "looks like a zip bomb; refusing the package"
                )
    except (zipfile.BadZipFile, zlib_error(), isal_zlib.error, EOFError, OSError) as exc:
        raise PackageError(
            f"{where}: member {info.filename!r} is damaged ({exc}); the upload may be incomplete — wait or ask "
            "the institute to resend"
        ) from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _member_chunks(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """A member's bytes, in chunks of at most 1 MiB however much a chunk of its compressed bytes expands.

    Deflated members (every CSV the institutes publish) are inflated with ISA-L (isal) at about twice
    zlib's speed: a national corte's three 46 MiB CSVs take 0.08 CPU-s each instead of 0.16, on the path
    between a package landing and its corte going live. zipfile still opens the member (local header,
    name, flags) and hands over its compressed bytes as if they were stored; the CRC-32 is checked here.
    """
    if info.compress_type != zipfile.ZIP_DEFLATED or info.flag_bits & 0x1:  # stored, other methods, encrypted
        with zf.open(info) as fh:
            while chunk := fh.read(1 << 20):
                yield chunk
        return
    raw = copy.copy(info)
    raw.compress_type, raw.file_size, raw.CRC = zipfile.ZIP_STORED, info.compress_size, None
    inflate = isal_zlib.decompressobj(-15)
    crc = 0
    with zf.open(raw) as fh:
        data = b""
        while not inflate.eof:
            if not data:
                data = fh.read(1 << 18)
                if not data:
                    raise EOFError("the compressed data ends before its end-of-stream marker")
            chunk = inflate.decompress(data, 1 << 20)
            data = inflate.unconsumed_tail
            if chunk:
                crc = isal_zlib.crc32(chunk, crc)
                yield chunk
    if crc != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")


def zlib_error() -> type[Exception]:
    import zlib

    return zlib.error


def _open_zip(data: bytes | Path, where: str) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(data if isinstance(data, Path) else io.BytesIO(data))
    except zipfile.BadZipFile:
        raise PackageError(
            f"{where}: not a readable zip (truncated or not a zip file); wait until the upload completes or "
            "ask the institute to resend it"
        ) from None
    except OSError as exc:
        raise PackageError(f"{where}: cannot open ({exc.strerror or exc})") from None


def _walk_zip(
    zf: zipfile.ZipFile, where: str, depth: int, budget: list[int], limits: Limits
) -> Iterator[_File]:
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise PackageError(f"{where}: {len(infos)} members, over the cap of {limits.max_members}; refusing the package")
    for info in infos:
        _check_member(zf, info, where, limits)
    for info in infos:
        if info.is_dir():
            continue
        name = info.filename
        base = PurePosixPath(name).name
        if base.startswith(".") or name.startswith("__MACOSX/"):
            continue
        low = base.lower()
        if not low.endswith((".zip", ".csv")):
            continue  # LEEME.txt and friends are documentation
        if low.endswith(".zip"):
            if depth + 1 >= limits.max_depth:
                raise PackageError(
                    f"{where}:{name}: zip nested deeper than {limits.max_depth} levels; refusing the package"
                )
            data = _read_member(zf, info, f"{where}:{name}", budget, limits)
            # In memory, so nothing to close: its CSVs are inflated later (see _File), perhaps in threads.
            inner = _open_zip(data, f"{where}:{name}")
            yield from _walk_zip(inner, f"{where}:{name}", depth + 1, budget, limits)
        else:
            yield _File(
                f"{where}:{name}", load=functools.partial(_read_member, zf, info, f"{where}:{name}", budget, limits)
            )


def _walk_dir(path: Path, budget: list[int], limits: Limits) -> Iterator[_File]:
    for p in sorted(path.rglob("*")):
        if p.is_symlink():
            raise PackageError(f"{p}: symbolic links are not accepted inside a package folder")
        if not p.is_file() or p.name.startswith("."):
            continue
        low = p.name.lower()
        if low.endswith(".zip"):
            with _open_zip(p, str(p)) as zf:
                yield from _walk_zip(zf, str(p), 1, budget, limits)
        elif low.endswith(".csv"):
            size = p.stat().st_size
            if size > min(limits.max_member_bytes, budget[0]):
                raise PackageError(f"{p}: {size} bytes, over the size cap")
            budget[0] -= size
            yield _File(str(p), data=p.read_bytes())


# --------------------------------------------------------------------------------------------------
# Text decoding and CSV


def decode_text(data: bytes, where: str) -> str:
    """UTF-8 (with or without BOM), else Latin-1/cp1252 when it is plausibly Spanish text."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:4096]:
        raise PackageError(
            f"{where}: looks like UTF-16 or binary data; export the CSV as UTF-8 (or Latin-1) text and retry"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        utf8_error = exc
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        text = None
    if text is not None and not re.search(r"[\x80-\x9f]", text):
        return text
    raise PackageError(
        f"{where}: byte {utf8_error.start} is neither UTF-8 nor Latin-1 text; "
        "re-export the file as UTF-8 and retry"
    )


def _clean(value: str) -> str:
    value = value.strip()
    # Operators guard IDs against spreadsheets with a leading apostrophe ('050001B0100, '97.1604).
    return value[1:].strip() if value.startswith("'") else value


@functools.lru_cache(maxsize=4096)
def _fold(text: str) -> str:
    # Cached: called on every observaciones cell and every marker, and those repeat a handful of values.
    text = unicodedata.normalize("NFKD", text)
    return "".join(c for c in text if not unicodedata.combining(c)).upper().strip()


def _canonical(col: str) -> str:
    col = _clean(col).upper().replace(" ", "_")
    return COLUMN_ALIASES.get(col, col)


def _delimiter(header_line: str) -> str:
    return "|" if header_line.count("|") > header_line.count(",") else ","


def parse_int(raw: str, where: str, column: str) -> tuple[int | None, str | None]:
    """(number, marker): a number, or None plus the original marker when the cell holds none."""
    value = _clean(raw)
    # isdecimal, not isdigit: "²" is a digit that int() refuses (a traceback instead of this function's error).
    if value.isdecimal():
        return int(value), None
    if _fold(value) in NO_NUMBER:
        return None, value
    raise PackageError(
        f"{where}: column {column} holds {value!r}, which is neither a whole number nor a known marker "
        f"({', '.join(sorted(m for m in NO_NUMBER if m))}); fix the cell or report it to the institute"
    )


def _parse_decimal(raw: str, where: str, column: str) -> Decimal | None:
    value = _clean(raw)
    if _fold(value) in NO_NUMBER:
        return None
    try:
        return Decimal(value.replace("%", ""))
    except InvalidOperation:
        raise PackageError(f"{where}: summary field {column} holds {value!r}, expected a number") from None


def parse_corte(text: str) -> Corte | None:
    m = CORTE_RE.match(text.strip())
    if not m:
        return None
    fecha = m["fecha"]
    if "/" in fecha:
        d, mth, y = (int(x) for x in fecha.split("/"))
    else:
        y, mth, d = (int(x) for x in fecha.split("-"))
    hh, mm = (int(x) for x in m["hora"].split(":"))
    tz = None
    if m["off"]:
        off = m["off"].replace(" ", "")
        sign = -1 if off.startswith("-") else 1
        off = off[1:]
        if ":" in off:
            oh, om = off.split(":")
        elif len(off) > 2:
            oh, om = off[:-2], off[-2:]
        else:
            oh, om = off, "0"
        tz = timezone(sign * timedelta(hours=int(oh), minutes=int(om)))
    try:
        dt = datetime(y, mth, d, hh, mm, tzinfo=tz)
    except ValueError:
        return None
    return Corte(texto=text.strip(), fecha=dt)


def election_code(csv_name: str) -> str:
    """``CAMP_DIP_LOC_2021.csv`` → ``DIP_LOC``; ``PRES_2024.csv`` → ``PRES``."""
    stem = PurePosixPath(csv_name).stem.upper()
    tokens = [t for t in stem.split("_") if t]
    if tokens and re.fullmatch(r"\d{4}", tokens[-1]):
        tokens = tokens[:-1]
    joined = "_".join(tokens)
    for code in sorted(ELECTION_NAMES, key=len, reverse=True):
        if joined == code or joined.endswith("_" + code):
            return code
    if len(tokens) > 1:
        tokens = tokens[1:]  # leading scope token (entity abbreviation)
    return "_".join(tokens) or stem


class RowMemo:
    """Acta rows of the previous corte, for a process that builds corte after corte.

    Between cortes only newly captured actas change, and an identical line under the same header parses to
    the same Acta: the watcher keeps one of these so a corte parses only its new lines (Actas are never
    mutated after reading, so sharing them between cortes is safe). Only the newest corte's lines are kept.
    """

    def __init__(self) -> None:
        self.files: dict[tuple[str, str, str], _Rows] = {}
        self._seen: set[tuple[str, str, str]] = set()
        self.parsed = 0  # lines parsed in the last package (the rest came from here)
        self.aligned = 0  # files of the last package compared line by line with the previous corte's

    def begin(self) -> None:
        self._seen = set()
        self.parsed = 0
        self.aligned = 0

    def end(self) -> None:
        for layout in set(self.files) - self._seen:
            del self.files[layout]


@dataclass
class _Rows:
    """One file's acta lines as last read: ``actas[i]`` is what ``lines[i]`` (line ``first + i``) gave."""

    first: int
    lines: list[str]
    actas: list[Acta | None]


def _records(lines: list[str], first: int, delim: str) -> Iterator[tuple[int, list[str]]]:
    """CSV records of ``lines`` (split, without terminators) with the line number each one starts on.

    A quoted field may span lines (valid CSV): the break is given back to the csv module, so the field
    keeps it ("PRIMERA LINEA\nSEGUNDA LINEA", not "PRIMERA LINEASEGUNDA LINEA"), and the records after
    it keep their real line numbers for error messages.
    """
    reader = csv.reader((line + "\n" for line in lines), delimiter=delim)
    start = first
    for row in reader:
        yield start, row
        start = first + reader.line_num


def _parse_rows(
    lines: list[str],
    first: int,
    parse: Callable[[list[str], int], Acta | None],
    delim: str,
    memo: RowMemo | None,
    layout: tuple[str, str, str],
) -> list[Acta]:
    if memo is not None:
        actas = _parse_rows_memo(lines, first, parse, delim, memo, layout)
        if actas is not None:
            return actas
    actas = []
    for n, row in _records(lines, first, delim):
        a = parse(row, n)
        if a is not None:
            actas.append(a)
    return actas


def _parse_rows_memo(
    lines: list[str],
    first: int,
    parse: Callable[[list[str], int], Acta | None],
    delim: str,
    memo: RowMemo,
    layout: tuple[str, str, str],
) -> list[Acta] | None:
    prev = memo.files.get(layout)
    changed: list[int] | None = None
    if prev is not None and prev.first == first and len(prev.lines) <= len(lines):
        # The norm between cortes: the same rows in the same order, some of them newly captured, perhaps a
        # few appended (fuera de catálogo actas arrive that way). Comparing line i with last corte's line i
        # (in C; map stops at the shorter list) finds them without hashing every line.
        changed = list(compress(count(), map(ne, lines, prev.lines)))
        changed += range(len(prev.lines), len(lines))
        if 4 * len(changed) <= len(lines):
            by_line = prev.actas + [None] * (len(lines) - len(prev.lines))
            memo.aligned += 1
        else:
            changed = None  # rows shifted (one inserted near the top?): most lines would be parsed again
    if changed is None:
        # Rows inserted, removed or moved: match them by content (an Acta keeps its line number in it).
        old = dict(zip(prev.lines, prev.actas, strict=True)) if prev is not None else {}
        by_line = [old.get(line) for line in lines]
        changed = [i for i, a in enumerate(by_line) if a is None]
        for i, a in enumerate(by_line):
            if a is not None and a.line != first + i:
                by_line[i] = dataclasses.replace(a, line=first + i)
    for i in changed:
        line = lines[i]
        if line.count('"') % 2:
            return None  # a quoted field spans lines: only the whole-file reader parses it right
        by_line[i] = parse(next(csv.reader([line], delimiter=delim), []), first + i)
    memo.files[layout] = _Rows(first, lines, by_line)
    memo._seen.add(layout)
    memo.parsed += len(changed)
    # Blank lines give no acta; without any, the list itself is the actas (never mutated: copied above).
    blank = any(map(is_, by_line, repeat(None)))  # `None in by_line` would call Acta.__eq__ on every row
    return [a for a in by_line if a is not None] if blank else by_line


def _multi_entidad(actas: list[Acta]) -> bool:
    """Whether the catalogued actas belong to more than one entity ("05" and "5" are one).

    Stops at the second entity: a national file is sorted by entity, so this reads a few thousand of its
    ~170,000 rows (a set of all of them was ~0.1 s of every national corte, before anything else)."""
    first_raw = first = None
    for a in actas:
        raw = a.entidad
        if raw == first_raw or not raw or a.fuera_catalogo:
            continue
        key = raw.lstrip("0") or "0"
        if first is None:
            first_raw, first = raw, key
        elif key != first:
            return True
    return False


def _read_election_csv(f: _File, cand: _File | None, memo: RowMemo | None = None) -> ElectionData:
    text = decode_text(f.data, f.name)
    lines = text.splitlines()
    # Locate the blocks by content.
    summary_at = acta_at = None
    for i, line in enumerate(lines):
        head = _canonical(line.split(",", 1)[0].split("|", 1)[0])
        if summary_at is None and head == "ACTAS_ESPERADAS":
            summary_at = i
        elif head == "CLAVE_CASILLA":
            acta_at = i
            break
    if acta_at is None:
        raise PackageError(
            f"{f.name}: no acta header line (a line starting with CLAVE_CASILLA) found; "
            "this is not a PREP election CSV in a known layout"
        )
    if summary_at is None or summary_at > acta_at:
        raise PackageError(
            f"{f.name}: no summary header (ACTAS_ESPERADAS,...) before the acta header at line {acta_at + 1}; "
            "expected the official header block"
        )
    preamble = [(i, ln.strip()) for i, ln in enumerate(lines[:summary_at]) if ln.strip().strip(",")]
    corte = None
    nombre_pub = ""
    for _i, ln in preamble:
        cleaned = ln.strip().strip(",").strip('"')
        c = parse_corte(cleaned)
        if c:
            corte = c
        elif not nombre_pub:
            nombre_pub = cleaned
    if corte is None:
        raise PackageError(
            f"{f.name}: no corte line (e.g. '05/06/2023 13:15 (UTC-6)') in the header block above line "
            f"{summary_at + 1}; the package cannot be stamped — ask the institute for a complete file"
        )
    # Summary
    delim = _delimiter(lines[summary_at])
    sum_header = [_canonical(c) for c in next(csv.reader([lines[summary_at]], delimiter=delim))]
    value_line = next(
        (j for j in range(summary_at + 1, acta_at) if lines[j].strip().strip(",")),
        None,
    )
    if value_line is None:
        raise PackageError(f"{f.name}: line {summary_at + 2}: summary values missing below the summary header")
    sum_values = next(csv.reader([lines[value_line]], delimiter=delim))
    if len(sum_values) < len(sum_header):
        raise PackageError(
            f"{f.name}: line {value_line + 1}: summary has {len(sum_values)} values for {len(sum_header)} fields"
        )
    resumen: dict[str, int | Decimal | None] = {}
    resumen_texto: dict[str, str] = {}
    where = f"{f.name}: line {value_line + 1}"
    for name, raw in zip(sum_header, sum_values, strict=False):
        resumen_texto[name] = _clean(raw)
        if name.startswith("PORCENTAJE"):
            resumen[name] = _parse_decimal(raw, where, name)
        else:
            resumen[name] = parse_int(raw, where, name)[0]
    missing = [s for s in SUMMARY_FIELDS if s not in resumen]
    if missing:
        raise PackageError(f"{f.name}: line {summary_at + 1}: summary header lacks {', '.join(missing)}")

    # Acta header
    delim = _delimiter(lines[acta_at])
    raw_cols = next(csv.reader([lines[acta_at]], delimiter=delim))
    while raw_cols and not raw_cols[-1].strip():
        raw_cols.pop()
    cols = [_canonical(c) for c in raw_cols]
    idx = {c: i for i, c in enumerate(cols)}
    if len(idx) != len(cols):
        dup = sorted({c for c in cols if cols.count(c) > 1})
        raise PackageError(f"{f.name}: line {acta_at + 1}: duplicated column(s) {', '.join(dup)}")
    missing = [c for c in REQUIRED_COLUMNS if c not in idx]
    geo_col = next(
        (
            c
            for c in cols
            if c.startswith("ID_")
            and c not in ("ID_ENTIDAD", "ID_CASILLA")
            and c[3:] in idx
        ),
        None,
    )
    if geo_col is None:
        missing.append("a geographic key such as ID_MUNICIPIO,MUNICIPIO or ID_DISTRITO_LOCAL,DISTRITO_LOCAL")
    if missing:
        raise PackageError(
            f"{f.name}: line {acta_at + 1}: unknown layout, missing column(s) {', '.join(missing)}"
        )
    assert geo_col is not None
    geo_name_col = geo_col[3:]
    geo_tipo = GEO_TIPOS.get(geo_name_col, geo_name_col.lower().replace("_", "-"))
    start = max(idx[c] for c in PRE_VOTE_COLUMNS if c in idx) + 1 if any(
        c in idx for c in PRE_VOTE_COLUMNS
    ) else idx["TIPO_CASILLA"] + 1
    end = idx.get("NO_REGISTRADOS", idx["NULOS"])
    vote_columns = cols[start:end]
    if not vote_columns:
        raise PackageError(f"{f.name}: line {acta_at + 1}: no vote columns between {cols[start - 1]} and {cols[end]}")
    vote_idx = list(range(start, end))
    ncols = len(cols)

    def col(name: str) -> int | None:
        return idx.get(name)

    i_nr, i_nulos = col("NO_REGISTRADOS"), idx["NULOS"]
    i_tasent, i_tcalc = col("TOTAL_VOTOS_ASENTADO"), col("TOTAL_VOTOS_CALCULADO")
    i_ln, i_cont, i_obs, i_sha = idx["LISTA_NOMINAL"], idx["CONTABILIZADA"], col("OBSERVACIONES"), col(
        "CODIGO_INTEGRIDAD"
    )
    i_acopio, i_captura, i_verif = col("FECHA_HORA_ACOPIO"), col("FECHA_HORA_CAPTURA"), col("FECHA_HORA_VERIFICACION")
    i_clave, i_acta, i_ent = idx["CLAVE_CASILLA"], col("CLAVE_ACTA"), col("ID_ENTIDAD")
    i_gid, i_gname, i_sec = idx[geo_col], idx[geo_name_col], idx["SECCION"]
    i_idc, i_tipo, i_ext, i_tacta = col("ID_CASILLA"), idx["TIPO_CASILLA"], col("EXT_CONTIGUA"), col("TIPO_ACTA")

    # The vote cells of a row as one tuple, picked in C (itemgetter of one index returns the bare item).
    vote_cells: Callable[[list[str]], tuple[str, ...]] = (
        itemgetter(*vote_idx) if len(vote_idx) > 1 else lambda row: (row[vote_idx[0]],)
    )

    def parse(row: list[str], n: int) -> Acta | None:
        joined = "".join(row)  # one C call instead of a generator per row
        if not row or not joined.strip():
            return None
        if len(row) != ncols:
            if len(row) > ncols and not any(c.strip() for c in row[ncols:]):
                row = row[:ncols]  # ragged trailing delimiters (2017 layout)
            else:
                raise PackageError(
                    f"{f.name}: line {n}: {len(row)} fields where the header at line {acta_at + 1} has {ncols}; "
                    "the row is incomplete — ask the institute for a corrected file"
                )
        # Without an apostrophe anywhere in the row, _clean is a plain strip: ~17 cells a row, 8.9 million
        # calls a cold national read, and the error location below is only formatted for an error.
        cl = _clean if "'" in joined else str.strip
        clave = cl(row[i_clave])
        obs = cl(row[i_obs]) if i_obs is not None else ""
        cont = cl(row[i_cont])
        fuera = clave in ("", "-") or (obs != "" and _fold(obs) == "FUERA DE CATALOGO") or cont == "2"
        marcas: dict[str, str] = {}
        cells = vote_cells(row)
        votos: list[int | None]
        if all(cells) and "".join(cells).isdecimal():  # every vote a plain number: most rows, in C
            votos = list(map(int, cells))
        else:
            votos = []
            for j, raw in zip(vote_idx, cells, strict=True):
                if raw.isdecimal():
                    votos.append(int(raw))
                    continue
                if not raw:  # empty cell (uncaptured acta, or a coalition not on this ballot): no number, no marker
                    votos.append(None)
                    continue
                v, m = parse_int(raw, f"{f.name}: line {n}", cols[j])
                votos.append(v)
                if m:
                    marcas[cols[j]] = m
        nums: dict[str, int | None] = {}
        for name, j in (
            ("NO_REGISTRADOS", i_nr),
            ("NULOS", i_nulos),
            ("TOTAL_VOTOS_ASENTADO", i_tasent),
            ("TOTAL_VOTOS_CALCULADO", i_tcalc),
            ("LISTA_NOMINAL", i_ln),
        ):
            if j is None:
                nums[name] = None
                continue
            raw = row[j]
            if raw.isdecimal():
                nums[name] = int(raw)
                continue
            v, m = parse_int(raw, f"{f.name}: line {n}", name)
            nums[name] = v
            if m:
                marcas[name] = m
        if cont not in ("0", "1", "2", "", "-"):
            raise PackageError(
                f"{f.name}: line {n}: CONTABILIZADA holds {cont!r}; expected 1 (counted), 0 (not counted), 2, "
                "'-' or empty"
            )
        if cont == "1" and fuera:
            raise PackageError(
                f"{f.name}: line {n}: a fuera de catálogo acta is marked CONTABILIZADA=1; the row is inconsistent"
            )
        tcalc = nums["TOTAL_VOTOS_CALCULADO"]
        if tcalc is None and cont == "1" and i_tcalc is None:
            tcalc = nums["TOTAL_VOTOS_ASENTADO"]
        return Acta(
            line=n,
            clave_casilla=clave,
            clave_acta=cl(row[i_acta]) if i_acta is not None else "",
            entidad=cl(row[i_ent]) if i_ent is not None else "",
            unidad_id=cl(row[i_gid]),
            unidad_nombre=cl(row[i_gname]),
            seccion=cl(row[i_sec]),
            id_casilla=cl(row[i_idc]) if i_idc is not None else "",
            tipo_casilla=cl(row[i_tipo]).upper(),
            ext_contigua=cl(row[i_ext]) if i_ext is not None else "",
            tipo_acta=cl(row[i_tacta]) if i_tacta is not None else "",
            votos=tuple(votos),
            marcas=marcas,
            no_registrados=nums["NO_REGISTRADOS"],
            nulos=nums["NULOS"],
            total_asentado=nums["TOTAL_VOTOS_ASENTADO"],
            total_calculado=tcalc,
            lista_nominal=nums["LISTA_NOMINAL"],
            contabilizada=cont,
            observaciones=obs,
            sha=cl(row[i_sha]) if i_sha is not None else "",
            acopio=cl(row[i_acopio]) if i_acopio is not None else "",
            captura=cl(row[i_captura]) if i_captura is not None else "",
            verificacion=cl(row[i_verif]) if i_verif is not None else "",
            fuera_catalogo=fuera,
        )

    body = lines[acta_at + 1 :]
    layout = (PurePosixPath(f.name.split(":")[-1]).name, lines[acta_at], delim)
    actas = _parse_rows(body, acta_at + 2, parse, delim, memo, layout)
    codigo = election_code(PurePosixPath(f.name.split(":")[-1]).name)
    candidaturas = _read_candidaturas(cand) if cand else []
    return ElectionData(
        codigo=codigo,
        nombre=ELECTION_NAMES.get(codigo, nombre_pub.capitalize() or codigo),
        nombre_publicado=nombre_pub,
        corte=corte,
        resumen=resumen,
        resumen_texto=resumen_texto,
        columns=cols,
        geo_columna=geo_col,
        geo_tipo=geo_tipo,
        vote_columns=vote_columns,
        actas=actas,
        candidaturas=candidaturas,
        archivo=f.name,
        archivo_candidaturas=cand.name if cand else None,
        multi_entidad=_multi_entidad(actas),
    )


def _read_candidaturas(f: _File) -> list[Candidatura]:
    text = decode_text(f.data, f.name)
    lines = text.splitlines()
    head_at = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if head_at is None:
        raise PackageError(f"{f.name}: empty candidaturas file")
    delim = _delimiter(lines[head_at])
    header = [_canonical(c) for c in next(csv.reader([lines[head_at]], delimiter=delim))]
    idx = {c: i for i, c in enumerate(header)}
    code_col = next((c for c in ("PARTIDO_CI", "PARTIDO_COALICION", "PARTIDO", "ASOCIACION") if c in idx), None)
    name_col = next(
        (c for c in ("CANDIDATURA_PROPIETARIA", "CANDIDATURA", "NOMBRE_CANDIDATURA", "CANDIDATO") if c in idx), None
    )
    if code_col is None or name_col is None:
        raise PackageError(
            f"{f.name}: line {head_at + 1}: unknown candidaturas layout; expected PARTIDO_CI and "
            "CANDIDATURA_PROPIETARIA (or CANDIDATURA) columns"
        )
    unit_col = next((c for c in header if c.startswith("ID_") and c not in ("ID_ENTIDAD",)), None)
    sup_col = "CANDIDATURA_SUPLENTE" if "CANDIDATURA_SUPLENTE" in idx else None
    ent_col = "ID_ENTIDAD" if "ID_ENTIDAD" in idx else None
    out = []
    for n, row in _records(lines[head_at + 1 :], head_at + 2, delim):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) < len(header):
            row = row + [""] * (len(header) - len(row))
        code = _clean(row[idx[code_col]]).upper()
        if not code:
            raise PackageError(f"{f.name}: line {n}: empty {code_col}")
        unidad = None
        if unit_col:
            u = _clean(row[idx[unit_col]])
            unidad = u.lstrip("0") or "0" if u.isdigit() else u
        entidad = None
        if ent_col:
            e = _clean(row[idx[ent_col]])
            entidad = (e.lstrip("0") or "0" if e.isdigit() else e) or None
        out.append(
            Candidatura(
                line=n,
                unidad=unidad,
                codigo=code,
                nombre=" ".join(_clean(row[idx[name_col]]).split()),
                suplente=" ".join(_clean(row[idx[sup_col]]).split()) if sup_col else "",
                entidad=entidad,
            )
        )
    return out


# --------------------------------------------------------------------------------------------------
# Package entry point


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, streamed (packages can be large)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _site_order(code: str) -> tuple[int, str]:
    """Where an election goes on the site (and in ``Package.elecciones``): the known ones first, in order."""
    order = list(ELECTION_NAMES)
    return (order.index(code) if code in order else len(order), code)


def _read_elections(
    path: Path, files: list[_File], memo: RowMemo | None, on_election: Callable[[ElectionData], None] | None = None
) -> list[ElectionData]:
    """Each election CSV of the package with its candidaturas file, in site order (``on_election`` gets each
    as soon as it is read)."""
    csvs = [f for f in files if f.name.lower().endswith(".csv")]
    cand_files = [f for f in csvs if "CANDIDATURA" in PurePosixPath(f.name.split(":")[-1]).name.upper()]
    election_files = sorted(
        (f for f in csvs if f not in cand_files),
        key=lambda f: _site_order(election_code(PurePosixPath(f.name.split(":")[-1]).name)),
    )
    if not election_files:
        raise PackageError(
            f"{path}: no election CSV found (expected e.g. CAMP_GOB_2021.csv inside the package's inner zips)"
        )
    elections: list[ElectionData] = []
    if memo is not None:
        memo.begin()
    for f in election_files:
        code = election_code(PurePosixPath(f.name.split(":")[-1]).name)
        container = f.name.rsplit(":", 1)[0] if ":" in f.name else str(PurePosixPath(f.name).parent)
        cands = [
            c
            for c in cand_files
            if (c.name.rsplit(":", 1)[0] if ":" in c.name else str(PurePosixPath(c.name).parent)) == container
            and election_code(PurePosixPath(c.name.split(":")[-1]).name.upper().replace("_CANDIDATURAS", "").replace(
                "_CANDIDATURA", ""
            ))
            == code
        ]
        elections.append(_read_election_csv(f, cands[0] if cands else None, memo))
        if on_election is not None:
            on_election(elections[-1])
    if memo is not None:
        memo.end()
    return elections


def read_package(
    path: str | Path,
    limits: Limits | None = None,
    memo: RowMemo | None = None,
    on_election: Callable[[ElectionData], None] | None = None,
) -> Package:
    """Read and validate a whole package (outer zip, inner election zip, or folder).

    ``on_election(data)``: called with each election as soon as it is read, in site order, before the
    package as a whole is checked (a cold build starts rendering the first meanwhile). By the first call
    every member is inflated and checked and no thread of the reader is left (the callback may fork).
    """
    limits = limits or Limits()
    path = Path(path)
    if not path.exists():
        raise PackageError(f"{path}: no such file or folder; give the path of a PREP package (.zip or folder)")
    budget = [limits.max_total_bytes]
    hashed: Future[str] | None = None
    with contextlib.ExitStack() as stack:
        if path.is_dir():
            files = list(_walk_dir(path, budget, limits))
            digest = hashlib.sha256()
            for f in files:
                digest.update(f.name.encode() + b"\0" + hashlib.sha256(f.data).digest())
            sha = digest.hexdigest()
        else:
            zf = stack.enter_context(_open_zip(path, str(path)))
            files = list(_walk_zip(zf, str(path), 0, budget, limits))
            # zlib and hashlib let go of the GIL: the next elections' CSVs (~47 MB each nationally) inflate
            # on the other core while this thread parses the first, instead of all of them before any parsing.
            pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="prepgen-inflate")
            stack.callback(pool.shutdown, wait=True, cancel_futures=True)
            hashed = pool.submit(sha256_file, path)
            for f in files:
                f.prefetch(pool)
            if on_election is not None:
                given, inflated = on_election, False

                def ready(data: ElectionData) -> None:
                    nonlocal inflated, sha, hashed
                    if not inflated:
                        inflated = True
                        for f in files:
                            f.data  # noqa: B018 - a damaged member refuses the package before the callback runs
                        sha, hashed = hashed.result(), None  # type: ignore[union-attr]
                        pool.shutdown(wait=True)
                    given(data)

                on_election = ready
        elections = _read_elections(path, files, memo, on_election)
        for f in files:
            f.data  # noqa: B018 - every CSV is read through: a damaged one refuses the package, used or not
        if hashed is not None:
            sha = hashed.result()
    codes = [e.codigo for e in elections]
    dup = sorted({c for c in codes if codes.count(c) > 1})
    if dup:
        raise PackageError(f"{path}: election {', '.join(dup)} appears more than once in the package")
    cortes = {e.corte.fecha for e in elections}
    if len(cortes) > 1:
        detail = ", ".join(f"{e.codigo}: {e.corte.texto}" for e in elections)
        raise PackageError(f"{path}: elections carry different cortes ({detail}); a package must be one corte")
    m = PACKAGE_NAME_RE.match(path.name.split(".")[0])
    alcance = (m["resto"] or None) if m else None
    return Package(nombre=path.name, sha256=sha, corte=elections[0].corte, alcance=alcance, elecciones=elections)
