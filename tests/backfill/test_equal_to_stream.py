"""The backfill equals the stream by construction, proven on random event streams (hypothesis).

- In event-time order (every micro-batch after the previous one's events; ties, duplicates,
  filtered events and silent periods allowed): every record the streaming job wrote (entity,
  EventTime, every feature) equals the backfill's record at that entity and EventTime, cell for cell.
- Out of order within the allowed lateness: the stream's final record per entity equals the
  backfill's value as of that record's time.
- Every backfill record equals the engine tests' independent oracle (tests/engine/oracle.py:
  plain Python and pandas) as of its time, and there is one at every accepted event time.

Doubles compare to 1e-9 relative: the stream adds a tile's values in arrival order, the backfill
in event-time order. A few examples each: every one runs Kafka, several micro-batches and chunks.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.backfill.harness import backfill, by_entity, new_setup, offline_records, stream_records
from tests.backfill.oracle_check import check_oracle, differing
from tests.engine.harness import ORACLE_GROUP, ORACLE_GROUP_NO_DEDUPE, event

pytestmark = pytest.mark.integration

START_MS = (int(time.time()) // 60 - 90) * 60_000  # on a tile boundary, inside the 7-day TTL
CARDS = ("card-a", "card-b", "card-c")
MERCHANTS = (None, "m-1", "m-2")
LATENESS_MS = 120_000
# No shrinking: every run of an example takes Kafka and Spark seconds; the failing example is printed.
SETTINGS = settings(max_examples=2, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@st.composite
def in_order(draw: Any) -> list[list[dict[str, Any]]]:
    """2-3 micro-batches; each batch's events after every earlier batch's, some on tile edges."""
    batches: list[list[dict[str, Any]]] = []
    clock = START_MS
    for _ in range(draw(st.integers(2, 3))):
        clock += draw(st.sampled_from([1, 60_000, 200_000, 900_000]))
        times = sorted(clock + draw(st.sampled_from([0, 0, 60_000, draw(st.integers(0, 170_000))]))
                       for _ in range(draw(st.integers(1, 8))))
        batch = [event(draw(st.sampled_from(CARDS)), t, draw(st.sampled_from([-1.0, 1.5, 2.25, 10.0, 99.99])),
                       draw(st.sampled_from(MERCHANTS))) for t in times]
        batch[0]["amount"] = 2.25  # at least one event per batch passes the filter
        if draw(st.booleans()):
            batch.append(dict(draw(st.sampled_from(batch))))  # an exact duplicate, same time
        batches.append(batch)
        clock = max(t for t in times)
    return batches


@st.composite
def out_of_order(draw: Any) -> list[list[dict[str, Any]]]:
    """Events shuffled within a batch and up to the allowed lateness behind the previous batches."""
    batches = draw(in_order())
    newest = 0
    shuffled = []
    moved_to: dict[str, int] = {}  # a duplicate keeps its original's time: which copy wins is then moot
    for batch in batches:
        moved = []
        for e in batch:
            back = draw(st.integers(0, LATENESS_MS - 1_000))
            floor = newest - LATENESS_MS + 1_000 if newest else e["ts_ms"]
            ts = moved_to.setdefault(e["transaction_id"], max(e["ts_ms"] - back, floor))
            moved.append({**e, "ts_ms": ts})
        moved = draw(st.permutations(moved))
        newest = max(newest, *(e["ts_ms"] for e in moved))
        shuffled.append(list(moved))
    return shuffled


def _two_chunks(events: list[dict[str, Any]]) -> timedelta:
    """A chunk size that cuts the events' range in two: state crosses a chunk boundary."""
    times = [e["ts_ms"] for e in events]
    return timedelta(milliseconds=max(1, (max(times) - min(times)) // 2 + 1))


@SETTINGS
@given(batches=in_order(), dedupe=st.booleans())
def test_in_event_time_order_every_stream_record_is_a_backfill_record(
        spark: Any, stack_env: dict[str, str], tmp_path_factory: Any, batches: list[list[dict[str, Any]]],
        dedupe: bool) -> None:
    setup = new_setup(tmp_path_factory.mktemp("backfill"), stack_env["FEATURESTREAM_KAFKA_BOOTSTRAP"], dedupe=dedupe)
    group = ORACLE_GROUP if dedupe else ORACLE_GROUP_NO_DEDUPE
    streamed = stream_records(spark, setup, batches)
    events = [e for batch in batches for e in batch]
    backfill(spark, setup, events, _two_chunks(events))
    offline = offline_records(setup)
    names = [f.name for f in group.features]
    assert streamed
    problems = []
    for record in streamed:
        key = (record["card_id"], record["event_time"])
        if key not in offline:
            problems.append(("missing", key))
            continue
        problems += [(key, *d) for d in differing(offline[key], record, names)]
    assert not problems, problems[:5]
    check_oracle(offline, events, group)


@SETTINGS
@given(batches=out_of_order())
def test_out_of_order_within_lateness_the_final_record_equals_the_backfill(
        spark: Any, stack_env: dict[str, str], tmp_path_factory: Any, batches: list[list[dict[str, Any]]]) -> None:
    setup = new_setup(tmp_path_factory.mktemp("backfill"), stack_env["FEATURESTREAM_KAFKA_BOOTSTRAP"])
    streamed = stream_records(spark, setup, batches)
    events = [e for batch in batches for e in batch]
    backfill(spark, setup, events, _two_chunks(events))
    offline = offline_records(setup)
    history = by_entity(offline)
    names = [f.name for f in ORACLE_GROUP.features]
    final: dict[str, dict[str, Any]] = {}
    for record in streamed:
        if record["card_id"] not in final or record["event_time"] > final[record["card_id"]]["event_time"]:
            final[record["card_id"]] = record
    assert final and set(final) == set(history)
    problems = []
    for entity, record in final.items():
        as_of = [row for t, row in history[entity] if t <= record["event_time"]]
        assert as_of, (entity, record)
        problems += [(entity, *d) for d in differing(as_of[-1], record, names)]
    assert not problems, problems[:5]
    check_oracle(offline, events, ORACLE_GROUP)
