"""Feature rows: the cached column path (``featurize``) is the readable feature strings
(``event_features``) hashed, and its rows are normalised exactly as sklearn's ``normalize`` would."""

from __future__ import annotations

from collections import Counter
from enum import StrEnum
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse
from sklearn.preprocessing import normalize

from pipeline.classify import features
from pipeline.classify.codes import enum_value
from pipeline.classify.evaluate import DictEvent
from pipeline.classify.training import load_corpus
from schemas.events import Direction, Kind, Source

HELDOUT = Path(__file__).resolve().parents[2] / "data" / "classifier" / "corpus_heldout.jsonl.gz"
ODD = [DictEvent({"description": d, "counterparty": c, "mcc": m, "direction": "credit", "source": "bank_feed",
                  "amount": a, "currency": "JPY"})
       for d, c, m, a in [(None, None, None, "5"), ("12345 0042", None, " ", "0"), ("SQ *", "ACME GMBH", "5812", "1e3"),
                          ("ร้านกาแฟ 7-ELEVEN", "", "0000", "abc"), ("PAYPAL *NETFLIX.COM", "Netflix", "4899", "12")]]


@pytest.fixture(scope="module")
def events() -> list[DictEvent]:
    return [DictEvent(r) for r in load_corpus(HELDOUT)[:300]] + ODD


def test_columns_are_the_feature_strings_hashed(events: list[DictEvent]) -> None:
    features.clear_caches()
    for _ in range(2):                                   # cold, then from the caches
        for event in events:
            assert Counter(features.event_columns(event)) == \
                Counter(features.feature_index(f) for f in features.event_features(event))


def test_rows_are_normalised_as_sklearn_does(events: list[DictEvent]) -> None:
    matrix = features.featurize(events)
    rows = [features.event_columns(event) for event in events]
    raw = sparse.csr_matrix((np.ones(sum(map(len, rows))), np.concatenate(rows).astype(np.int32),
                             np.cumsum([0, *map(len, rows)])), shape=(len(events), features.N_FEATURES))
    raw.sum_duplicates()
    expected = normalize(raw, norm="l2")
    assert np.array_equal(matrix.indptr, expected.indptr) and np.array_equal(matrix.indices, expected.indices)
    assert np.array_equal(matrix.data, expected.data)             # bit for bit, not approximately


@pytest.mark.parametrize("member", [*Direction, *Source, *Kind])
def test_an_enum_member_reads_as_its_plain_value(member: StrEnum) -> None:
    value = enum_value(member)
    assert value == member.value and type(value) is str
    assert enum_value(value) == value and enum_value(None) is None
