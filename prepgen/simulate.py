"""Write a simulacro: a deterministic sequence of PREP packages in the official format.

``prepgen simulate OUTDIR --escala coahuila|nacional --cortes N --semilla S`` writes N packages,
one corte every 5 minutes from election night 20:00 (UTC-6), named like the real ones
(``20230604_2000_PREP_COAH.zip``; national INE style ``20240602_2000_PREP.zip``). The same
escala, cortes and semilla always give byte-identical zips.

Escalas
  coahuila   entity 05, ~1,700 sections, ~4,050 actas per election, 38 municipios, 16 distritos
             locales. GUB (Gubernatura, by ID_MUNICIPIO) and DIP_LOC (by ID_DISTRITO_LOCAL).
             Coahuila 2023 header layout: blank lines at 3 and 6.
  nacional   32 entities, 300 federal districts, ~71,000 sections, ~170,000 casillas. PRES, SEN
             and DIP_FED, all keyed ID_ENTIDAD, ENTIDAD, ID_DISTRITO_FEDERAL, DISTRITO_FEDERAL.
             INE 2024 header layout: no blank lines. Section numbers are unique only inside an
             entity. Remote votes (TIPO_CASILLA M abroad, A early, P pre-trial detention) sit
             in a pseudo-district 00 of each entity, section 0000, for PRES and SEN only (they
             have no MR district, so DIP_FED has none).
  nacional-mini  the national layout at ~1/300 size, for tests.

Candidaturas files: GUB ``ID_ESTADO,PARTIDO_CI,CANDIDATURA_PROPIETARIA``; PRES (a national
contest, no estado) ``PARTIDO_CI,CANDIDATURA_PROPIETARIA``; SEN (one set per entity)
``ID_ESTADO,PARTIDO_CI,CANDIDATURA_PROPIETARIA,CANDIDATURA_SUPLENTE``; DIP_LOC / DIP_FED (one set
per district) ``ID_ESTADO,ID_DISTRITO_LOCAL|ID_DISTRITO_FEDERAL,PARTIDO_CI,...,CANDIDATURA_SUPLENTE``.
IDs there are unpadded (``5``, ``7``), as the real files write them. A coalition ``SUM-A-B-C``
is followed by its member parties with empty names; ``CI1`` (column ``CAND_IND_1``) runs in one
district of the diputaciones; ``CNR`` and ``NULOS`` close each set. In districts where a
coalition (or the CI) does not run, its vote cells are empty in captured rows.

Arrival: each acta has a draw u in [0, 1); it first appears in the first corte k whose share
p_k > u, with p_k = 0.95 * g((k + 1) / cortes) and g a logistic rescaled to g(0)=0, g(1)=1.
The night is compressed into the run: the last corte always has ~95 % of the actas, 3 cortes
give ~33 / 85 / 95 %. An acta captured in corte k is byte-identical in every later corte;
uncaptured actas show identity and LISTA_NOMINAL only.

Summary line (recomputed from the rows of the same CSV; S = special casillas, LN 0):
  ACTAS_ESPERADAS        catalogue rows (fuera de catálogo excluded)
  ACTAS_FUERA_CATALOGO   rows with CLAVE_CASILLA "-"
  ACTAS_CAPTURADAS       catalogue rows with CONTABILIZADA 0 or 1
  ACTAS_REGISTRADAS      CAPTURADAS + FUERA_CATALOGO
  ACTAS_CONTABILIZADAS   rows with CONTABILIZADA 1;  ACTAS_NO_CONTABILIZADAS = CAPTURADAS - that
  LISTA_NOMINAL_ACTAS_CONTABILIZADAS  sum of LISTA_NOMINAL over counted rows
  TOTAL_VOTOS_C_CS       sum of TOTAL_VOTOS_CALCULADO over counted rows
  TOTAL_VOTOS_S_CS       the same without TIPO_CASILLA S
  PORCENTAJE_ACTAS_CAPTURADAS       100 * CAPTURADAS / ESPERADAS
  PORCENTAJE_ACTAS_CONTABILIZADAS   100 * CONTABILIZADAS / ESPERADAS
  PORCENTAJE_ACTAS_INCONSISTENCIAS  100 * (not counted as "TODOS ILEGIBLES O SIN DATO" or
                                    "EXCEDE LISTA NOMINAL") / ESPERADAS  (what Campeche 2021
                                    and Puebla 2018 publish; "SIN ACTA" is not an inconsistency)
  PORCENTAJE_PARTICIPACION_CIUDADANA  100 * TOTAL_VOTOS_S_CS / LISTA_NOMINAL_ACTAS_CONTABILIZADAS
                                    (Puebla 2018's formula; Campeche 2021 used TOTAL_VOTOS_C_CS);
                                    empty while no acta is counted.
Percentages: floor(num * 10**6 / den) as a Decimal with 4 places, i.e. truncated, never rounded.

Rows: TOTAL_VOTOS_CALCULADO is the sum of the numeric vote cells; TOTAL_VOTOS_ASENTADO equals it
except in ~1.5 % of rows (off by 1-5) and in "ALGUN CAMPO ILEGIBLE O SIN DATO" rows (counted,
one vote cell ILEGIBLE / SIN DATO, so the calculated sum is short). Not counted (CONTABILIZADA
0): "TODOS ILEGIBLES O SIN DATO" (all vote cells markers, calculated 0), "EXCEDE LISTA NOMINAL"
(votes above the lista nominal), "SIN ACTA POR PAQUETE ENTREGADO SIN BOLSA" (no votes, no hash).
Fuera de catálogo rows come last ("-" fields; CONTABILIZADA 2 in Coahuila, 0 nationally).
CODIGO_INTEGRIDAD is a sha256 hex of (semilla, election, CLAVE_ACTA).
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import hashlib
import io
import itertools
import math
import random
import zipfile
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from prepgen.errors import ConfigError

__all__ = ["ESCALAS", "simulate"]

ESCALAS = ("coahuila", "nacional", "nacional-mini")

UTC_6 = timezone(timedelta(hours=-6))
_MINUTOS_ENTRE_CORTES = 5
_ARRIBO_FINAL = 0.95  # share of actas captured by the last corte

# Rows carry both a summary header (13 fields, the same everywhere) and acta columns.
RESUMEN = (
    "ACTAS_ESPERADAS", "ACTAS_REGISTRADAS", "ACTAS_FUERA_CATALOGO", "ACTAS_CAPTURADAS",
    "PORCENTAJE_ACTAS_CAPTURADAS", "ACTAS_CONTABILIZADAS", "PORCENTAJE_ACTAS_CONTABILIZADAS",
    "PORCENTAJE_ACTAS_INCONSISTENCIAS", "ACTAS_NO_CONTABILIZADAS", "LISTA_NOMINAL_ACTAS_CONTABILIZADAS",
    "TOTAL_VOTOS_C_CS", "TOTAL_VOTOS_S_CS", "PORCENTAJE_PARTICIPACION_CIUDADANA",
)
_CONTEOS = ("TOTAL_BOLETAS_SOBRANTES", "TOTAL_PERSONAS_VOTARON", "TOTAL_REP_PARTIDO_CI_VOTARON",
            "TOTAL_VOTOS_SACADOS")
_TOTALES = ("TOTAL_VOTOS_ASENTADO", "TOTAL_VOTOS_CALCULADO", "LISTA_NOMINAL")
_COLA = ("REPRESENTANTES_PP_CI", "OBSERVACIONES", "CONTABILIZADA", "MECANISMOS_TRASLADO",
         "CODIGO_INTEGRIDAD", "FECHA_HORA_ACOPIO", "FECHA_HORA_CAPTURA", "FECHA_HORA_VERIFICACION",
         "ORIGEN", "DIGITALIZACION", "TIPO_DOCUMENTO")

PARTIDOS = ("PAN", "PRI", "PRD", "PVEM", "PT", "MC", "MORENA")
COALICIONES = (("PAN", "PRI", "PRD"), ("PT", "PVEM", "MORENA"))

OBS_ALGUN = "ALGUN CAMPO ILEGIBLE O SIN DATO"
OBS_TODOS = "TODOS ILEGIBLES O SIN DATO"
OBS_EXCEDE = "EXCEDE LISTA NOMINAL"
OBS_SIN_ACTA = "SIN ACTA POR PAQUETE ENTREGADO SIN BOLSA"
OBS_FUERA = "FUERA DE CATALOGO"

# Acta status, fixed per acta for the whole run (a captured row never changes).
_LIMPIA, _ALGUN, _TODOS, _EXCEDE, _SIN_ACTA = range(5)
_CONTADA = (True, True, False, False, False)

Progreso = Callable[[int, int, Path], None]


# --------------------------------------------------------------------------- static tables

# Coahuila: (municipio, relative number of sections, distritos locales it falls in).
# Municipio ids are INEGI's alphabetical order (030 = SALTILLO); districts roughly the real ones.
_COAH_MUNICIPIOS: tuple[tuple[str, int, tuple[int, ...]], ...] = (
    ("ABASOLO", 4, (5,)), ("ACUÑA", 80, (1,)), ("ALLENDE", 15, (2,)), ("ARTEAGA", 20, (12,)),
    ("CANDELA", 5, (5,)), ("CASTAÑOS", 18, (6,)), ("CUATRO CIÉNEGAS", 12, (6,)), ("ESCOBEDO", 5, (5,)),
    ("FRANCISCO I. MADERO", 35, (4,)), ("FRONTERA", 45, (6,)), ("GENERAL CEPEDA", 14, (12,)),
    ("GUERRERO", 4, (2,)), ("HIDALGO", 4, (2,)), ("JIMÉNEZ", 8, (2,)), ("JUÁREZ", 4, (3,)),
    ("LAMADRID", 4, (5,)), ("MATAMOROS", 55, (7,)), ("MONCLOVA", 110, (5,)), ("MORELOS", 7, (2,)),
    ("MÚZQUIZ", 35, (3,)), ("NADADORES", 8, (5,)), ("NAVA", 16, (2,)), ("OCAMPO", 10, (6,)),
    ("PARRAS", 30, (12,)), ("PIEDRAS NEGRAS", 90, (2,)), ("PROGRESO", 5, (3,)),
    ("RAMOS ARIZPE", 55, (12,)), ("SABINAS", 40, (3,)), ("SACRAMENTO", 4, (5,)),
    ("SALTILLO", 400, (13, 14, 15, 16)), ("SAN BUENAVENTURA", 15, (5,)),
    ("SAN JUAN DE SABINAS", 28, (3,)), ("SAN PEDRO", 55, (4,)), ("SIERRA MOJADA", 6, (6,)),
    ("TORREÓN", 380, (8, 9, 10, 11)), ("VIESCA", 14, (7,)), ("VILLA UNIÓN", 6, (2,)),
    ("ZARAGOZA", 10, (2,)),
)
_COAH_DISTRITOS = ("ACUÑA", "PIEDRAS NEGRAS", "SABINAS", "SAN PEDRO", "MONCLOVA", "FRONTERA", "MATAMOROS",
                   "TORREÓN", "TORREÓN", "TORREÓN", "TORREÓN", "RAMOS ARIZPE", "SALTILLO", "SALTILLO",
                   "SALTILLO", "SALTILLO")
_COAH_SECCIONES = 1730

# National: (entity, federal districts (2023 distritación, 300 in all), cabeceras to name them).
# Cabeceras repeat across districts, as real names do.
_ENTIDADES: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("AGUASCALIENTES", 3, ("AGUASCALIENTES", "JESÚS MARÍA")),
    ("BAJA CALIFORNIA", 9, ("TIJUANA", "MEXICALI", "ENSENADA")),
    ("BAJA CALIFORNIA SUR", 2, ("LA PAZ", "SAN JOSÉ DEL CABO")),
    ("CAMPECHE", 2, ("SAN FRANCISCO DE CAMPECHE", "CIUDAD DEL CARMEN")),
    ("COAHUILA", 8, ("SALTILLO", "TORREÓN", "MONCLOVA", "PIEDRAS NEGRAS")),
    ("COLIMA", 2, ("COLIMA", "MANZANILLO")),
    ("CHIAPAS", 13, ("TUXTLA GUTIÉRREZ", "TAPACHULA", "SAN CRISTÓBAL DE LAS CASAS", "PALENQUE")),
    ("CHIHUAHUA", 9, ("CHIHUAHUA", "JUÁREZ", "DELICIAS", "HIDALGO DEL PARRAL")),
    ("CIUDAD DE MÉXICO", 22, ("IZTAPALAPA", "GUSTAVO A. MADERO", "COYOACÁN", "ÁLVARO OBREGÓN", "TLALPAN",
                              "CUAUHTÉMOC")),
    ("DURANGO", 4, ("VICTORIA DE DURANGO", "GÓMEZ PALACIO")),
    ("GUANAJUATO", 15, ("LEÓN", "IRAPUATO", "CELAYA", "SALAMANCA", "GUANAJUATO")),
    ("GUERRERO", 8, ("ACAPULCO", "CHILPANCINGO", "IGUALA", "TLAPA DE COMONFORT")),
    ("HIDALGO", 7, ("PACHUCA", "TULANCINGO", "TULA DE ALLENDE")),
    ("JALISCO", 20, ("GUADALAJARA", "ZAPOPAN", "SAN PEDRO TLAQUEPAQUE", "TONALÁ", "PUERTO VALLARTA",
                     "LAGOS DE MORENO")),
    ("MÉXICO", 40, ("ECATEPEC DE MORELOS", "NEZAHUALCÓYOTL", "TOLUCA", "NAUCALPAN DE JUÁREZ", "CHALCO",
                    "TLALNEPANTLA DE BAZ")),
    ("MICHOACÁN", 11, ("MORELIA", "URUAPAN", "ZAMORA", "LÁZARO CÁRDENAS")),
    ("MORELOS", 5, ("CUERNAVACA", "CUAUTLA", "JIUTEPEC")),
    ("NAYARIT", 3, ("TEPIC", "SANTIAGO IXCUINTLA")),
    ("NUEVO LEÓN", 14, ("MONTERREY", "GUADALUPE", "APODACA", "SAN NICOLÁS DE LOS GARZA")),
    ("OAXACA", 10, ("OAXACA DE JUÁREZ", "JUCHITÁN DE ZARAGOZA", "SAN JUAN BAUTISTA TUXTEPEC",
                    "HEROICA CIUDAD DE HUAJUAPAN DE LEÓN")),
    ("PUEBLA", 16, ("HEROICA PUEBLA DE ZARAGOZA", "TEHUACÁN", "ATLIXCO", "TEZIUTLÁN")),
    ("QUERÉTARO", 6, ("SANTIAGO DE QUERÉTARO", "SAN JUAN DEL RÍO")),
    ("QUINTANA ROO", 4, ("CANCÚN", "CHETUMAL", "PLAYA DEL CARMEN")),
    ("SAN LUIS POTOSÍ", 7, ("SAN LUIS POTOSÍ", "CIUDAD VALLES", "MATEHUALA")),
    ("SINALOA", 7, ("CULIACÁN", "MAZATLÁN", "LOS MOCHIS")),
    ("SONORA", 7, ("HERMOSILLO", "CIUDAD OBREGÓN", "HEROICA NOGALES", "SAN LUIS RÍO COLORADO")),
    ("TABASCO", 6, ("VILLAHERMOSA", "CÁRDENAS", "COMALCALCO")),
    ("TAMAULIPAS", 8, ("REYNOSA", "HEROICA MATAMOROS", "NUEVO LAREDO", "CIUDAD VICTORIA", "TAMPICO")),
    ("TLAXCALA", 3, ("TLAXCALA", "APIZACO")),
    ("VERACRUZ", 19, ("VERACRUZ", "XALAPA", "COATZACOALCOS", "CÓRDOBA", "POZA RICA DE HIDALGO", "ORIZABA")),
    ("YUCATÁN", 6, ("MÉRIDA", "VALLADOLID", "TICUL")),
    ("ZACATECAS", 4, ("ZACATECAS", "FRESNILLO")),
)
_NAC_SECCIONES = 71_000
_PSEUDO_DISTRITO = "Voto desde el extranjero / anticipado / en prisión preventiva"

# Party base shares (per mille). Coahuila 2023-like and national 2024-like, not real results.
_LEAN_COAH = (90, 430, 20, 90, 130, 30, 210)
_LEAN_NAC = (170, 100, 25, 85, 55, 105, 420)

_NOMBRES = ("MARÍA", "JOSÉ", "JUAN", "GUADALUPE", "JESÚS", "ANA", "LUIS", "SOFÍA", "RAÚL", "VERÓNICA", "ÁNGEL",
            "MÓNICA", "HÉCTOR", "BEATRIZ", "RAMÓN", "INÉS", "ROCÍO", "JOAQUÍN", "LETICIA", "ÓSCAR", "ELVIRA",
            "MARTÍN", "NOÉ", "XÓCHITL", "EFRAÍN", "CLAUDIA", "TOMÁS", "LUCÍA", "ANDRÉS", "IRMA")
_APELLIDOS = ("GARCÍA", "HERNÁNDEZ", "MARTÍNEZ", "LÓPEZ", "GONZÁLEZ", "PÉREZ", "RODRÍGUEZ", "SÁNCHEZ",
              "RAMÍREZ", "FLORES", "GÓMEZ", "DÍAZ", "VÁZQUEZ", "JIMÉNEZ", "MUÑOZ", "NÚÑEZ", "IBARRA",
              "DE LA PEÑA", "VALDÉS", "ARIZPE", "CEPEDA", "ZERTUCHE", "MENDOZA", "CASTAÑEDA", "ACUÑA",
              "SALINAS", "TREVIÑO", "DE LEÓN", "ESPINOSA", "QUIÑONES")
# Names that exercise a reader: an apostrophe (CSV-safe) and double quotes (forces CSV quoting).
_NOMBRE_CI = "MARÍA JOSÉ O'FARRILL NÚÑEZ"
_NOMBRE_APODO = 'RAÚL "EL GÜERO" ZERTUCHE'

_LEEME = (
    "Instructivo para lectura del archivo CSV (simulacro generado por prepgen)\r\n"
    "\r\n"
    "Este archivo es un SIMULACRO: los datos no son resultados reales.\r\n"
    "Línea 1: elección. Línea 2: fecha, hora y huso horario del corte de información.\r\n"
    "Después: encabezado y valores del resumen, encabezado de actas y una fila por Acta PREP.\r\n"
    "CONTABILIZADA: 1 contabilizada, 0 no contabilizada, 2 fuera de catálogo.\r\n"
    "Los porcentajes se truncan a cuatro decimales. CODIGO_INTEGRIDAD: SHA-256 de la imagen del acta.\r\n"
    "Valores especiales: ILEGIBLE, SIN DATO (no son números ni cero); vacío: sin captura.\r\n"
)


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class _Escala:
    nombre: str
    ambito: str  # the package scope in file names ("" for INE style)
    id_entidad_col: str
    nombre_entidad_col: str
    separar_bloques: bool  # Coahuila 2023 layout: blank lines at 3 and 6
    contabilizada_fc: str  # how fuera de catálogo rows are marked
    obs_limpia: str
    inicio: datetime
    lean: tuple[int, ...]
    n_fuera_catalogo: int


@dataclass(frozen=True)
class _EleccionSpec:
    codigo: str
    nombre: str
    tipo_acta: str
    geo: str  # "municipio" | "distrito": the casilla attribute that keys rows
    geo_cols: tuple[str, str]
    contienda: str  # "estado" | "nacional" | "entidad" | "distrito": one candidaturas set per ...
    cand_cols: tuple[str, ...]
    remotos: bool  # M/A/P casillas take part
    coalicion_parcial: bool  # coalitions and the CI run only in some districts


_COAH = _Escala("coahuila", "COAH", "ID_ENTIDAD", "ENTIDAD", True, "2", "",
                datetime(2023, 6, 4, 20, 0), _LEAN_COAH, 5)
_NAC = _Escala("nacional", "", "ID_ENTIDAD", "ENTIDAD", False, "0", "-",
               datetime(2024, 6, 2, 20, 0), _LEAN_NAC, 12)

_ELECCIONES: dict[str, tuple[_EleccionSpec, ...]] = {
    "coahuila": (
        _EleccionSpec("GUB", "GUBERNATURA", "5", "municipio", ("ID_MUNICIPIO", "MUNICIPIO"), "estado",
                      ("ID_ESTADO", "PARTIDO_CI", "CANDIDATURA_PROPIETARIA"), False, False),
        _EleccionSpec("DIP_LOC", "DIPUTACIONES LOCALES", "3", "distrito",
                      ("ID_DISTRITO_LOCAL", "DISTRITO_LOCAL"), "distrito",
                      ("ID_ESTADO", "ID_DISTRITO_LOCAL", "PARTIDO_CI", "CANDIDATURA_PROPIETARIA",
                       "CANDIDATURA_SUPLENTE"), False, True),
    ),
    "nacional": (
        _EleccionSpec("PRES", "PRESIDENCIA DE LA REPÚBLICA", "1", "distrito",
                      ("ID_DISTRITO_FEDERAL", "DISTRITO_FEDERAL"), "nacional",
                      ("PARTIDO_CI", "CANDIDATURA_PROPIETARIA"), True, False),
        _EleccionSpec("SEN", "SENADURÍAS", "2", "distrito", ("ID_DISTRITO_FEDERAL", "DISTRITO_FEDERAL"),
                      "entidad", ("ID_ESTADO", "PARTIDO_CI", "CANDIDATURA_PROPIETARIA", "CANDIDATURA_SUPLENTE"),
                      True, False),
        _EleccionSpec("DIP_FED", "DIPUTACIONES FEDERALES", "3", "distrito",
                      ("ID_DISTRITO_FEDERAL", "DISTRITO_FEDERAL"), "distrito",
                      ("ID_ESTADO", "ID_DISTRITO_FEDERAL", "PARTIDO_CI", "CANDIDATURA_PROPIETARIA",
                       "CANDIDATURA_SUPLENTE"), False, True),
    ),
}


def _combos(coalicion: Sequence[str]) -> list[str]:
    """Combination columns of a coalition, largest first, in party order (C_PAN_PRI_PRD, C_PAN_PRI, ...)."""
    return ["C_" + "_".join(c) for n in range(len(coalicion), 1, -1) for c in itertools.combinations(coalicion, n)]


# --------------------------------------------------------------------------- catalogue


@dataclass
class _Catalogo:
    """Casillas of one escala in compact parallel arrays (index = casilla), built once per run."""

    escala: _Escala
    entidades: list[tuple[str, str]]  # (id "05", name)
    distritos: list[tuple[int, str, str]]  # (entity index, id "07", name); pseudo-district id "00"
    municipios: list[tuple[int, str, str]]
    clave: list[str] = field(default_factory=list)  # CLAVE_CASILLA; SECCION/TIPO/ID/EXT are slices of it
    ent: array = field(default_factory=lambda: array("H"))
    dist: array = field(default_factory=lambda: array("H"))
    muni: array = field(default_factory=lambda: array("H"))
    ubic: array = field(default_factory=lambda: array("B"))
    ln: array = field(default_factory=lambda: array("l"))
    votantes: array = field(default_factory=lambda: array("l"))  # people who vote there
    arribo: array = field(default_factory=lambda: array("d"))  # u of the casilla's package
    lean: list[tuple[int, ...]] = field(default_factory=list)  # per district, party weights


def _lognormal_ln(rng: random.Random, urbana: bool) -> int:
    # Section lista nominal: urban sections are bigger; the tail makes 3-6 casilla sections.
    mu = 7.22 if urbana else 6.65
    return max(60, min(5200, int(math.exp(rng.gauss(mu, 0.55)))))


def _agrega_seccion(cat: _Catalogo, rng: random.Random, ent: int, dist: int, muni: int, seccion: int) -> None:
    urbana = rng.random() < 0.72
    ln = _lognormal_ln(rng, urbana)
    n = max(1, math.ceil(ln / 750))  # one casilla per 750 electors: básica then contiguas
    extra = 0
    if not urbana and rng.random() < 0.08:
        extra = 1  # casilla extraordinaria for a far-off locality of the section
    partes = n + extra
    base, resto = divmod(ln, partes)
    eid = cat.entidades[ent][0]
    casillas: list[tuple[str, int, int]] = []
    for i in range(n):
        tipo = "B" if i == 0 else "C"
        num = 1 if i == 0 else i
        casillas.append((f"{eid}{seccion:04d}{tipo}{num:02d}00", base + (1 if i < resto else 0), 1 if urbana else 2))
    if extra:
        casillas.append((f"{eid}{seccion:04d}E0101", base, 2))
    if rng.random() < 0.0075 * 2.4:
        casillas.append((f"{eid}{seccion:04d}S0100", 0, 1 if urbana else 2))
    for clave, ln_c, ubic in casillas:
        _agrega_casilla(cat, rng, clave, ent, dist, muni, ubic, ln_c)


def _agrega_casilla(cat: _Catalogo, rng: random.Random, clave: str, ent: int, dist: int, muni: int,
                    ubic: int, ln: int) -> None:
    tipo = clave[6]
    if tipo == "S":
        votantes = rng.randint(60, 700)  # special casillas: no lista nominal, up to 750 ballots
    elif tipo in "MAP":
        votantes = int(ln * rng.uniform(0.55, 0.95))
    else:
        turnout = min(0.93, max(0.22, rng.gauss(0.60 if ubic == 1 else 0.64, 0.09)))
        votantes = int(ln * turnout)
    cat.clave.append(clave)
    cat.ent.append(ent)
    cat.dist.append(dist)
    cat.muni.append(muni)
    cat.ubic.append(ubic)
    cat.ln.append(ln)
    cat.votantes.append(votantes)
    # Rural packages travel longer: shift their arrival draw later (still in [0, 1)).
    u = rng.random()
    cat.arribo.append(u ** 0.85 if ubic == 2 else u)


def _leans(rng: random.Random, base: tuple[int, ...], n: int) -> list[tuple[int, ...]]:
    return [tuple(max(3, int(b * rng.uniform(0.55, 1.5))) for b in base) for _ in range(n)]


def _catalogo_coahuila(semilla: int) -> _Catalogo:
    rng = random.Random(f"{semilla}:catalogo:coahuila")
    cat = _Catalogo(_COAH, [("05", "COAHUILA")],
                    [(0, f"{i + 1:02d}", n) for i, n in enumerate(_COAH_DISTRITOS)],
                    [(0, f"{i + 1:03d}", m[0]) for i, m in enumerate(_COAH_MUNICIPIOS)])
    total = sum(m[1] for m in _COAH_MUNICIPIOS)
    seccion = 0
    for mi, (_, peso, dists) in enumerate(_COAH_MUNICIPIOS):
        n = max(3, round(_COAH_SECCIONES * peso / total))
        for j in range(n):
            seccion += 1
            # A municipio spanning several districts is cut into contiguous blocks of sections.
            d = dists[j * len(dists) // n] - 1
            _agrega_seccion(cat, rng, 0, d, mi, seccion)
    cat.lean = _leans(rng, _COAH.lean, len(cat.distritos))
    return cat


def _catalogo_nacional(semilla: int, mini: bool) -> _Catalogo:
    rng = random.Random(f"{semilla}:catalogo:nacional{'-mini' if mini else ''}")
    cat = _Catalogo(_NAC, [(f"{i + 1:02d}", e[0]) for i, e in enumerate(_ENTIDADES)], [], [])
    por_distrito = _NAC_SECCIONES / 300 / (40 if mini else 1)
    for ei, (_, n_dist, cabeceras) in enumerate(_ENTIDADES):
        if mini:
            n_dist = 1 if n_dist < 20 else 2
        eid = cat.entidades[ei][0]
        # Remote votes first: section 0000 sorts before every real section of the entity.
        pseudo = len(cat.distritos)
        cat.distritos.append((ei, "00", _PSEUDO_DISTRITO))
        n_m = 1 if mini else max(2, n_dist // 2)
        for i in range(n_m):
            _agrega_casilla(cat, rng, f"{eid}0000M{i + 1:02d}00", ei, pseudo, 0, 1, rng.randint(400, 2200))
        _agrega_casilla(cat, rng, f"{eid}0000A0100", ei, pseudo, 0, 1, rng.randint(15, 140))
        if ei % 3 != 1:
            _agrega_casilla(cat, rng, f"{eid}0000P0100", ei, pseudo, 0, 1, rng.randint(40, 400))
        seccion = 0
        for d in range(n_dist):
            di = len(cat.distritos)
            cat.distritos.append((ei, f"{d + 1:02d}", cabeceras[d % len(cabeceras)]))
            for _ in range(max(3, round(por_distrito * rng.uniform(0.8, 1.2)))):
                seccion += 1
                _agrega_seccion(cat, rng, ei, di, 0, seccion)
    base = _NAC.lean
    leans = [tuple(max(3, int(b * rng.uniform(0.6, 1.45))) for b in base) for _ in cat.entidades]
    cat.lean = [tuple(max(3, int(b * rng.uniform(0.75, 1.3))) for b in leans[e]) for e, _, _ in cat.distritos]
    return cat


# --------------------------------------------------------------------------- one election


@dataclass
class _Contienda:
    """One candidaturas set (state, nation, entity or district) and the vote cells active in it."""

    clave: tuple[str, ...]  # leading candidaturas cells (ID_ESTADO, ID_DISTRITO_...)
    coaliciones: tuple[bool, ...]
    ci: bool
    filas: list[tuple[str, ...]] = field(default_factory=list)
    celdas_combo: tuple[bool, ...] = ()  # per combination column: does its coalition run here

    def __post_init__(self) -> None:
        self.celdas_combo = tuple(a for a, c in zip(self.coaliciones, COALICIONES, strict=True) for _ in _combos(c))


@dataclass
class _Eleccion:
    spec: _EleccionSpec
    columnas_voto: list[str]
    tiene_ci: bool
    casillas: array  # catalogue indices in this election, CLAVE order
    slot: array  # corte in which the acta first appears (== cortes: never)
    estado: array  # _LIMPIA .. _SIN_ACTA
    total: array  # votes cast in the acta (before any illegible cell); the row is rebuilt from it
    contiendas: list[_Contienda]
    contienda_de: Callable[[int], int]  # casilla -> contienda index
    fuera: list[tuple[int, int]]  # fuera de catálogo rows: (slot, entity)
    por_slot: list[list[int]]  # per slot: captured, counted, inconsistent, LN, C_CS, S_CS, fuera


def _curva(cortes: int) -> list[float]:
    """p_k: share of actas captured by corte k (logistic in run time, 0.95 at the last corte)."""
    a, c = 8.0, 0.4

    def s(x: float) -> float:
        return 1.0 / (1.0 + math.exp(-a * (x - c)))

    lo, hi = s(0.0), s(1.0)
    return [_ARRIBO_FINAL * (s((k + 1) / cortes) - lo) / (hi - lo) for k in range(cortes)]


def _nombre(rng: random.Random) -> str:
    return f"{rng.choice(_NOMBRES)} {rng.choice(_APELLIDOS)} {rng.choice(_APELLIDOS)}"


def _filas_candidaturas(rng: random.Random, spec: _EleccionSpec, cont: _Contienda, apodo: bool) -> None:
    suplente = "CANDIDATURA_SUPLENTE" in spec.cand_cols

    def fila(codigo: str, nombre: str, sup: str = "") -> None:
        cont.filas.append(cont.clave + (codigo, nombre) + ((sup,) if suplente else ()))

    en_coalicion: set[str] = set()
    for activa, coal in zip(cont.coaliciones, COALICIONES, strict=True):
        if activa:
            fila("SUM-" + "-".join(coal), _nombre(rng), _nombre(rng) if suplente else "")
            en_coalicion.update(coal)
    for p in PARTIDOS:
        if p in en_coalicion:
            fila(p, "")  # member party's own row: no name of its own
        else:
            nombre = _NOMBRE_APODO if apodo and p == "MC" else _nombre(rng)
            fila(p, nombre, _nombre(rng) if suplente else "")
    if cont.ci:
        fila("CI1", _NOMBRE_CI, _nombre(rng) if suplente else "")
    fila("CNR", "Candidaturas no registradas")
    fila("NULOS", "Votos nulos")


def _eleccion(cat: _Catalogo, spec: _EleccionSpec, semilla: int, cortes: int) -> _Eleccion:
    rng = random.Random(f"{semilla}:eleccion:{spec.codigo}")
    escala = cat.escala
    # Contests: which candidaturas set a casilla votes in.
    if spec.contienda == "distrito":
        reales = [i for i, d in enumerate(cat.distritos) if d[1] != "00"]
        # The CI runs in exactly one district, chosen from the seed.
        ci_en = reales[rng.randrange(len(reales))] if spec.coalicion_parcial else -1
        idx = {}
        contiendas = []
        for di in reales:
            e, did, _ = cat.distritos[di]
            coal = (rng.random() < 0.85, rng.random() < 0.8) if spec.coalicion_parcial else (True, True)
            idx[di] = len(contiendas)
            contiendas.append(_Contienda((str(int(cat.entidades[e][0])), str(int(did))), coal, di == ci_en))
        dist = cat.dist

        def contienda_de(c: int) -> int:
            return idx[dist[c]]
    elif spec.contienda == "entidad":
        contiendas = [_Contienda((str(int(eid)),), (True, True), False) for eid, _ in cat.entidades]
        ent = cat.ent

        def contienda_de(c: int) -> int:
            return ent[c]
    else:
        clave = ("5",) if spec.contienda == "estado" else ()
        contiendas = [_Contienda(clave, (True, True), False)]

        def contienda_de(c: int) -> int:
            return 0
    for i, cont in enumerate(contiendas):
        _filas_candidaturas(rng, spec, cont, apodo=(i == min(1, len(contiendas) - 1)))
    hay_ci = any(c.ci for c in contiendas)

    columnas = list(PARTIDOS) + [x for c in COALICIONES for x in _combos(c)]
    if hay_ci:
        columnas.append("CAND_IND_1")
    columnas += ["NO_REGISTRADAS", "NULOS"]

    casillas = array("l", (i for i, k in enumerate(cat.clave) if spec.remotos or k[6] not in "MAP"))
    curva = _curva(cortes)
    n = len(casillas)
    slot = array("H", bytes(2 * n))
    estado = array("B", bytes(n))
    totales = array("l", [0]) * n
    por_slot = [[0] * 7 for _ in range(cortes + 1)]
    for j, c in enumerate(casillas):
        # Actas of one casilla travel in one package: close arrival draws across elections.
        u = cat.arribo[c] + (rng.random() - 0.5) * 0.03
        s = bisect.bisect_right(curva, u)
        slot[j] = s
        r = rng.random()
        tipo = cat.clave[c][6]
        if r < 0.010:
            st = _SIN_ACTA
        elif r < 0.022:
            st = _TODOS
        elif r < 0.025 and tipo not in "SMAP":
            st = _EXCEDE
        elif r < 0.065:
            st = _ALGUN
        else:
            st = _LIMPIA
        estado[j] = st
        # Not every voter marks every ballot: the per-election total is a little below turnout.
        total = int(cat.votantes[c] * (1.0 - rng.random() * 0.012))
        if st == _ALGUN:
            cont = contiendas[contienda_de(c)]
            d = _semilla_acta(semilla, spec, cat, c)
            votos = _repartir(total, cat.lean[cat.dist[c]], cont, hay_ci, d)
            calc = total - (votos[_celda_ilegible(votos, d)] or 0)
        else:
            calc = total
        totales[j] = total
        acc = por_slot[s]
        acc[0] += 1
        if _CONTADA[st]:
            acc[1] += 1
            acc[3] += cat.ln[c]
            acc[4] += calc
            if tipo != "S":
                acc[5] += calc
        elif st in (_TODOS, _EXCEDE):
            acc[2] += 1
    fuera = []
    for _ in range(escala.n_fuera_catalogo):
        s = bisect.bisect_right(curva, rng.random() * _ARRIBO_FINAL)
        fuera.append((s, rng.randrange(len(cat.entidades))))
        por_slot[s][6] += 1
    # Sorted by slot so each corte writes the ones already received, in arrival order.
    fuera.sort()
    return _Eleccion(spec, columnas, hay_ci, casillas, slot, estado, totales, contiendas,
                     contienda_de, fuera, por_slot)


def _semilla_acta(semilla: int, spec: _EleccionSpec, cat: _Catalogo, c: int) -> bytes:
    """64 deterministic bytes per acta: votes, times and markers come from them (no RNG state)."""
    return hashlib.blake2b(f"{semilla}:{spec.codigo}:{cat.clave[c]}".encode(), digest_size=64).digest()


def _repartir(total: int, lean: tuple[int, ...], cont: _Contienda, hay_ci: bool, d: bytes) -> list[int | None]:
    """Split ``total`` votes over the vote columns (None = cell not in this contest); sums to total."""
    nulos = total * (12 + d[0] % 36) // 1000
    cnr = d[1] % 4 if total >= 40 else 0
    # Combination marks are rare: 0-2 per combination where the coalition runs, fewer in small casillas.
    combos: list[int | None] = [((b % 9) // 4 if b < 2 * total else 0) if a else None
                                for a, b in zip(cont.celdas_combo, d[2:10], strict=False)]
    ci: int | None = None
    if hay_ci and cont.ci:
        ci = total * (d[18] % 70) // 1000
    resto = total - nulos - cnr - sum(x for x in combos if x) - (ci or 0)
    if resto < 0:  # tiny casillas: keep only parties and nulos
        combos = [None if x is None else 0 for x in combos]
        cnr = 0
        ci = None if ci is None else 0
        resto = total - nulos
    pesos = [w * (256 + b) for w, b in zip(lean, d[10:17], strict=False)]
    suma = sum(pesos)
    out: list[int | None] = [resto * w // suma for w in pesos]
    out[pesos.index(max(pesos))] += resto - sum(out)  # type: ignore[operator]
    out += combos
    if hay_ci:
        out.append(ci)
    out.append(cnr)
    out.append(nulos)
    return out


def _celda_ilegible(votos: list[int | None], d: bytes) -> int:
    activas = [i for i, v in enumerate(votos) if v is not None]
    return activas[d[28] % len(activas)]


# --------------------------------------------------------------------------- writing


def _pct(num: int, den: int) -> str:
    """100 * num / den truncated (not rounded) to 4 decimals, exactly: integer floor, then Decimal."""
    if den <= 0:
        return ""
    return str(Decimal(num * 1_000_000 // den).scaleb(-4).quantize(Decimal("0.0001")))


class _Reloj:
    """Formats seconds relative to the first corte as ``dd/mm/yyyy HH:MM:SS``.

    Called three times per acta: a cached ``dd/mm/yyyy HH:MM:`` prefix per minute keeps it to a
    divmod and a concatenation instead of a datetime per call."""

    _SEG = tuple(f"{i:02d}" for i in range(60))

    def __init__(self, inicio: datetime) -> None:
        self.dia0 = inicio.date()
        self.inicio = inicio.replace(second=0, microsecond=0)
        self._min: dict[int, str] = {}

    def __call__(self, seg: int) -> str:
        m, s = divmod(seg, 60)
        pref = self._min.get(m)
        if pref is None:
            pref = self._min[m] = f"{self.inicio + timedelta(minutes=m):%d/%m/%Y %H:%M:}"
        return pref + self._SEG[s]


def _resumen(el: _Eleccion, k: int) -> list[str]:
    cap = cont = inc = ln = tc = ts = fc = 0
    for acc in el.por_slot[: k + 1]:
        cap += acc[0]
        cont += acc[1]
        inc += acc[2]
        ln += acc[3]
        tc += acc[4]
        ts += acc[5]
        fc += acc[6]
    esp = len(el.casillas)
    return [str(esp), str(cap + fc), str(fc), str(cap), _pct(cap, esp), str(cont), _pct(cont, esp),
            _pct(inc, esp), str(cap - cont), str(ln), str(tc), str(ts), _pct(ts, ln)]


def _sin_comillas(*textos: str) -> None:
    """Acta rows are joined with "," (csv.writer was half the national run time): this is sound only
    because no cell can need quoting. Cells are digits, hex, fixed markers and these catalogue names."""
    for t in textos:
        if any(ch in t for ch in ',"\r\n'):
            raise AssertionError(f"catalogue name needs CSV quoting: {t!r}")


def _escribe_filas(txt: io.TextIOWrapper, cat: _Catalogo, el: _Eleccion, k: int, semilla: int, reloj: _Reloj,
                   previas: Iterator[str] | None) -> None:
    """Write the acta rows of corte k. With ``previas`` (corte k-1's rows, same order), only actas
    first captured in k are rendered; every other line is copied: captured rows never change and
    uncaptured ones are the same, so each acta is generated once per run, not once per corte."""
    spec = el.spec
    obs_limpia = cat.escala.obs_limpia
    ta = spec.tipo_acta
    ta2 = f"{int(ta):02d}"
    # Uncaptured: empty counts, votes and totals, then LISTA_NOMINAL, then an empty trailer.
    vacios = "," * (4 + len(el.columnas_voto) + 2)
    cola = "," * len(_COLA) + "\n"
    geo_arr = cat.muni if spec.geo == "municipio" else cat.dist
    unidades = cat.municipios if spec.geo == "municipio" else cat.distritos
    _sin_comillas(*(g[2] for g in unidades), *(e[1] for e in cat.entidades))
    geo = [f"{g[1]},{g[2]}" for g in unidades]
    ents = [f"{e[0]},{e[1]}" for e in cat.entidades]
    claves, ent, ubic, lns = cat.clave, cat.ent, cat.ubic, cat.ln
    slot, estado, total = el.slot, el.estado, el.total
    escribe = txt.write
    for j, c in enumerate(el.casillas):
        s = slot[j]
        if previas is not None:
            linea = next(previas)
            if s != k:
                escribe(linea)
                continue
        cl = claves[c]
        ident = (f"{cl},{cl}{ta2},{ents[ent[c]]},{geo[geo_arr[c]]},{cl[2:6]},{cl[7:9]},{cl[6]},{cl[9:11]},"
                 f"{ubic[c]},{ta},")
        if s > k:
            escribe(f"{ident}{vacios}{lns[c]}{cola}")
        else:
            celdas = _acta(cat, el, c, s, estado[j], total[j], semilla, reloj, obs_limpia)
            escribe(ident + ",".join(["" if x is None else str(x) for x in celdas]) + "\n")


def _tiempos(reloj: _Reloj, s: int, d: bytes) -> tuple[str, str, str]:
    """Collection, capture and verification times inside the slot's window (before its corte)."""
    paso = _MINUTOS_ENTRE_CORTES * 60
    hi = s * paso - 20
    lo = (s - 1) * paso if s > 0 else -100 * 60  # the first corte holds everything since ~18:20
    verif = lo + 1 + int.from_bytes(d[22:25], "big") % (hi - lo)
    captura = verif - 30 - d[25] * 4
    acopio = (captura - 60 - d[26] * 8) // 60 * 60  # operators log collection to the minute
    if d[30] == 0:  # ~0.4 %: an operator clock slip puts collection after capture
        acopio = captura + 60 * (1 + d[31] % 9)
    return reloj(acopio), reloj(captura), reloj(verif)


def _acta(cat: _Catalogo, el: _Eleccion, c: int, s: int, st: int, total: int, semilla: int, reloj: _Reloj,
          obs_limpia: str) -> list[str | int | None]:
    """The cells after the identity of a captured acta. Ints and None (empty) go to csv.writer as they
    are: it converts them in C, which is most of this function's budget at national scale."""
    spec = el.spec
    d = _semilla_acta(semilla, spec, cat, c)
    ln = cat.ln[c]
    acopio, captura, verif = _tiempos(reloj, s, d)
    origen, digit = ("CASILLA", "MOVIL") if d[27] % 5 == 0 else ("CATD", "ESCANER")
    if st == _SIN_ACTA:
        return [None] * (6 + len(el.columnas_voto)) + [ln, None, OBS_SIN_ACTA, 0, None, None, acopio,
                                                         None, None, None, None, None]
    codigo = hashlib.sha256(f"{semilla}|{spec.codigo}|{cat.clave[c]}{spec.tipo_acta}|imagen".encode()).hexdigest()
    cont = el.contiendas[el.contienda_de(c)]
    reps = d[19] % 13
    mec = "F" if d[29] % 7 else "D"
    lean = cat.lean[cat.dist[c]]
    if st == _TODOS:
        votos: list = _repartir(1, lean, cont, el.tiene_ci, d)
        for i, v in enumerate(votos):
            if v is not None:
                votos[i] = "ILEGIBLE" if d[32 + i % 32] & 1 else "SIN DATO"
        return ["ILEGIBLE", "SIN DATO", reps, "ILEGIBLE", *votos, "SIN DATO", 0, ln, reps, OBS_TODOS, 0, mec,
                codigo, acopio, captura, verif, origen, digit, "ACTA PREP"]
    if st == _EXCEDE:
        total = ln + 5 + d[21] % 60
    votos = _repartir(total, lean, cont, el.tiene_ci, d)
    asentado = calculado = total
    obs = obs_limpia
    contabilizada = 1
    if st == _ALGUN:
        i = _celda_ilegible(votos, d)
        calculado = total - (votos[i] or 0)
        votos[i] = "ILEGIBLE" if d[29] & 1 else "SIN DATO"
        obs = OBS_ALGUN
    elif st == _EXCEDE:
        obs = OBS_EXCEDE
        contabilizada = 0
    elif d[20] < 4:  # ~1.5 %: the written total is off by a few from the sum of the cells
        asentado = max(0, total + (1 + d[21] % 5) * (1 if d[21] & 0x80 else -1))
    # Ballots received: the lista nominal (750 in special casillas) plus two per party representative.
    boletas = (750 if ln == 0 else ln) + 2 * len(PARTIDOS)
    return [max(0, boletas - total), max(0, total - reps), reps, total, *votos, asentado, calculado, ln, reps,
            obs, contabilizada, mec, codigo, acopio, captura, verif, origen, digit, "ACTA PREP"]


def _filas_fuera(cat: _Catalogo, el: _Eleccion, k: int, semilla: int, reloj: _Reloj) -> Iterator[list[str]]:
    # Everything between ENTIDAD and OBSERVACIONES is "-": 8 identity cells, counts, votes, totals, reps.
    n_guion = 8 + len(_CONTEOS) + len(el.columnas_voto) + len(_TOTALES) + 1
    for n, (s, e) in enumerate(el.fuera):
        if s > k:
            break
        d = hashlib.blake2b(f"{semilla}:{el.spec.codigo}:fuera:{n}".encode(), digest_size=64).digest()
        codigo = hashlib.sha256(f"{semilla}|{el.spec.codigo}|fuera|{n}|imagen".encode()).hexdigest()
        acopio, _, _ = _tiempos(reloj, s, d)
        eid, enom = cat.entidades[e]
        yield (["-", "-", eid, enom] + ["-"] * n_guion
               + [OBS_FUERA, cat.escala.contabilizada_fc, "F", codigo, acopio, "-", "-", "CATD", "ESCANER", "ACTA PREP"])


def _zinfo(nombre: str, cuando: datetime, nivel: int | None) -> zipfile.ZipInfo:
    """A member with fixed metadata: its time is the corte's, never the clock's."""
    zi = zipfile.ZipInfo(nombre, date_time=cuando.timetuple()[:6])
    zi.create_system = 3  # ZipInfo defaults to the host OS: pin it so bytes do not depend on the machine
    zi.external_attr = 0o644 << 16
    if nivel is None:
        zi.compress_type = zipfile.ZIP_STORED
    else:
        zi.compress_type = zipfile.ZIP_DEFLATED
        # ZipFile.open(zinfo, "w") takes the level from the ZipInfo; Python 3.13 also names it compress_level.
        zi._compresslevel = nivel  # type: ignore[attr-defined]
    return zi


def _csv_texto(filas: Sequence[Sequence[str]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerows(filas)
    return buf.getvalue().encode("utf-8")


def _nombres_csv(esc: _Escala, spec: _EleccionSpec, anio: int) -> tuple[str, str]:
    pref = f"{esc.ambito}_" if esc.ambito else ""
    return f"{pref}{spec.codigo}_{anio}.csv", f"{pref}{spec.codigo}_CANDIDATURAS_{anio}.csv"


def _zip_eleccion(cat: _Catalogo, el: _Eleccion, k: int, corte: datetime, semilla: int, reloj: _Reloj,
                  previo: bytes | None) -> bytes:
    """The inner zip of one election for corte k; ``previo`` is the same election's inner zip of k-1."""
    esc = cat.escala
    spec = el.spec
    nombre_csv, nombre_cand = _nombres_csv(esc, spec, reloj.dia0.year)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(_zinfo("LEEME.txt", corte, 1), _LEEME.encode("latin-1"))
        with contextlib.ExitStack() as pila:
            raw = pila.enter_context(z.open(_zinfo(nombre_csv, corte, 1), "w"))
            txt = pila.enter_context(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
            previas: Iterator[str] | None = None
            if previo is not None:
                zprev = pila.enter_context(zipfile.ZipFile(io.BytesIO(previo)))
                # A C-level buffered reader: ZipExtFile.readline alone is slow Python code.
                crudo = io.BufferedReader(zprev.open(nombre_csv), 1 << 20)  # type: ignore[arg-type]
                previas = iter(pila.enter_context(io.TextIOWrapper(crudo, encoding="utf-8", newline="")))
                for _ in range(7 if esc.separar_bloques else 5):
                    next(previas)  # the header block is rewritten every corte
            w = csv.writer(txt, lineterminator="\n")
            w.writerow([spec.nombre])
            w.writerow([f"{corte:%d/%m/%Y %H:%M} (UTC-6)"])
            if esc.separar_bloques:
                w.writerow([])
            w.writerow(RESUMEN)
            w.writerow(_resumen(el, k))
            if esc.separar_bloques:
                w.writerow([])
            w.writerow([*_ident_cols(cat, spec), *_CONTEOS, *el.columnas_voto, *_TOTALES, *_COLA])
            _escribe_filas(txt, cat, el, k, semilla, reloj, previas)
            w.writerows(_filas_fuera(cat, el, k, semilla, reloj))
        cand = [list(spec.cand_cols)] + [list(f) for cont in el.contiendas for f in cont.filas]
        z.writestr(_zinfo(nombre_cand, corte, 1), _csv_texto(cand))
    return buf.getvalue()


def _ident_cols(cat: _Catalogo, spec: _EleccionSpec) -> list[str]:
    esc = cat.escala
    return ["CLAVE_CASILLA", "CLAVE_ACTA", esc.id_entidad_col, esc.nombre_entidad_col, *spec.geo_cols, "SECCION",
            "ID_CASILLA", "TIPO_CASILLA", "EXT_CONTIGUA", "UBICACION_CASILLA", "TIPO_ACTA"]


def _nombre_paquete(esc: _Escala, corte: datetime, eleccion: str | None = None) -> str:
    partes = [f"{corte:%Y%m%d_%H%M}", "PREP"]
    if eleccion:
        partes.append(eleccion)
    if esc.ambito:
        partes.append(esc.ambito)
    return "_".join(partes) + ".zip"


def simulate(outdir: Path, escala: str, cortes: int, semilla: int, *, inicio: datetime | None = None,
             progress: Progreso | None = None) -> list[Path]:
    """Write ``cortes`` simulacro packages into ``outdir`` and return their paths in corte order.

    ``inicio`` is the first corte (default: election night 20:00, 2023-06-04 for coahuila,
    2024-06-02 for nacional), read as UTC-6 wall time; an aware datetime is converted to UTC-6.
    ``progress(done, total, path)`` is called after each package.
    """
    if escala not in ESCALAS:
        raise ConfigError(f"escala desconocida {escala!r}: use una de {', '.join(ESCALAS[:2])}")
    if cortes < 1:
        raise ConfigError(f"--cortes debe ser al menos 1 (recibido {cortes})")
    if escala == "coahuila":
        cat = _catalogo_coahuila(semilla)
        specs = _ELECCIONES["coahuila"]
    else:
        cat = _catalogo_nacional(semilla, mini=escala == "nacional-mini")
        specs = _ELECCIONES["nacional"]
    esc = cat.escala
    if inicio is None:
        inicio = esc.inicio
    elif inicio.tzinfo is not None:
        inicio = inicio.astimezone(UTC_6).replace(tzinfo=None)
    inicio = inicio.replace(second=0, microsecond=0)
    elecciones = [_eleccion(cat, spec, semilla, cortes) for spec in specs]
    reloj = _Reloj(inicio)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    rutas: list[Path] = []
    # Only the previous corte's inner zips are kept (compressed): memory does not grow with cortes.
    previos: dict[str, bytes] = {}
    for k in range(cortes):
        corte = inicio + timedelta(minutes=_MINUTOS_ENTRE_CORTES * k)
        ruta = outdir / _nombre_paquete(esc, corte)
        tmp = ruta.with_name(ruta.name + ".part")
        # Inner zips are already deflated: storing them in the outer zip saves time, loses nothing.
        with zipfile.ZipFile(tmp, "w") as outer:
            for el in elecciones:
                datos = _zip_eleccion(cat, el, k, corte, semilla, reloj, previos.get(el.spec.codigo))
                previos[el.spec.codigo] = datos
                outer.writestr(_zinfo(_nombre_paquete(esc, corte, el.spec.codigo), corte, None), datos)
        tmp.replace(ruta)  # a watcher never sees a half-written package
        rutas.append(ruta)
        if progress is not None:
            progress(k + 1, cortes, ruta)
    return rutas
