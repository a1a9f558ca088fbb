from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).parent / "data"
CAMPECHE = sorted((DATA / "campeche2021").glob("*.zip"))
CAMPECHE_ZERO = DATA / "campeche2021_inicial" / "20210601_1852_PREP_CAMP.zip"
PUEBLA = DATA / "puebla2018" / "20180702_2000_PREP_PUE.zip"
ALL_PACKAGES = [*CAMPECHE, CAMPECHE_ZERO, PUEBLA]
