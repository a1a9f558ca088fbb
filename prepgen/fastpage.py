"""The section, unit and candidate pages of the bundled zocalo theme, written straight to minified bytes.

A national build has ~213,000 section pages. Through jinja2 + minify-html each costs ~1.5 ms (half of it
the minifier re-parsing what the template just printed); this module writes the same bytes directly, in
~0.1 ms. The ~1,900 unit and candidate pages are rebuilt every corte: their shells (the page around the
long list that render.py prints and splices in) come from here too. It is an optimisation of three
templates, not a second theme:

* a page kind is printed here only while ``<kind>.html``, ``base.html`` and ``_macros.html`` resolve to
  exactly the sources it was written from (:data:`TEMPLATES_SHA256`); a theme that overrides any of them,
  or an edited template, renders through jinja2 + minify-html as before (tests/test_render_fast.py tells
  whoever edits the templates to update this module and the hash);
* every value it prints must be "plain" (no characters that minify-html would re-encode, no whitespace it
  would collapse, no empty attribute it would drop); otherwise :class:`NotPlain` is raised and the caller
  renders that page through jinja2 + minify-html. So the bytes are those of the reference path by
  construction, and the tests compare both paths page by page on real and simulated packages.

Minify-html facts this relies on (checked by those tests): attributes are printed quoted ones first, then
unquoted ones, each group sorted by name; a value is unquoted when it has no whitespace, quotes, ``=``,
``<``, ``>`` or backtick; optional opening tags (``<head>``) are dropped; whitespace between block and table
elements is removed.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from .model import pct

# Per page kind, sha256 over the template sources this module reproduces (template_names(kind), in that
# order, joined by NUL).
TEMPLATES_SHA256 = {
    "seccion": "801d2bbe096fd41d5657a9254aa4e9854e1103ec7f43eba540d6e2599a58ce87",
    "ambito": "fd6f53bfdabe8767d7fcc0a168a71adf909a9374e641d8fe2310f328765c695b",
    "candidatura": "b37208f51c19ba254895f0018e3fb61b23c585873de0562b4c3a6e86caf35e3c",
}


def template_names(kind: str) -> tuple[str, str, str]:
    return (f"{kind}.html", "base.html", "_macros.html")

_UNQUOTED = re.compile(r"[^\s\"'=<>`&]+")
# Has a space and nothing minify-html would re-encode; single quotes stay as they are inside double quotes.
_QUOTED = re.compile(r"[^\"<>&\t\n\r\f\v]* [^\"<>&\t\n\r\f\v]*")
# Quotes are fine in text: jinja2 escapes them to &#34;/&#39; and minify-html decodes them back.
_NOT_PLAIN_TEXT = re.compile(r"[&<>\t\n\r\f\v]|  |^ | $")


class NotPlain(Exception):
    """A value the fast path cannot print byte-identically: render this page through jinja2."""


def templates_digest(sources: list[str]) -> str:
    return hashlib.sha256("\0".join(sources).encode()).hexdigest()


def attr(value: str) -> str:
    """An attribute value as minify-html prints it (unquoted form only: callers fix the attribute order)."""
    if _UNQUOTED.fullmatch(value):
        return value
    raise NotPlain(value)


def qattr(value: str) -> str:
    """An attribute value that must come out double-quoted (it has a space)."""
    if _QUOTED.fullmatch(value):
        return f'"{value}"'
    raise NotPlain(value)


def text(value: str) -> str:
    """Text content that minify-html leaves alone (non-empty, nothing to re-encode or collapse)."""
    if value and not _NOT_PLAIN_TEXT.search(value):
        return value
    raise NotPlain(value)


def text_or_empty(value: str) -> str:
    """Text between two tags, where an empty value prints as nothing in both paths."""
    return text(value) if value else ""


def _n(v: int | None) -> str:
    return "—" if v is None else f"{v:,}"


def _pctj(v: float | Decimal | None) -> str:
    return "—" if v is None else f"{v:.4f} %"


def _party_class(partidos: list[str] | tuple[str, ...]) -> str:
    return "p-" + (partidos[0] if partidos else "x").lower()


class FastPages:
    """Writes zocalo's pages. One per renderer; for section pages ``unit()`` once per unit and ``page()`` per
    section; ``shell()`` for a unit or candidate page around its list."""

    def __init__(
        self, *, base: str, titulo: str, institucion: str, static: dict[str, str], csp: str, legend: str,
        url: Callable[[str], str], aviso: str | None = None, final: bool = False, final_texto: str = "",
    ) -> None:
        self.url = url
        self.base = attr(base)
        titulo = text(titulo)
        # base.html's aviso block (section pages leave it out): None when a text is not plain.
        try:
            self.banners: str | None = (
                f'<div class="aviso aviso-final" role=status>{text_or_empty(final_texto)}</div>' if final else ""
            ) + (f"<div class=aviso role=alert>{text(aviso)}</div>" if aviso else "")
        except NotPlain:
            self.banners = None
        self.head = (
            "<!doctype html><html lang=es-MX><meta charset=utf-8>"
            '<meta content="width=device-width,initial-scale=1" name=viewport>'
            f"<meta content={qattr(csp)} http-equiv=Content-Security-Policy>"
            "<meta content=strict-origin-when-cross-origin name=referrer><title>"
        )
        self.title_end = f" · {titulo}</title>"
        self.links = (
            f"<link href={attr(static['style.css'])} rel=stylesheet>"
            f"<script defer src={attr(static['prep.js'])}></script></head>"
        )
        self.header = (
            f"<a class=saltar href=#contenido>Saltar al contenido</a><header class=cabecera><div class=marca>"
            f"<a href={self.base}>Zócalo</a><span class=seccion-diario>Elecciones · {titulo}</span></div>"
            f'<nav aria-label="Migas de pan" class=migas><a href={self.base}>Inicio</a> › '
        )
        self.footer_a = (
            f"</main><footer class=pie><p><strong>{text(legend)}</strong></p>"
            "<p>Fuente: Programa de Resultados Electorales Preliminares (PREP) de "
            f"{text(institucion)}. Corte: "
        )
        self.footer_b = (
            " (fecha, hora y zona horaria como las publica el PREP).</p>"
            "<p>Los porcentajes se calculan con cuatro decimales, truncados, sin redondeo. <a href="
        )
        self.footer_c = (
            f">Datos de esta página (JSON)</a> · <a href={attr(url('json/main.json'))}>main.json</a></p>"
            "</footer></body></html>"
        )

    def unit(self, e: Any, u: Any, contendientes: list[Any]) -> dict[str, str]:
        """The parts shared by every section page of one unit."""
        nombre = text(e.nombre)
        tipo = text(u.tipo.capitalize())
        uid = text(u.id)
        ths = "".join(
            f"<th class=num scope=col><abbr title={self._title(c.nombre)}>{text('-'.join(c.partidos))}"
            "</abbr></th>"
            for c in contendientes
        )
        return {
            "nombre": nombre,
            "migas": (
                f"<a href={attr(self.url(e.slug + '/'))}>{nombre}</a> › "
                f"<a href={attr(self.url(e.slug + '/' + u.tipo + '/' + u.id + '/'))}>{tipo} {uid}</a> › "
            ),
            "small": f" <small>{tipo} {uid} {text(u.nombre)}</small></h1>",
            "thead": (
                "<h2>Casillas y actas</h2><div class=tabla-ancha><table class=actas><caption>Actas de la sección "
            ),
            "thead2": (
                ": votos por candidatura, estado y código de integridad (SHA-256) de la imagen</caption>"
                f"<thead><tr><th scope=col>Casilla</th>{ths}<th class=num scope=col>No reg.</th>"
                "<th class=num scope=col>Nulos</th><th class=num scope=col>Total</th>"
                "<th class=num scope=col>Lista nominal</th><th scope=col>Estado</th>"
                "<th scope=col>Observaciones</th><th scope=col>SHA-256</th></tr></thead><tbody>"
            ),
        }

    @staticmethod
    def _title(value: str) -> str:
        # A lone attribute (no order to keep): minify-html quotes with whichever quote the value lacks.
        if _UNQUOTED.fullmatch(value):
            return value
        text(value)
        if '"' not in value:
            return f'"{value}"'
        if "'" not in value:
            return f"'{value}'"
        raise NotPlain(value)

    def page(
        self, parts: dict[str, str], sid: str, p: dict[str, Any], stamp: tuple[str, str, str], current_id: str,
        json_url: str, filas: list[dict[str, Any]],
    ) -> bytes:
        corte_id, corte_iso, corte_texto = stamp
        sid = text(sid)
        texto = text(corte_texto)
        out = self._top(
            f"{parts['nombre']} · Sección {sid}", texto, corte_id, corte_iso, current_id,
            f"{parts['migas']}<span>Sección {sid}</span>", "",
            " <span class=nota>(corte en que cambiaron por última vez las cifras de esta sección)</span>",
        )
        out += [parts["nombre"], " · Sección ", sid, parts["small"]]
        _avance(out, p["actas"])
        _resultados(out, p, f"Votos por candidatura · sección {sid}")
        out += [parts["thead"], sid, parts["thead2"]]
        for a in filas:
            clave = attr(a["clave"])
            out += ["<tr id=", clave, "><th scope=row>", text(a["tipo"]), " ", text(a["id_casilla"])]
            ext = a["ext"]
            if ext and ext != "00":
                out += [" E", text(ext)]
            out += ["<small>", clave, "</small></th>"]
            for v in a["votos"]:
                out += ["<td class=num>", text(v), "</td>"]
            estado = a["estado"]
            out += [
                "<td class=num>", text(a["nr"]), "</td><td class=num>", text(a["nulos"]),
                "</td><td class=num>", text(a["total"]), "</td><td class=num>", text(a["ln"]),
                '</td><td><span class="estado estado-', attr(estado.replace(" ", "-")), '">', text(estado),
                "</span></td><td>", text_or_empty(a["obs"]), "</td><td class=sha><code>",
                text_or_empty(a["sha"]), "</code></td></tr>",
            ]
        out += ["</tbody></table></div>", self.footer_a, texto, self.footer_b, attr(json_url), self.footer_c]
        return "".join(out).encode()

    def _top(
        self, title: str, texto: str, corte_id: str, corte_iso: str, current_id: str, migas: str, banners: str,
        corte_extra: str,
    ) -> list[str]:
        """base.html up to the page's <h1>; ``migas`` after "Inicio ›", ``corte_extra`` between the stamp and the
        script's placeholder (at least the space minify-html keeps there)."""
        return [
            self.head, title, self.title_end,
            "<meta content=", qattr(f"Resultados preliminares (PREP) · corte {texto}"), " name=description>",
            self.links,
            "<body data-corte-texto=", qattr(texto), " data-base=", self.base, " data-corte=", attr(corte_id),
            " data-ultimo=", attr(current_id), ">",
            self.header, migas, "</nav></header>", banners,
            '<div class="aviso aviso-js" hidden id=aviso-js role=alert></div><main id=contenido>'
            "<p class=corte>Corte de información: <time datetime=", attr(corte_iso), ">", texto, "</time>",
            corte_extra, "<span class=corte-js hidden id=corte-js></span></p><h1>",
        ]

    def shell(self, kind: str, ctx: dict[str, Any], hole: str) -> bytes:
        """A unit (``ambito``) or candidate (``candidatura``) page with ``hole`` where its list goes; ``ctx``
        is what the template gets."""
        if self.banners is None:
            raise NotPlain("aviso")
        e, p, corte = ctx["e"], ctx["p"], ctx["corte"]
        nombre_e = text(e.nombre)
        texto = text(corte.texto)
        if kind == "ambito":
            u = ctx["u"]
            tipo, uid, unombre = text(u.tipo.capitalize()), text(u.id), text(u.nombre)
            miga = f"{tipo} {uid}"
            title = f"{nombre_e} · {miga} {unombre}"
        else:
            miga = text(ctx["c"].nombre)
            title = f"{miga} · {nombre_e}"
        out = self._top(
            title, texto, corte.id, corte.iso, ctx["current"].id,
            f"<a href={attr(self.url(e.slug + '/'))}>{nombre_e}</a> › <span>{miga}</span>", self.banners, " ",
        )
        if kind == "ambito":
            out += [nombre_e, " · <span class=tipo>", tipo]
            out += ["</span> ", unombre] if u.nombre.startswith(u.id) else [" ", uid, "</span> ", unombre]
            out.append("</h1>")
            _avance(out, p["actas"])
            out += [
                "<dl class=cifras><div><dt>Lista nominal de actas contabilizadas</dt><dd>", _n(p["lista_nominal"]),
                "</dd></div><div><dt>Participación ciudadana</dt><dd>", _pctj(p["participacion"]),
                "</dd></div><div><dt>Total de votos</dt><dd>", _n(p["total_votos"]), "</dd></div></dl>",
            ]
            _resultados(out, p, f"Votos por candidatura · {text(u.tipo)} {uid} · corte {texto}")
            out += ["<h2>Secciones</h2><ul class=secciones>", hole, "</ul>"]
        else:
            partidos = p["partidos"]
            out += [
                miga, ' <small><span class="chip ', attr(_party_class(partidos)), '">',
                text_or_empty(" · ".join(partidos)), "</span></small></h1><p class=nota>", nombre_e,
            ]
            amb = p["ambito"]
            if amb:
                out += [" · ", text(amb["tipo"].capitalize()), " ", text(amb["id"]), " ", text(amb["nombre"])]
            ambitos = p["ambitos"]
            out += [
                ". Recibe los votos de las columnas ", text(", ".join(p["columnas"])), ".</p>"
                "<dl class=cifras><div><dt>Votos</dt><dd>", _n(p["votos"]),
                "</dd></div><div><dt>Porcentaje</dt><dd>", _pctj(p["porcentaje"]), "</dd></div></dl>"
                "<table class=resultados><caption>Votos de ", miga, " por ",
                text(ambitos[0]["tipo"]) if ambitos else "ámbito", " · corte ", texto,
                "</caption><thead><tr><th scope=col>Ámbito</th><th class=num scope=col>Votos</th>"
                "<th class=num scope=col>%</th></tr></thead><tbody>", hole, "</tbody></table>",
            ]
        out += [self.footer_a, texto, self.footer_b, attr(ctx["json_url"]), self.footer_c]
        return "".join(out).encode()


def _avance(out: list[str], actas: dict[str, Any]) -> None:
    pc = actas["porcentaje_contabilizadas"]
    out += [
        "<dl class=avance><div><dt>Actas esperadas</dt><dd>", _n(actas["esperadas"]),
        "</dd></div><div><dt>Actas capturadas</dt><dd>", _n(actas["capturadas"]), " <small>(",
        _pctj(actas["porcentaje_capturadas"]), ")</small></dd></div><div><dt>Actas contabilizadas</dt><dd>",
        _n(actas["contabilizadas"]), " <small>(", _pctj(pc), ")</small></dd></div></dl>",
        '<svg aria-label="Actas contabilizadas: ', _pctj(pc),
        '" viewbox="0 0 100 3" class=barra-avance preserveaspectratio=none role=img>'
        "<rect class=fondo height=3 width=100></rect><rect class=lleno height=3 width=",
        str(pc or 0), "></rect></svg>",
    ]


def _resultados(out: list[str], p: dict[str, Any], caption: str) -> None:
    total, nulos, nr = p["total_votos"], p["nulos"], p["no_registrados"]
    out += [
        "<table class=resultados><caption>", caption, "</caption><thead><tr><th scope=col>Candidatura</th>"
        "<th scope=col>Partidos</th><th class=num scope=col>Votos</th><th class=num scope=col>%</th>"
        "<th scope=col><span class=sr>Barra</span></th></tr></thead><tbody>",
    ]
    for c in p["candidaturas"]:
        cls = attr(_party_class(c["partidos"]))
        nombre = text(c["nombre"])
        link = f"<a href={attr(c['html'])}>{nombre}</a>" if c["html"] else nombre
        porcentaje = c["porcentaje"]
        out += [
            "<tr><th scope=row>", link, '</th><td><span class="chip ', cls, '">',
            text(" · ".join(c["partidos"])), "</span></td><td class=num>", _n(c["votos"]),
            "</td><td class=num>", _pctj(porcentaje),
            '</td><td class=barra><svg viewbox="0 0 100 10" aria-hidden=true preserveaspectratio=none>'
            "<rect class=", cls, " height=10 width=", str(porcentaje or 0), "></rect></svg></td></tr>",
        ]
    out += [
        "<tr><th scope=row>Candidaturas no registradas</th><td></td><td class=num>", _n(nr),
        "</td><td class=num>", _pctj(pct(nr, total)), "</td><td></td></tr>"
        "<tr><th scope=row>Votos nulos</th><td></td><td class=num>", _n(nulos), "</td><td class=num>",
        _pctj(pct(nulos, total)), "</td><td></td></tr></tbody><tfoot><tr><th scope=row>Total</th><td></td>"
        "<td class=num>", _n(total), "</td><td class=num>", "100.0000 %" if total else "—",
        "</td><td></td></tr></tfoot></table>",
    ]
