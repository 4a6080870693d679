"""The engine against an independent oracle: real Kafka, real Spark, records read back with GetRecord.

Random streams (hypothesis) mix entities, out-of-order events within the allowed lateness, events
beyond it, exact duplicates, non-positive amounts (filtered), null merchants and silent periods
long enough for every window to decay to zero. Each produce is one micro-batch.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featurestream.engine.pipeline import late_path
from tests.engine.harness import Run, event, new_run
from tests.engine.oracle import Expected, expected_records, replay, same_value

pytestmark = pytest.mark.integration

# An hour ago, on a tile boundary: records must be younger than the group's 7-day TTL to stay online.
START_MS = (int(time.time()) // 60 - 60) * 60_000
CARDS = ("card-a", "card-b", "card-c", "card-d")
MERCHANTS = (None, "m-1", "m-2", "m-3")


@st.composite
def streams(draw: Any) -> list[list[dict[str, Any]]]:
    """2-3 micro-batches; the clock jumps between them (sometimes past every window)."""
    batches: list[list[dict[str, Any]]] = []
    history: list[dict[str, Any]] = []
    clock = START_MS
    for index in range(draw(st.integers(2, 3))):
        clock += draw(st.sampled_from([30_000, 90_000, 200_000, 700_000]))
        batch = []
        for _ in range(draw(st.integers(1, 12))):
            kind = draw(st.sampled_from(["fresh", "fresh", "fresh", "jitter", "late", "dup"]))
            if kind == "dup" and history:
                batch.append(dict(draw(st.sampled_from(history))))
                continue
            offset = {"fresh": draw(st.integers(0, 50_000)), "jitter": -draw(st.integers(0, 100_000)),
                      "late": -draw(st.integers(400_000, 900_000)) if index else 0, "dup": 0}[kind]
            amount = draw(st.sampled_from([-1.0, 0.0, 1.5, 2.25, 10.0, 99.99]))
            batch.append(event(draw(st.sampled_from(CARDS)), clock + offset, amount, draw(st.sampled_from(MERCHANTS))))
        history += batch
        batches.append(batch)
    return batches


def check_against_oracle(run: Run, batches: list[list[dict[str, Any]]]) -> None:
    outcome = replay(batches, run.group)
    expected = expected_records(outcome, run.group)
    online = run.online(list(CARDS))
    assert set(online) == set(expected), (set(online), set(expected))
    problems = []
    for entity, want in expected.items():
        got = online[entity]
        problems += _record_problems(entity, got, want)
    assert not problems, problems[:5]

    # Late events: in the late sink with how late they were; counts reconcile.
    late_rows = _late_rows(run)
    assert sorted(late_rows) == sorted((e["transaction_id"], by) for e, by in outcome.late)
    produced = sum(len(b) for b in batches)
    assert run.total("late_events") == len(outcome.late)
    assert run.total("duplicates") == outcome.duplicates
    assert run.total("aggregated") == len(outcome.accepted)
    assert run.filtered == outcome.filtered
    assert produced == run.total("aggregated") + run.total("late_events") + run.total("duplicates") + run.filtered

    # EventTime strictly increases per entity across every record written.
    times: dict[str, list[Any]] = defaultdict(list)
    for _, entity, moment in run.sink.written:
        times[entity].append(moment)
    for entity, seq in times.items():
        assert all(a < b for a, b in itertools.pairwise(seq)), (entity, seq)

    # Which path the events took: folded into map-side partials unless the group dedupes.
    folded = run.total("folded")
    assert folded == (0 if run.group.dedupe_key else run.total("aggregated")), (folded, run.total("aggregated"))


def _record_problems(entity: str, got: dict[str, str], want: Expected) -> list[Any]:
    from datetime import datetime

    as_of = datetime.fromisoformat(got["event_time"].replace("Z", "+00:00"))
    as_of_ms = round(as_of.timestamp() * 1000)
    problems: list[Any] = []
    # T is the oracle's time, or later by the 1 ms steps of corrections, never past a change.
    if not (want.as_of_ms <= as_of_ms < want.as_of_ms + 1000
            and (want.next_boundary_ms is None or as_of_ms < want.next_boundary_ms)):
        problems.append((entity, "event_time", got["event_time"], want.as_of_ms))
    for name, value in want.values.items():
        if not same_value(got.get(name), value):
            problems.append((entity, name, got.get(name), value))
    return problems


def _late_rows(run: Run) -> list[tuple[str, int]]:
    path = Path(late_path(run.spec, run.profile))
    if not path.exists():
        return []
    table = pq.read_table(path).to_pandas()
    return [(str(r.transaction_id), int(r.late_by_ms)) for r in table.itertuples()]


@settings(max_examples=2, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batches=streams(), dedupe=st.booleans())
def test_random_streams_match_the_oracle(spark, stack_env, tmp_path_factory, batches, dedupe: bool) -> None:
    run = new_run(tmp_path_factory.mktemp("engine"), stack_env, "random", dedupe=dedupe)
    for batch in batches:
        run.micro_batch(spark, batch)
    check_against_oracle(run, batches)


@settings(max_examples=2, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batches=streams())
def test_random_streams_numeric_only_match_the_oracle(spark, stack_env, tmp_path_factory, batches) -> None:
    """Numeric features only: the map side's compact fold against the same oracle."""
    run = new_run(tmp_path_factory.mktemp("engine"), stack_env, "random-numeric", dedupe=False, numeric_only=True)
    for batch in batches:
        run.micro_batch(spark, batch)
    check_against_oracle(run, batches)


@pytest.mark.parametrize("dedupe", [True, False], ids=["dedupe-one-by-one", "no-dedupe-folded"])
def test_decay_late_duplicates_and_corrections(spark, stack_env, tmp_path: Path, dedupe: bool) -> None:
    """A hand-written stream touching every rule once, including a 5-minute count falling to 0."""
    minute = 60_000
    t0 = START_MS
    first = [event("card-a", t0 + 1_000, 10.0, "m-1", "t1"), event("card-a", t0 + 61_000, 5.0, "m-2", "t2"),
             event("card-b", t0 + 2_000, -3.0, "m-1", "t3"),  # filtered
             event("card-a", t0 + 61_000, 5.0, "m-2", "t2")]  # duplicate in the same batch
    second = [event("card-b", t0 + 4 * minute, 7.0, None, "t4"),
              event("card-a", t0 + 30_000, 1.0, "m-3", "t5"),  # out of order, within lateness: correction
              event("card-a", t0 + 1_000, 10.0, "m-1", "t1")]  # duplicate across batches
    third = [event("card-c", t0 + 20 * minute, 2.0, "m-1", "t6"),  # moves the clock: everything decays
             event("card-b", t0 + 3 * minute, 1.0, "m-2", "t7")]  # beyond the allowed lateness by then? no: same batch
    fourth = [event("card-b", t0 + 5 * minute, 4.0, "m-2", "t8")]  # now late: watermark is t0 + 18m
    batches = [first, second, third, fourth]
    run = new_run(tmp_path, stack_env, "rules", dedupe=dedupe)
    for batch in batches:
        run.micro_batch(spark, batch)
    check_against_oracle(run, batches)
    online = run.online(["card-a"])
    assert online["card-a"]["n_5m"] == "0" and online["card-a"]["total_5m"] == "0.0"
    assert online["card-a"]["latest_merchant"] == "m-2"
    assert run.total("late_events") == 1 and run.total("duplicates") == (2 if dedupe else 0)


def test_decay_late_and_corrections_numeric_only(spark, stack_env, tmp_path: Path) -> None:
    """The hand-written stream with numeric features only (the map side's compact fold)."""
    minute = 60_000
    t0 = START_MS
    batches = [
        [event("card-a", t0 + 1_000, 10.0, "m-1"), event("card-a", t0 + 61_000, 5.0, "m-2"),
         event("card-a", t0 + 62_000, 2.5, "m-2"), event("card-b", t0 + 2_000, -3.0, "m-1")],
        [event("card-b", t0 + 4 * minute, 7.0, None), event("card-a", t0 + 30_000, 1.0, "m-3"),
         event("card-a", t0 + 3 * minute + 1, 4.0, "m-3")],
        [event("card-c", t0 + 20 * minute, 2.0, "m-1"), event("card-b", t0 + 3 * minute, 1.0, "m-2")],
        [event("card-b", t0 + 5 * minute, 4.0, "m-2")],
    ]
    run = new_run(tmp_path, stack_env, "rules-numeric", dedupe=False, numeric_only=True)
    for batch in batches:
        run.micro_batch(spark, batch)
    check_against_oracle(run, batches)
    online = run.online(["card-a"])
    assert online["card-a"]["n_5m"] == "0" and online["card-a"]["total_5m"] == "0.0"
    assert run.total("late_events") == 1


@pytest.mark.parametrize("dedupe", [True, False], ids=["dedupe-one-by-one", "no-dedupe-folded"])
def test_restart_from_checkpoint_equals_an_uninterrupted_run(spark, stack_env, tmp_path: Path, dedupe: bool) -> None:
    """Same events: one run, or two runs with a restart from the checkpoint between them."""
    events = []
    for i in range(40):
        jitter = -((i * 37_000) % 90_000)  # out of order, always within the 2-minute lateness
        events.append(event(CARDS[i % 3], START_MS + i * 20_000 + jitter, float(i % 7) + 0.5, MERCHANTS[i % 4]))
    events += [dict(events[5]), dict(events[25])]  # duplicates, one on each side of the restart
    half = 21
    whole = new_run(tmp_path, stack_env, "whole", dedupe=dedupe)
    whole.micro_batch(spark, events)
    split = new_run(tmp_path, stack_env, "split", dedupe=dedupe)
    split.micro_batch(spark, events[:half])
    split.micro_batch(spark, events[half:])
    check_against_oracle(whole, [events])
    check_against_oracle(split, [events[:half], events[half:]])
    a, b = whole.online(list(CARDS)), split.online(list(CARDS))
    assert a.keys() == b.keys()
    for entity in a:
        features = {k for k in a[entity] if k not in ("event_time", "card_id")}
        assert features == {k for k in b[entity] if k not in ("event_time", "card_id")}
        for name in features:
            x, y = a[entity][name], b[entity][name]
            assert x == y or math.isclose(float(x), float(y), rel_tol=1e-9), (entity, name, x, y)
