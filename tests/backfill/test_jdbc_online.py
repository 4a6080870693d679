"""A backfill from an RDS table over JDBC, with `--online`.

The events sit in the stack's PostgreSQL (`timestamptz` event times, loaded by psql, not Spark);
the backfill reads them through the training-set reader with the range pushed down, and:
- its offline records equal the engine tests' independent oracle, one at every accepted event time,
  none outside the range (the table also holds an event before and one at its end);
- `--online` leaves each entity's latest record of the range in the emulator (GetRecord), except
  where the online store already holds a newer EventTime, which the backfill must not replace.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest

from featurestream.backfill.job import BackfillRequest, run_backfill
from featurestream.backfill.sources import JdbcSource
from featurestream.config.training_set import JdbcSpec
from featurestream.connectors.provisioning import ensure_feature_group
from tests.backfill.harness import by_entity, new_setup, offline_records, offline_root
from tests.backfill.oracle_check import check_oracle, same
from tests.engine.harness import ORACLE_GROUP, event
from tests.training import pg

pytestmark = pytest.mark.integration

START_MS = (int(time.time()) // 3600 - 6) * 3_600_000  # on an hour, inside the 7-day TTL
CARDS = ("card-a", "card-b", "card-c")
NEWER = "card-c"  # already online with a later EventTime than the range


def _events() -> list[dict[str, Any]]:
    """60 events over ~100 min, amounts and merchants varied; the first and last are out of range."""
    return [event(CARDS[i % 3], START_MS + i * 101_000, (i % 7) - 0.5, f"m-{i % 4}" if i % 5 else None)
            for i in range(60)]


def _load(table: str, events: list[dict[str, Any]]) -> None:
    frame = pd.DataFrame([{**{k: v for k, v in e.items() if k != "ts_ms"},
                           "event_time": pd.Timestamp(e["ts_ms"], unit="ms", tz="UTC")} for e in events])
    pg.load_frame(table, "transaction_id text, card_id text, merchant_id text, amount double precision, "
                  "event_time timestamptz", frame[["transaction_id", "card_id", "merchant_id", "amount", "event_time"]])


def test_jdbc_source_and_online_write(spark: Any, stack_env: dict[str, str], tmp_path: Path) -> None:
    setup = new_setup(tmp_path, stack_env["FEATURESTREAM_KAFKA_BOOTSTRAP"])
    spec = setup.spec
    ensure_feature_group(boto3.client("sagemaker"), spec, setup.profile)
    name = spec.online_store.feature_group_name
    runtime = boto3.client("sagemaker-featurestore-runtime")
    later = datetime.now(UTC).replace(microsecond=0)
    marker = [{"FeatureName": "card_id", "ValueAsString": NEWER},
              {"FeatureName": "event_time", "ValueAsString": later.isoformat().replace("+00:00", "Z")},
              {"FeatureName": "latest_merchant", "ValueAsString": "streamed-later"}]
    runtime.put_record(FeatureGroupName=name, Record=marker)

    events = _events()
    table = f"fs_backfill_events_{uuid.uuid4().hex[:8]}"
    _load(table, events)
    try:
        start = datetime.fromtimestamp(events[1]["ts_ms"] / 1000, tz=UTC)
        end = datetime.fromtimestamp(events[-1]["ts_ms"] / 1000, tz=UTC)  # excluded: the last event
        source = JdbcSource(JdbcSpec(url=pg.jdbc_url(), password_file=os.environ["FEATURESTREAM_JDBC_PASSWORD_FILE"]),
                            table)
        request = BackfillRequest(spec, str(setup.spec_file), setup.profile, source, start, end,
                                  int(timedelta(hours=1).total_seconds() * 1000), str(offline_root(setup)),
                                  online=True)
        result = run_backfill(spark, request)
    finally:
        pg.psql(f"DROP TABLE IF EXISTS {table}")

    in_range = events[1:-1]
    offline = offline_records(setup)
    assert len(result.chunks) == 2  # the state crosses a chunk boundary
    check_oracle(offline, in_range, ORACLE_GROUP)
    # Records at accepted event times and decay records (a window emptying), all inside the range.
    assert all(events[1]["ts_ms"] <= t < events[-1]["ts_ms"] for _, t in offline)

    history = by_entity(offline)
    assert result.online_records == len(CARDS)
    names = [f.name for f in ORACLE_GROUP.features]
    for card in CARDS:
        got = runtime.get_record(FeatureGroupName=name, RecordIdentifierValueAsString=card)["Record"]
        values = {f["FeatureName"]: f["ValueAsString"] for f in got}
        if card == NEWER:
            assert values == {f["FeatureName"]: f["ValueAsString"] for f in marker}
            continue
        t, latest = history[card][-1]
        assert values["event_time"].startswith(datetime.fromtimestamp(t / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M"))
        wrong = [(n, values.get(n), latest[n]) for n in names
                 if not (latest[n] is None and n not in values)
                 and not (latest[n] is not None and n in values and same(_typed(values[n], latest[n]), latest[n]))]
        assert not wrong, (card, wrong)


def _typed(text: str, like: Any) -> Any:
    return float(text) if isinstance(like, float | int) and not isinstance(like, bool) else text
