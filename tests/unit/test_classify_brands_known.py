"""Known brands (pipeline/classify/brands_known.py): whole names, no contradictions, no short words."""

from __future__ import annotations

from pipeline.classify import brands_known as bk


def test_a_line_that_opens_with_a_brand_name_hits_it() -> None:
    table = bk.build([("Chipotle", "MEALS"), ("Shell", "FUEL"), ("Burger King", "MEALS")])
    assert bk.lookup(("pos", "purchase", "chipotle", "oakland"), table) == "MEALS"   # channel words skipped
    assert bk.lookup(("burger", "king", "london"), table) == "MEALS"
    assert bk.lookup(("burger", "barn"), table) is None                               # a part is not the name
    assert bk.lookup(("oakland", "chipotle"), table) is None                          # it must open the line


def test_names_with_two_categories_and_short_words_are_left_out() -> None:
    table = bk.build([("Carrefour", "WELFARE"), ("Carrefour", "FUEL"), ("Go", "MISC"), ("7-Eleven", "WELFARE")])
    assert ("carrefour",) not in table and ("go",) not in table
    assert table[("7", "eleven")] == "WELFARE"


def test_the_table_round_trips_through_its_file(tmp_path) -> None:
    table = bk.build([("Chipotle", "MEALS"), ("Kopi Kenangan", "MEALS"), ("Caltex", "FUEL")])
    bk.save(table, tmp_path)
    assert bk.load(tmp_path) == table
    assert bk.load(tmp_path / "missing") == {}
