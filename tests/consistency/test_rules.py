"""The equality rules per feature type and the documented causes, on values (no Spark)."""

from __future__ import annotations

import math

from featurestream.consistency.compare import IN_FLIGHT, LATE, FeatureTally, equal, parse
from featurestream.consistency.job import explain


def test_equality_per_type() -> None:
    assert equal(parse("3", "Integral"), parse(3.0, "Integral"), "Integral", 1e-9)
    assert not equal(parse("3", "Integral"), parse(4, "Integral"), "Integral", 1e-9)
    assert equal(parse("0.30000000000000004", "Fractional"), 0.3, "Fractional", 1e-9)
    assert not equal(0.3001, 0.3, "Fractional", 1e-9)
    assert equal(1e12 + 1, 1e12, "Fractional", 1e-9)  # relative above 1: 1e-12
    assert not equal(1e-3, 0.0, "Fractional", 1e-9)  # absolute below 1
    assert equal(None, parse("", "Fractional"), "Fractional", 1e-9)  # absent on both sides
    assert not equal(None, 0.0, "Fractional", 1e-9) and not equal("m-1", None, "String", 1e-9)
    assert not equal("m-1", "m-2", "String", 1e-9)


def test_explained_differences_are_counted_apart_and_not_as_equal() -> None:
    tally = FeatureTally("total_5m", "Fractional")
    tally.add("a", "t", 1.0, 1.0, 1e-9, None)
    tally.add("b", "t", 2.0, 1.0, 1e-9, LATE)
    tally.add("c", "t", 5.0, 1.0, 1e-9, None)
    tally.add("d", "t", 0.5, 0.0, 1e-9, None)
    assert (tally.compared, tally.equal, tally.different, tally.explained[LATE]) == (4, 1, 2, 1)
    assert tally.match_rate == 1 / 3 and tally.entities == ["c", "d"]
    assert tally.max_abs_diff == 4.0 and math.isinf(tally.max_rel_diff)
    assert tally.summary()["max_rel_diff"] == "inf"


def test_causes_late_before_in_flight() -> None:
    late, newest = {"a": 1_000, "b": 5_000}, {"a": 9_000, "b": 9_000, "c": 2_000}
    assert explain("a", 2_000, late, newest) == LATE  # a late event at or before the record
    assert explain("b", 2_000, late, newest) == IN_FLIGHT  # its late event is after; newer events unread
    assert explain("c", 2_000, late, newest) is None  # the record has seen its newest event
    assert explain("c", 1_000, late, newest) == IN_FLIGHT
