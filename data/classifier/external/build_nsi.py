"""Build the external real-name evaluation set from name-suggestion-index (BSD-3-Clause).

name-suggestion-index (NSI, osmlab/name-suggestion-index) lists the names of real chains,
brands and operators as OpenStreetMap contributors wrote them, per feature type
(``amenity/restaurant``, ``shop/supermarket`` ...) and per country. Nothing in it was written by
this project, so it measures the classifier on merchants it was not built around.

Usage (offline; the NSI checkout is a local git directory, nothing is downloaded):

    .venv/bin/python data/classifier/external/build_nsi.py /path/to/name-suggestion-index/.git

Output ``nsi_names.jsonl.gz``: one raw event per name (the raw event's field names, docs/contracts.md: ``description``,
``direction`` debit, ``source`` card_feed, no MCC) plus ``expected_smart_code`` (through
``nsi_mapping.json``), ``country``, ``nsi_tag``, ``doubt``, ``mcc_derived`` and ``split``.

``split`` is fixed by a hash of the brand (its Wikidata id, else its folded name), so every
spelling of one brand lands in the same split:

- ``test`` (40 %): sealed. Training, calibration and threshold fitting never read it;
- ``calibration`` (25 %): fits the calibrator's real-data correction and the thresholds;
- ``train`` (35 %): names the model may learn from.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "nsi_names.jsonl.gz"
MAPPING = HERE / "nsi_mapping.json"
SPLIT_SALT = "hera-nsi-split-v1:"
TEST_PERCENT = 40
CALIBRATION_PERCENT = 25


def split_of(group: str) -> str:
    bucket = int(hashlib.sha256((SPLIT_SALT + group).encode()).hexdigest()[:8], 16) % 100
    if bucket < TEST_PERCENT:
        return "test"
    if bucket < TEST_PERCENT + CALIBRATION_PERCENT:
        return "calibration"
    return "train"


def _git_json(repo: Path, path: str) -> dict | None:
    proc = subprocess.run(["git", "--git-dir", str(repo), "show", f"HEAD:{path}"], capture_output=True)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def _country(location_set: dict) -> str:
    include = location_set.get("include") or []
    first = str(include[0]) if include else ""
    if first == "001":
        return "WORLD"
    return first.upper() if len(first) == 2 and first.isalpha() else "OTHER"


def _names(tags: dict) -> list[tuple[str, str]]:
    """The storefront name, plus its English/Latin form when the name is in another script."""
    name = tags.get("name") or tags.get("brand") or ""
    out = [("local", name)] if name else []
    if name and not name.isascii():
        for key in ("name:en", "brand:en", "name:latin"):
            latin = tags.get(key)
            if latin and latin != name:
                out.append(("en", latin))
                break
    return out


def build(repo: Path) -> list[dict]:
    from pipeline.classify.codes import SHORT_CODES

    mapping = {k: v for k, v in json.loads(MAPPING.read_text()).items() if not k.startswith("_")}
    rows: list[dict] = []
    seen: set[tuple[str, str]] = set()
    for tag, target in sorted(mapping.items()):
        for kind in ("brands", "operators"):
            data = _git_json(repo, f"data/{kind}/{tag}.json")
            for item in (data or {}).get("items", []):
                tags = item.get("tags", {})
                group = tags.get("brand:wikidata") or tags.get("operator:wikidata") or (tags.get("name") or "").casefold()
                for variant, name in _names(tags):
                    if not name or (name.casefold(), target["code"]) in seen:
                        continue
                    seen.add((name.casefold(), target["code"]))
                    rows.append({
                        "event_id": "nsi-" + item["id"] + ("-en" if variant == "en" else ""),
                        "description": name, "direction": "debit", "source": "card_feed",
                        "expected_smart_code": SHORT_CODES[target["code"]], "country": _country(item.get("locationSet", {})),
                        "nsi_tag": tag, "nsi_kind": kind, "variant": variant, "doubt": target.get("doubt"),
                        "mcc_derived": target["mcc"], "split": split_of(str(group)),
                        "merchant_id": "nsi:" + hashlib.sha256(str(group).encode()).hexdigest()[:12],
                    })
    rows.sort(key=lambda r: r["event_id"])
    return rows


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    rows = build(Path(argv[0]))
    with gzip.GzipFile(OUT, "wb", mtime=0) as raw:   # mtime 0: same input, same bytes
        raw.write("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows).encode())
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["split"]] = counts.get(r["split"], 0) + 1
    print(json.dumps({"rows": len(rows), "splits": counts}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[2]))
    raise SystemExit(main(sys.argv[1:]))
