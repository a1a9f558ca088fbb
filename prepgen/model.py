"""The election model: who the contenders are, and every figure at every level.

Rules (docs/DECISIONS in the shared docs, and the PREP format page):

* Only actas with ``CONTABILIZADA == 1`` add to results. Markers (``ILEGIBLE``…) count as no votes in
  sums and stay visible at acta level.
* Every vote column belongs to exactly one contender. A coalition ``SUM-A-B-C`` receives the columns of
  A, B, C and every combination column made only of its parties. Candidaturas codes are matched to
  columns exactly, then through an alias table, then by unique prefix (``MOR`` ~ ``MORENA``,
  ``CI1`` ~ ``CAND_IND_1``). A combination column that no contender covers and that holds votes fails the
  build: votes are never dropped silently.
* Named contenders win over unnamed ones; among unnamed ones the widest coalition wins.
* The state level shows the published summary line; rows are recounted and every disagreement is
  reported in ``discrepancias``. Candidate percentages divide by the recounted total of the same rows,
  truncated (never rounded) to 4 decimals.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal
from itertools import compress, count
from operator import is_not
from typing import Any

from .errors import BuildError
from .reader import Acta, Candidatura, ElectionData, Package

PSEUDO_ROWS = {"CNR", "NULOS", "NO_REGISTRADOS", "NO REGISTRADOS", "VOTOS NULOS", "CANDIDATURAS NO REGISTRADAS"}
PARTY_ALIASES = {
    "MOR": ("MORENA",),
    "MORENA": ("MOR",),
    "PV": ("PVEM",),
    "PVEM": ("PV",),
    "NAL": ("NA", "NUAL"),
    "NA": ("NAL", "NUAL"),
}
PSEUDO_UNITS = {
    "M": ("extranjero", "Voto desde el extranjero"),
    "A": ("anticipado", "Voto anticipado"),
    "P": ("prision-preventiva", "Voto en prisión preventiva"),
}


def pct(part: int | None, whole: int | None) -> Decimal | None:
    """part/whole × 100 truncated to 4 decimals (integer arithmetic, no floats). None for 0/None."""
    if part is None or not whole:
        return None
    return Decimal(part * 1_000_000 // whole).scaleb(-4)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@dataclass
class Contendiente:
    clave: str  # URL code
    codigo: str  # as in the candidaturas file (or the party column)
    nombre: str  # display name (candidate, or the party/coalition label when the name is empty)
    partidos: tuple[str, ...]  # vote-column party names it receives
    columnas: tuple[int, ...]  # indices into ElectionData.vote_columns
    unidad: str | None = None  # unit id for per-unit candidacies (distrito), None for state-wide
    candidato: str = ""  # the published name, possibly empty


_SUMMED = (
    "no_registrados",
    "nulos",
    "total_calculado",
    "total_calculado_sin_especiales",
    "lista_nominal",
    "lista_nominal_sin_especiales",
    "esperadas",
    "capturadas",
    "contabilizadas",
)


@dataclass
class Cifras:
    """Recounted figures of one unit (section, district/municipio, state)."""

    ncols: int
    columnas: list[int] = field(default_factory=list)
    no_registrados: int = 0
    nulos: int = 0
    total_calculado: int = 0
    total_calculado_sin_especiales: int = 0
    lista_nominal: int = 0
    lista_nominal_sin_especiales: int = 0
    esperadas: int = 0
    capturadas: int = 0
    contabilizadas: int = 0

    def __post_init__(self) -> None:
        if not self.columnas:
            self.columnas = [0] * self.ncols

    def add_acta(self, a: Acta) -> None:
        if a.fuera_catalogo:
            return
        self.esperadas += 1
        if a.capturada:
            self.capturadas += 1
        if not a.contada:
            return
        self.contabilizadas += 1
        cols = self.columnas
        for i, v in enumerate(a.votos):
            if v:
                cols[i] += v
        self.no_registrados += a.no_registrados or 0
        self.nulos += a.nulos or 0
        t = a.total_calculado or 0
        ln = a.lista_nominal or 0
        self.total_calculado += t
        self.lista_nominal += ln
        if a.tipo_casilla != "S":
            self.total_calculado_sin_especiales += t
            self.lista_nominal_sin_especiales += ln

    def add(self, other: Cifras, sign: int = 1) -> None:
        cols = self.columnas
        for i, v in enumerate(other.columnas):
            cols[i] += sign * v
        for name in _SUMMED:
            setattr(self, name, getattr(self, name) + sign * getattr(other, name))

    def copy(self) -> Cifras:
        c = Cifras(self.ncols, list(self.columnas))
        for name in _SUMMED:
            setattr(c, name, getattr(self, name))
        return c

    @property
    def total_votos(self) -> int:
        """Recounted total of the same rows the candidate votes come from (so parts add to 100 %)."""
        return sum(self.columnas) + self.no_registrados + self.nulos


@dataclass
class Seccion:
    id: str
    unidad_id: str
    cifras: Cifras
    actas: list[Acta] = field(default_factory=list)


@dataclass
class Unidad:
    tipo: str
    id: str
    nombre: str
    cifras: Cifras
    contendientes: list[Contendiente]
    secciones: dict[str, Seccion] = field(default_factory=dict)
    pseudo: bool = False


@dataclass
class Resultado:
    """A contender's votes in one unit."""

    contendiente: Contendiente
    votos: int
    porcentaje: Decimal | None


@dataclass
class Eleccion:
    codigo: str
    slug: str
    nombre: str
    data: ElectionData
    cifras: Cifras
    unidades: dict[str, Unidad]
    contendientes: list[Contendiente]  # every contender of the election (per unit ones included)
    por_unidad: bool  # candidacies per unit (Diputaciones) rather than state-wide
    participacion_formula: str
    discrepancias: list[dict] = field(default_factory=list)
    advertencias: list[str] = field(default_factory=list)
    # Derived from the previous corte's model (see _derive): unit id -> (that unit's sections, the ids of
    # those that changed), for the units whose sections changed; the other units share their sections dict
    # with the previous model. None when modelled afresh. Where a model came from, not what it is: not compared.
    cambios: dict[str, tuple[dict[str, Seccion], tuple[str, ...]]] | None = field(default=None, compare=False, repr=False)

    # --- figures ---------------------------------------------------------------------------------
    def resultados(self, cifras: Cifras, contendientes: list[Contendiente]) -> list[Resultado]:
        total = cifras.total_votos
        out = []
        for c in contendientes:
            v = sum(cifras.columnas[i] for i in c.columnas)
            out.append(Resultado(c, v, pct(v, total)))
        out.sort(key=lambda r: (-r.votos, r.contendiente.nombre))
        return out

    def resultados_estatales(self) -> list[Resultado]:
        """State-wide: per contender for state-wide candidacies; per party/coalition code otherwise."""
        if not self.por_unidad:
            return self.resultados(self.cifras, self.contendientes)
        groups: dict[str, Contendiente] = {}
        for c in self.contendientes:
            g = groups.get(c.codigo)
            label = label_for(c.codigo)
            if g is None:
                groups[c.codigo] = Contendiente(
                    clave=slug(c.codigo), codigo=c.codigo, nombre=label, partidos=c.partidos, columnas=()
                )
        total = self.cifras.total_votos
        votes: dict[str, int] = dict.fromkeys(groups, 0)
        for u in self.unidades.values():
            for c in u.contendientes:
                votes[c.codigo] += sum(u.cifras.columnas[i] for i in c.columnas)
        out = [Resultado(groups[k], v, pct(v, total)) for k, v in votes.items()]
        out.sort(key=lambda r: (-r.votos, r.contendiente.nombre))
        return out

    def participacion(self, cifras: Cifras) -> Decimal | None:
        if self.participacion_formula == "sin_casillas_especiales":
            return pct(cifras.total_calculado_sin_especiales, cifras.lista_nominal_sin_especiales)
        return pct(cifras.total_calculado, cifras.lista_nominal)


def label_for(codigo: str) -> str:
    code = codigo.upper()
    if code.startswith("SUM-"):
        code = code[4:]
    return code.replace("_", " ")


# --------------------------------------------------------------------------------------------------
# Contenders


def _norm_unit(uid: str) -> str:
    return uid.lstrip("0") or "0" if uid.isdigit() else uid


def _resolve_party(token: str, parties: list[str]) -> str | None:
    token = token.upper().strip()
    if token in parties:
        return token
    for alias in PARTY_ALIASES.get(token, ()):
        if alias in parties:
            return alias
    m = re.fullmatch(r"(?:CI|IND|CAND_IND|CANDIDATURA_INDEPENDIENTE)_?(\d+)", token)
    if m:
        for p in parties:
            pm = re.fullmatch(r"(?:CI|IND|CAND_IND|CANDIDATURA_INDEPENDIENTE)_?(\d+)", p)
            if pm and int(pm[1]) == int(m[1]):
                return p
    prefixed = [p for p in parties if p.startswith(token) or token.startswith(p)]
    if len(prefixed) == 1:
        return prefixed[0]
    return None


def column_parties(column: str, parties: list[str]) -> tuple[str, ...] | None:
    """Parties of a vote column: itself, or the members of a ``C_A_B`` combination column."""
    if column in parties:
        return (column,)
    if not column.startswith("C_"):
        return None
    rest = column[2:]
    out: list[str] = []
    ordered = sorted(parties, key=len, reverse=True)
    while rest:
        hit = next((p for p in ordered if rest == p or rest.startswith(p + "_")), None)
        if hit is None:
            token = rest.split("_", 1)[0]
            hit_alias = _resolve_party(token, parties)
            if hit_alias is None:
                return None
            out.append(hit_alias)
            rest = rest[len(token) + 1 :]
            continue
        out.append(hit)
        rest = rest[len(hit) + 1 :]
    return tuple(out)


def _contenders_from_rows(
    rows: list[Candidatura], parties: list[str], unit: str | None, data: ElectionData, warn: list[str]
) -> list[Contendiente]:
    candidates = []
    for r in rows:
        if r.codigo in PSEUDO_ROWS or _fold_pseudo(r.nombre):
            continue
        tokens = r.codigo[4:].split("-") if r.codigo.startswith("SUM-") else [r.codigo]
        resolved = []
        for t in tokens:
            p = _resolve_party(t, parties)
            if p is None:
                warn.append(
                    f"{data.archivo_candidaturas}: line {r.line}: party {t!r} of {r.codigo} has no vote column "
                    f"in {data.archivo.rsplit(':', 1)[-1]}; ignored (add it to the alias table if it should match)"
                )
                continue
            resolved.append(p)
        if not resolved:
            continue
        candidates.append((r, tuple(dict.fromkeys(resolved))))
    # Named first, then the widest coalition, then file order.
    candidates.sort(key=lambda rp: (not rp[0].nombre, -len(rp[1]), rp[0].line))
    covered: set[str] = set()
    chosen: list[Contendiente] = []
    for r, ps in candidates:
        if covered & set(ps):
            continue
        covered |= set(ps)
        base = slug(r.codigo)
        chosen.append(
            Contendiente(
                clave=f"{slug(unit)}-{base}" if unit is not None else base,
                codigo=r.codigo,
                nombre=r.nombre or label_for(r.codigo),
                partidos=ps,
                columnas=(),
                unidad=unit,
                candidato=r.nombre,
            )
        )
    return chosen


def _fold_pseudo(name: str) -> bool:
    return name.strip().upper() in {"CANDIDATURAS NO REGISTRADAS", "VOTOS NULOS"}


def _contenders_from_columns(parties: list[str], combos: dict[int, tuple[str, ...]], unit: str | None) -> list[Contendiente]:
    # No candidaturas: coalitions are the connected components of combination columns.
    parent = {p: p for p in parties}

    def find(p: str) -> str:
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    for ps in combos.values():
        for p in ps[1:]:
            parent[find(p)] = find(ps[0])
    groups: dict[str, list[str]] = {}
    for p in parties:
        groups.setdefault(find(p), []).append(p)
    out = []
    for members in groups.values():
        code = "-".join(members) if len(members) == 1 else "SUM-" + "-".join(members)
        out.append(
            Contendiente(
                clave=f"{slug(unit)}-{slug(code)}" if unit is not None else slug(code),
                codigo=code,
                nombre=label_for(code),
                partidos=tuple(members),
                columnas=(),
                unidad=unit,
            )
        )
    return out


@dataclass
class _Ballot:
    """A unit's contenders before any vote: who owns which vote column (figures decide the rest)."""

    base: list[Contendiente]
    columnas: list[tuple[int, ...]]  # per base contender
    orphans: list[int]  # single-party columns no contender covers: their own contender where they hold votes
    uncovered: list[int]  # combination columns no contender covers: must hold no votes

    def flags(self, cifras: Cifras) -> tuple[bool, ...]:
        """Which of the columns whose handling depends on figures hold votes."""
        cols = cifras.columnas
        return tuple(bool(cols[i]) for i in self.orphans + self.uncovered)


def _ballot(
    contenders: list[Contendiente], data: ElectionData, col_parties: list[tuple[str, ...]], unit_label: str
) -> _Ballot:
    cols_of: dict[int, list[int]] = {k: [] for k in range(len(contenders))}
    orphans: list[int] = []
    uncovered: list[int] = []
    for i, ps in enumerate(col_parties):
        owners = [k for k, c in enumerate(contenders) if set(ps) <= set(c.partidos)]
        if len(owners) == 1:
            cols_of[owners[0]].append(i)
        elif len(owners) > 1:  # pragma: no cover - contenders are disjoint by construction
            col = data.vote_columns[i]
            raise BuildError(f"{data.archivo}: column {col} matches more than one contender in {unit_label}")
        elif len(ps) == 1:
            orphans.append(i)
        else:
            uncovered.append(i)
    return _Ballot(contenders, [tuple(cols_of[k]) for k in range(len(contenders))], orphans, uncovered)


def _assign_columns(
    ballot: _Ballot,
    data: ElectionData,
    col_parties: list[tuple[str, ...]],
    cifras: Cifras,
    unit_label: str,
    unit: str | None,
    warn: list[str],
) -> list[Contendiente]:
    for i in ballot.uncovered:
        if cifras.columnas[i]:
            raise BuildError(
                f"{data.archivo}: combination column {data.vote_columns[i]} holds {cifras.columnas[i]} counted votes "
                f"in {unit_label} but no contender covers all of its parties; check the candidaturas file (or the "
                "alias table) — votes are never dropped"
            )
    # New objects: the base contenders may be shared with the previous corte's ballot.
    out = [replace(c, columnas=cols) for c, cols in zip(ballot.base, ballot.columnas, strict=True)]
    for i in ballot.orphans:
        # A column with no candidatura and no votes in this unit is simply not on this unit's ballot.
        if not cifras.columnas[i]:
            continue
        code = col_parties[i][0]
        warn.append(
            f"{data.archivo}: column {data.vote_columns[i]} has no candidatura in {unit_label}; shown as its own contender"
        )
        out.append(
            Contendiente(
                clave=f"{slug(unit)}-{slug(code)}" if unit is not None else slug(code),
                codigo=code,
                nombre=label_for(code),
                partidos=col_parties[i],
                columnas=(i,),
                unidad=unit,
            )
        )
    return out


# --------------------------------------------------------------------------------------------------
# Aggregation


def _unit_key(a: Acta, multi: bool) -> tuple[str, str, bool]:
    uid = a.unidad_id
    if uid.upper() in ("N/A", "NA", "-", "") or a.tipo_casilla in PSEUDO_UNITS and not uid.strip("0"):
        key, nombre = PSEUDO_UNITS.get(a.tipo_casilla, ("sin-ambito", "Sin ámbito geográfico"))
        return key, nombre, True
    if multi:
        uid = f"{a.entidad.zfill(2)}-{uid}"
    return uid, a.unidad_nombre, False


def _section_key(a: Acta, unit_id: str, pseudo: bool, multi: bool) -> str:
    sec = a.seccion
    if pseudo or sec.upper() in ("N/A", "NA", "-", ""):
        return unit_id if pseudo else f"{unit_id}-sin-seccion"
    return f"{a.entidad.zfill(2)}-{sec}" if multi else sec


def _vote_columns(data: ElectionData) -> tuple[list[str], list[tuple[str, ...]]]:
    """The party columns, and the parties of every vote column."""
    parties = [c for c in data.vote_columns if not c.startswith("C_")]
    col_parties: list[tuple[str, ...]] = []
    for c in data.vote_columns:
        ps = column_parties(c, parties)
        if ps is None:
            raise BuildError(
                f"{data.archivo}: vote column {c} is neither a party column nor a C_ combination of this file's "
                f"parties ({', '.join(parties)}); votes are never dropped — fix the file or the alias table"
            )
        col_parties.append(ps)
    return parties, col_parties


def build_election(data: ElectionData, memo: SectionMemo | None = None) -> Eleccion:
    parties, col_parties = _vote_columns(data)
    if memo is not None:
        derived = _derive(data, parties, col_parties, memo)
        if derived is not None:
            memo.derived.add(data.codigo)
            # The figures kept for modelling afresh name the actas of the corte last modelled that way: kept
            # corte after corte, they would hold every acta replaced since then alive.
            memo.elections.pop(data.codigo, None)
            memo.units = {k: v for k, v in memo.units.items() if k[0] != data.codigo}
            memo.placed = {k: v for k, v in memo.placed.items() if k[0] != data.codigo}
            return derived
        memo.derived.discard(data.codigo)
    ncols = len(data.vote_columns)
    multi = data.multi_entidad
    unidades: dict[str, Unidad] = {}
    state = Cifras(ncols)
    # Where each acta goes, remembered by acta identity: valid because every acta listed there is still held
    # by the memo's sections (so no new object can have its id) until _section_figures replaces both.
    placed = memo.placed.get((data.codigo, multi), {}) if memo is not None else {}
    placing: dict[int, tuple[str, str, bool, str]] = {}
    fuera = 0
    for a in data.actas:
        if a.fuera_catalogo:
            fuera += 1
            continue
        where = placed.get(id(a))
        if where is None:
            where = _place(a, multi)
        placing[id(a)] = where
        uid, nombre, pseudo, sid = where
        u = unidades.get(uid)
        if u is None:
            u = unidades[uid] = Unidad(
                tipo=data.geo_tipo, id=uid, nombre=nombre, cifras=Cifras(ncols), contendientes=[], pseudo=pseudo
            )
        s = u.secciones.get(sid)
        if s is None:
            s = u.secciones[sid] = Seccion(id=sid, unidad_id=uid, cifras=_NO_CIFRAS)
        s.actas.append(a)
    _section_figures(data.codigo, unidades, ncols, memo)
    if memo is not None:
        memo.placed = {k: v for k, v in memo.placed.items() if k[0] != data.codigo}
        memo.placed[(data.codigo, multi)] = placing
    # A section split between two units (seen in Campeche's AYUN) would map two pages to one URL:
    # qualify those sections with their unit id.
    seen: dict[str, int] = {}
    for u in unidades.values():
        for sid in u.secciones:
            seen[sid] = seen.get(sid, 0) + 1
    split = frozenset(sid for sid, n in seen.items() if n > 1)
    for u in unidades.values():
        if split and not split.isdisjoint(u.secciones):
            u.secciones = {
                (f"{u.id}-{sid}" if sid in split else sid): _renamed(s, f"{u.id}-{sid}" if sid in split else sid)
                for sid, s in u.secciones.items()
            }
        u.cifras = _unit_figures(data.codigo, u, ncols, memo)
        state.add(u.cifras)

    per_unit, by_unit, all_contenders, warn = _contenders(data, parties, col_parties, unidades, state, memo)
    for u in unidades.values():
        u.contendientes = by_unit[u.id if per_unit else None]
    e = _eleccion(data, state, dict(sorted(unidades.items(), key=lambda kv: (kv[1].pseudo, kv[0]))),
                  per_unit, all_contenders, warn, fuera)
    if memo is not None:
        memo.models[data.codigo] = _Model(data, e, fuera, split)
    return e


def _place(a: Acta, multi: bool) -> tuple[str, str, bool, str]:
    """(unit id, unit name, pseudo unit, section id before qualification) of a catalogued acta."""
    uid, nombre, pseudo = _unit_key(a, multi)
    return uid, nombre, pseudo, _section_key(a, uid, pseudo, multi)


def _eleccion(
    data: ElectionData,
    state: Cifras,
    unidades: dict[str, Unidad],
    per_unit: bool,
    contendientes: list[Contendiente],
    warn: list[str],
    fuera: int,
) -> Eleccion:
    e = Eleccion(
        codigo=data.codigo,
        slug=slug(data.codigo),
        nombre=data.nombre,
        data=data,
        cifras=state,
        unidades=unidades,
        contendientes=contendientes,
        por_unidad=per_unit,
        participacion_formula=_participation_formula(data),
        advertencias=warn,
    )
    e.discrepancias = _cross_check(data, state, fuera)
    return e


def _contenders(
    data: ElectionData,
    parties: list[str],
    col_parties: list[tuple[str, ...]],
    unidades: dict[str, Unidad],
    state: Cifras,
    memo: SectionMemo | None,
) -> tuple[bool, dict[str | None, list[Contendiente]], list[Contendiente], list[str]]:
    """(per unit?, contenders by unit id (None: state-wide), every contender, warnings).

    Figures of ``unidades`` and ``state`` must be final. With a memo, a unit whose candidaturas rows, vote
    columns and votes in the columns that matter are as last corte gets last corte's list back (the same
    object: its contenders never change once built) unless that gave warnings (they name this corte's files).
    """
    warn: list[str] = []
    cands = data.candidaturas
    per_unit = any(c.unidad is not None for c in cands)
    combos = {i: ps for i, ps in enumerate(col_parties) if len(ps) > 1}
    key = (
        tuple(data.vote_columns), data.multi_entidad,
        tuple((c.line, c.entidad, c.unidad, c.codigo, c.nombre) for c in cands),
    )
    old = memo.ballots.get(data.codigo) if memo is not None else None
    before = old[1] if old is not None and old[0] == key else {}
    kept: dict[str | None, tuple[_Ballot, tuple[bool, ...] | None, list[Contendiente] | None]] = {}

    def contenders(unit: str | None, label: str, cifras: Cifras, base: Callable[[list[str]], list[Contendiente]]) -> list[Contendiente]:
        hit = before.get(unit)
        if hit is not None:
            ballot, flags, out = hit
            if out is not None and ballot.flags(cifras) == flags:
                kept[unit] = hit
                return out
        else:
            base_warn: list[str] = []
            ballot = _ballot(base(base_warn), data, col_parties, label)
            if base_warn:
                warn.extend(base_warn)  # they name this corte's files: the ballot is made again next time
                return _assign_columns(ballot, data, col_parties, cifras, label, unit, warn)
        n = len(warn)
        out = _assign_columns(ballot, data, col_parties, cifras, label, unit, warn)
        kept[unit] = (ballot, ballot.flags(cifras), out) if len(warn) == n else (ballot, None, None)
        return out

    if not cands:
        warn.append(f"{data.archivo}: no candidaturas file; contenders derived from the vote columns")
    by_unit: dict[str | None, list[Contendiente]] = {}
    if not per_unit:
        if data.multi_entidad and {c.entidad for c in cands} - {None, "0"}:
            # One set per entity (Senadurías) in a national election: any one state's names would be wrong in
            # every other state, so the nationwide contenders are labelled by party or coalition instead.
            cands = [replace(c, nombre="", suplente="") for c in cands if not _fold_pseudo(c.nombre)]
            warn.append(
                f"{data.archivo_candidaturas}: candidaturas are given per entity; their names are not shown at "
                "national level (contenders are labelled by party or coalition)"
            )
        by_unit[None] = contenders(
            None, "the state", state,
            lambda w: _contenders_from_rows(cands, parties, None, data, w)
            if cands
            else _contenders_from_columns(parties, combos, None),
        )
        all_contenders = by_unit[None]
    else:
        # District numbers repeat in every state: in a multi-entity election a row belongs to (entity, district)
        # (a row with no entity matches no unit). Single-entity files key by the district alone, as they always did.
        rows_of: dict[tuple[str | None, str], list[Candidatura]] = {}
        for c in cands:
            ent = c.entidad if data.multi_entidad else ""  # the reader normalised it like unit ids
            rows_of.setdefault((ent, _norm_unit(c.unidad or "")), []).append(c)
        all_contenders = []
        for u in sorted(unidades.values(), key=lambda x: x.id):
            if data.multi_entidad:
                u_ent, _, raw_uid = u.id.rpartition("-")
                where = (_norm_unit(u_ent), _norm_unit(raw_uid))
            else:
                where = ("", _norm_unit(u.id))
            rows = rows_of.get(where)
            label = f"{data.geo_tipo} {u.id}"
            if not rows and not u.pseudo:
                warn.append(f"{data.archivo}: no candidaturas for {label}; contenders derived from the vote columns")
            by_unit[u.id] = contenders(
                u.id, label, u.cifras,
                lambda w, rows=rows, uid=u.id: _contenders_from_rows(rows, parties, uid, data, w)
                if rows
                else _contenders_from_columns(parties, combos, uid),
            )
            all_contenders.extend(by_unit[u.id])
    if memo is not None:
        memo.ballots[data.codigo] = (key, kept)
    return per_unit, by_unit, all_contenders, warn


@dataclass
class _Model:
    """An election as last modelled, for deriving the next corte's from it (see _derive)."""

    data: ElectionData
    eleccion: Eleccion
    fuera: int  # fuera de catálogo actas
    split: frozenset[str]  # section ids qualified with their unit id (the section spans units)


def _derive(
    data: ElectionData, parties: list[str], col_parties: list[tuple[str, ...]], memo: SectionMemo
) -> Eleccion | None:
    """The election from last corte's model when only some actas changed in place, else None (model afresh).

    Between cortes the rows keep their order and the reader gives back the very same Acta object for every
    unchanged line, so comparing the lists by identity finds the changed actas in C. Only their sections,
    units and the state get new objects (figures corrected by difference); everything else is shared with
    the previous model, which is never mutated. Anything beyond that (rows inserted, removed or reordered,
    an acta moving to another section or unit or in or out of the catalogue, other vote columns…) returns
    None. Rows appended at the end are fine if they are fuera de catálogo (the way those arrive).
    """
    prev = memo.models.get(data.codigo)
    if prev is None:
        return None
    old_data, old_e = prev.data, prev.eleccion
    old, new = old_data.actas, data.actas
    if (
        len(new) < len(old)
        or data.vote_columns != old_data.vote_columns
        or data.multi_entidad != old_data.multi_entidad
        or data.geo_tipo != old_data.geo_tipo
        or not all(a.fuera_catalogo for a in new[len(old):])
    ):
        return None
    changed = list(compress(count(), map(is_not, new, old)))
    if 4 * len(changed) > len(new):
        return None  # most of the file: modelling afresh costs less
    multi = data.multi_entidad
    by_section: dict[tuple[str, str], list[tuple[Acta, Acta]]] = {}
    for i in changed:
        before, after = old[i], new[i]
        if before.fuera_catalogo or after.fuera_catalogo:
            if before.fuera_catalogo and after.fuera_catalogo:
                continue  # in no section either way
            return None
        where = _place(before, multi)
        if _place(after, multi) != where:
            return None
        sid = where[3]
        by_section.setdefault((where[0], f"{where[0]}-{sid}" if sid in prev.split else sid), []).append((before, after))

    ncols = len(data.vote_columns)
    units: dict[str, tuple[Cifras, dict[str, Seccion]]] = {}
    changed_sids: dict[str, list[str]] = {}
    for (uid, sid), pairs in by_section.items():
        changed_sids.setdefault(uid, []).append(sid)
        old_u = old_e.unidades[uid]
        old_s = old_u.secciones[sid]
        actas = list(old_s.actas)
        for before, after in pairs:
            at = [k for k, a in enumerate(actas) if a is before]
            if len(at) != 1:
                return None  # the same Acta twice in a section (identical lines): which one changed is unclear
            actas[at[0]] = after
        cifras = Cifras(ncols)
        for a in actas:
            cifras.add_acta(a)
        if uid not in units:
            units[uid] = (old_u.cifras.copy(), dict(old_u.secciones))
        total, secciones = units[uid]
        total.add(old_s.cifras, -1)
        total.add(cifras)
        secciones[sid] = Seccion(id=old_s.id, unidad_id=old_s.unidad_id, cifras=cifras, actas=actas)
    state = old_e.cifras.copy()
    for uid, (total, _) in units.items():
        state.add(old_e.unidades[uid].cifras, -1)
        state.add(total)

    # Contenders on the new figures (Unidad.cifras is all _contenders reads of a unit besides its id).
    current = {
        uid: replace(u, cifras=units[uid][0]) if uid in units else u for uid, u in old_e.unidades.items()
    }
    per_unit, by_unit, all_contenders, warn = _contenders(data, parties, col_parties, current, state, memo)
    unidades: dict[str, Unidad] = {}
    for uid, u in old_e.unidades.items():
        contendientes = by_unit[uid if per_unit else None]
        if uid in units:
            total, secciones = units[uid]
            u = replace(u, cifras=total, secciones=secciones, contendientes=contendientes)
        elif contendientes is not u.contendientes:
            u = replace(u, contendientes=contendientes)
        unidades[uid] = u
    fuera = prev.fuera + len(new) - len(old)  # the appended rows, all fuera de catálogo
    e = _eleccion(data, state, unidades, per_unit, all_contenders, warn, fuera)
    e.cambios = {uid: (old_e.unidades[uid].secciones, tuple(sids)) for uid, sids in changed_sids.items()}
    memo.models[data.codigo] = _Model(data, e, fuera, prev.split)
    return e


class SectionMemo:
    """The previous corte's model and section figures, for a process building corte after corte (the watcher).

    When a corte's actas line up with the previous corte's (the norm: see _derive) the model is derived from
    the previous one. Otherwise a section holding the very same Acta objects as last time (reader.RowMemo
    shares unchanged rows) has the same figures: they are reused instead of being summed again. Cifras are
    never mutated once built (units and the state add copies of them), so sharing them between cortes is safe.
    """

    def __init__(self) -> None:
        self.elections: dict[str, dict[tuple[str, str], tuple[list[Acta], Cifras]]] = {}
        self.units: dict[tuple[str, str], tuple[Cifras, dict[str, Cifras]]] = {}
        self.placed: dict[tuple[str, bool], dict[int, tuple[str, str, bool, str]]] = {}
        self.models: dict[str, _Model] = {}
        self.ballots: dict[str, tuple[Any, dict[str | None, Any]]] = {}
        self.derived: set[str] = set()  # elections of the last package derived from the previous model


_NO_CIFRAS = Cifras(0)  # placeholder until _section_figures fills every section in


def _section_figures(codigo: str, unidades: dict[str, Unidad], ncols: int, memo: SectionMemo | None) -> None:
    old = memo.elections.get(codigo, {}) if memo is not None else {}
    new: dict[tuple[str, str], tuple[list[Acta], Cifras]] = {}
    for u in unidades.values():
        for sid, s in u.secciones.items():
            prev = old.get((u.id, sid))
            if (
                prev is not None
                and prev[1].ncols == ncols
                and len(prev[0]) == len(s.actas)
                and all(x is y for x, y in zip(prev[0], s.actas, strict=True))
            ):
                s.cifras = prev[1]
            else:
                s.cifras = Cifras(ncols)
                for a in s.actas:
                    s.cifras.add_acta(a)
            new[(u.id, sid)] = (s.actas, s.cifras)
    if memo is not None:
        memo.elections[codigo] = new


def _unit_figures(codigo: str, u: Unidad, ncols: int, memo: SectionMemo | None) -> Cifras:
    """A unit's figures: the sum of its sections, or last corte's sum corrected by the sections that changed."""
    sections = {sid: s.cifras for sid, s in u.secciones.items()}
    old = memo.units.get((codigo, u.id)) if memo is not None else None
    total = None
    if old is not None and old[0].ncols == ncols and old[1].keys() == sections.keys():
        changed = [(old[1][sid], c) for sid, c in sections.items() if old[1][sid] is not c]
        if len(changed) < len(sections) // 2:
            total = old[0].copy()
            for before, after in changed:
                total.add(before, -1)
                total.add(after)
    if total is None:
        total = Cifras(ncols)
        for c in sections.values():
            total.add(c)
    if memo is not None:
        memo.units[(codigo, u.id)] = (total, sections)
    return total


def _renamed(s: Seccion, sid: str) -> Seccion:
    s.id = sid
    return s


def _participation_formula(data: ElectionData) -> str:
    """Which formula reproduces the operator's own state participation (with or without specials)."""
    r = data.resumen
    published = r.get("PORCENTAJE_PARTICIPACION_CIUDADANA")
    ln = r.get("LISTA_NOMINAL_ACTAS_CONTABILIZADAS")
    if published is not None and ln:
        for name, total in (
            ("con_casillas_especiales", r.get("TOTAL_VOTOS_C_CS")),
            ("sin_casillas_especiales", r.get("TOTAL_VOTOS_S_CS")),
        ):
            value = pct(total if isinstance(total, int) else None, ln if isinstance(ln, int) else None)
            if value is not None and value == Decimal(published).quantize(Decimal("0.0001")):
                return name
    return "con_casillas_especiales"


def _cross_check(data: ElectionData, state: Cifras, fuera: int) -> list[dict]:
    r = data.resumen
    checks = (
        ("ACTAS_ESPERADAS", state.esperadas),
        ("ACTAS_CAPTURADAS", state.capturadas),
        ("ACTAS_CONTABILIZADAS", state.contabilizadas),
        ("ACTAS_FUERA_CATALOGO", fuera),
        ("LISTA_NOMINAL_ACTAS_CONTABILIZADAS", state.lista_nominal),
        ("TOTAL_VOTOS_C_CS", state.total_calculado),
        ("TOTAL_VOTOS_S_CS", state.total_calculado_sin_especiales),
    )
    out = []
    for name, recount in checks:
        published = r.get(name)
        if published is None:
            continue
        if published != recount:
            out.append({"campo": name, "publicado": published, "recuento": recount})
    if state.total_votos != state.total_calculado and state.contabilizadas:
        out.append(
            {
                "campo": "SUMA_COLUMNAS_VS_TOTAL_VOTOS_CALCULADO",
                "publicado": state.total_calculado,
                "recuento": state.total_votos,
            }
        )
    return out


def build_elections(package: Package, memo: SectionMemo | None = None) -> list[Eleccion]:
    return [build_election(d, memo) for d in package.elecciones]
