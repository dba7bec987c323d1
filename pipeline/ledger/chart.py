"""The standard chart of accounts as rows to seed into a new organisation (``core_entities``).

Read through ``pipeline.domain.catalog.load_catalog`` (validated), falling back to the raw JSON
file when the catalog as a whole cannot load (the chart alone is enough to seed an org).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

ACCOUNT_SMART_CODES = {
    "asset": "HERA.FIN.GL.ACCOUNT.ASSET.v1",
    "liability": "HERA.FIN.GL.ACCOUNT.LIABILITY.v1",
    "equity": "HERA.FIN.GL.ACCOUNT.EQUITY.v1",
    "revenue": "HERA.FIN.GL.ACCOUNT.REVENUE.v1",
    "cost": "HERA.FIN.GL.ACCOUNT.COST.v1",
    "expense": "HERA.FIN.GL.ACCOUNT.EXPENSE.v1",
}
GL_ACCOUNT = "gl_account"


@dataclass(frozen=True, slots=True)
class ChartAccount:
    code: str
    name: str
    type: str           # asset | liability | equity | revenue | cost | expense
    normal_side: str    # DR | CR


@lru_cache(maxsize=1)
def standard_chart() -> tuple[ChartAccount, ...]:
    try:
        from pipeline.domain.catalog import load_catalog
        chart = load_catalog().chart
        return tuple(ChartAccount(a.code, a.name, a.type, a.normal_side) for a in chart.values())
    except Exception:  # the chart file is the contract; the rest of the catalog may be mid-edit
        text = resources.files("schemas.catalog").joinpath("chart_of_accounts.json").read_text("utf-8")
        return tuple(ChartAccount(a["code"], a["name"], a["type"], a["normal_side"]) for a in json.loads(text))
