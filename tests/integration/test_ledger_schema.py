"""The schema's smart-code CHECK (hera_smart_code_valid, written for speed) accepts exactly what
the documented grammar (docs/catalog.md) accepts."""

from __future__ import annotations

import random
import re
import string

import asyncpg
import pytest

from pipeline.ledger.migrate import migrate

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
SPEC = re.compile(r"^HERA\.[A-Z0-9]{3,15}(\.[A-Z0-9_]{2,30}){3,8}\.v[0-9]+$")
EDGES = [
    "HERA.FIN.EXP.MEALS.ENTERTAINMENT.v1", "HERA.FIN.AR.INVOICE.ISSUED.v1", "HERA.FIN.GL.SUSPENSE.UNCLASSIFIED.v12",
    "HERA.FI.AR.INVOICE.ISSUED.v1", "HERA.FIN_X.AR.INVOICE.ISSUED.v1", "HERA." + "A" * 15 + ".AB.CD.EF.v1",
    "HERA." + "A" * 16 + ".AB.CD.EF.v1", "HERA.FIN.AB.CD.v1", "HERA.FIN.AB.CD.EF.v1", "HERA.FIN.A.CD.EF.v1",
    "HERA.FIN." + "A" * 30 + ".CD.EF.v1", "HERA.FIN." + "A" * 31 + ".CD.EF.v1",
    "HERA.FIN" + ".AB" * 8 + ".v1", "HERA.FIN" + ".AB" * 9 + ".v1", "HERA.FIN.AB.CD.EF.V1", "HERA.FIN.AB.CD.EF.v",
    "HERA.FIN.AB.CD.EF.v1.", "hera.FIN.AB.CD.EF.v1", "HERA.FIN.AB.CD.EF.v1x", "HERA.FIN.AB..EF.v1",
    "HERA.FIN.AB.CD.EF.v" + "1" * 40, "HERA.FIN.AB.CD._F.v1", "HERA.FIN.ab.CD.EF.v1", "", "HERA",
    "XHERA.FIN.AB.CD.EF.v1", "HERA.FIN.AB.CD.EF.v1\n", "HERA.FIN.AB-C.CD.EF.v1",
]


def random_codes(n: int, rng: random.Random) -> list[str]:
    """Near-miss codes: each part is valid most of the time, and just out of bounds otherwise."""
    out = []
    alphabet = string.ascii_uppercase + string.digits + "_"
    for _ in range(n):
        module_chars = string.ascii_uppercase + string.digits + ("_" if rng.random() < 0.1 else "")
        module = "".join(rng.choice(module_chars) for _ in range(rng.choice([2, 3, 4, 9, 15, 15, 16])))
        segments = ["".join(rng.choice(alphabet) for _ in range(rng.choice([1, 2, 2, 5, 12, 30, 30, 31])))
                    for _ in range(rng.choice([2, 3, 3, 5, 8, 8, 9]))]
        version = rng.choice(["v1", "v22", "v1", "v", "V1", "v1a"])
        out.append(".".join(["HERA", module, *segments, version]))
    return out


async def test_smart_code_check_matches_spec_grammar(database_url: str) -> None:
    await migrate(database_url)
    codes = EDGES + random_codes(3000, random.Random(7))
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        got = await conn.fetch("SELECT c, hera_smart_code_valid(c) AS ok FROM unnest($1::text[]) c", codes)
    finally:
        await conn.close()
    mismatches = [(r["c"], r["ok"]) for r in got if bool(r["ok"]) != bool(SPEC.fullmatch(r["c"]))]
    assert mismatches == []
    assert sum(bool(SPEC.fullmatch(c)) for c in codes) > 200  # the sample exercises both sides
