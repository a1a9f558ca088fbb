"""What newsrooms and readers ask for beyond the results pages (FIELD-NOTES): embeds, CSV downloads, a feed.

* ``/embed/<eleccion>/``: a light widget for partners' iframes (the web server lets any site frame
  ``/embed/``), and ``/embed/`` which prints the iframe code to paste.
* ``/datos/<eleccion>_<corte>.csv``: exactly the figures the election page shows, by unit, with the corte
  in the file name (so a download is never mistaken for a newer one).
* ``/feed.xml``: an Atom feed whose entry changes with every corte (and with an aviso or final).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable, Iterator
from typing import Any
from xml.sax.saxutils import escape

from .model import Eleccion, pct
from .reader import Corte


def csv_rows(e: Eleccion) -> Iterator[list[Any]]:
    """Per-unit results of one election, in the order and with the contenders the pages show."""
    state = e.resultados_estatales()
    header = [
        "ELECCION",
        "TIPO",
        "ID",
        "NOMBRE",
        "ACTAS_ESPERADAS",
        "ACTAS_CAPTURADAS",
        "ACTAS_CONTABILIZADAS",
        "LISTA_NOMINAL_ACTAS_CONTABILIZADAS",
    ]
    if e.por_unidad:
        header += ["CANDIDATURA_" + str(i + 1) for i in range(max(len(u.contendientes) for u in e.unidades.values()))]
    else:
        header += [r.contendiente.codigo for r in state]
    header += ["NO_REGISTRADOS", "NULOS", "TOTAL_VOTOS"]
    yield header
    for u in e.unidades.values():
        c = u.cifras
        row: list[Any] = [e.codigo, u.tipo, u.id, u.nombre, c.esperadas, c.capturadas, c.contabilizadas, c.lista_nominal]
        if e.por_unidad:
            res = e.resultados(c, u.contendientes)
            row += [f"{r.contendiente.codigo}: {r.contendiente.nombre} = {r.votos}" for r in res]
            row += [""] * (len(header) - 3 - len(row))
        else:
            by = {r.contendiente.clave: r.votos for r in e.resultados(c, u.contendientes)}
            row += [by.get(r.contendiente.clave, 0) for r in state]
        row += [c.no_registrados, c.nulos, c.total_votos]
        yield row


def election_csv(e: Eleccion, corte: Corte) -> bytes:
    buf = io.StringIO()
    buf.write(f"# {e.nombre} · corte {corte.texto} · resultados preliminares, sin efectos jurídicos\r\n")
    writer = csv.writer(buf)
    for row in csv_rows(e):
        writer.writerow(row)
    # BOM: spreadsheets on Windows otherwise read accents as Latin-1.
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def csv_path(e: Eleccion, corte: Corte) -> str:
    return f"datos/{e.slug}_{corte.id}.csv"


def atom_feed(
    elections: list[Eleccion], corte: Corte, url: Callable[[str], str], base_url: str, titulo: str,
    aviso: str | None, final: bool,
) -> bytes:
    origin = base_url.rstrip("/")
    lines = []
    for e in elections:
        top = e.resultados_estatales()[:3]
        lead = "; ".join(f"{r.contendiente.nombre} {r.porcentaje if r.porcentaje is not None else '—'} %" for r in top)
        actas = pct(e.cifras.contabilizadas, e.cifras.esperadas)
        lines.append(f"{e.nombre}: actas contabilizadas {actas if actas is not None else '—'} % · {lead}")
    summary = "\n".join(lines)
    if aviso:
        summary = f"AVISO: {aviso}\n{summary}"
    state = "final" if final else "preliminar"
    # The entry id changes with the corte, the aviso and finality, so feed readers notify each of them.
    aviso_tag = hashlib.sha256((aviso or "").encode()).hexdigest()[:8]
    entry_id = f"{origin}{url('')}#corte-{corte.id}-{state}-{aviso_tag}"
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom">\n'
        f"<title>{escape(titulo)}</title>\n"
        f'<link href="{escape(origin + url(""))}"/>\n'
        f'<link rel="self" href="{escape(origin + url("feed.xml"))}"/>\n'
        f"<id>{escape(origin + url(''))}</id>\n"
        f"<updated>{corte.iso}</updated>\n"
        "<entry>\n"
        f"<title>Corte {escape(corte.texto)}{' · resultados finales' if final else ''}</title>\n"
        f'<link href="{escape(origin + url(""))}"/>\n'
        f"<id>{escape(entry_id)}</id>\n"
        f"<updated>{corte.iso}</updated>\n"
        f"<summary>{escape(summary)}</summary>\n"
        "</entry>\n"
        "</feed>\n"
    ).encode()
