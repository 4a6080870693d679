"""Fraud labels for generated card payments, in the training set's PostgreSQL table.

`featurestream generate --labels conf/training_sets/card_fraud.yaml` writes one label per valid
event: the payment's card, merchant and amount, `label_time` = its event time (features as of the
payment), `is_fraud` drawn from the seed and the transaction (2 %, 15 % above 150), `updated_at`
= now. The table is created by conf/training_sets/card_labels.sql (the documented schema);
rows are upserted on `label_id` (from the transaction id), so a rerun or a replay does not
duplicate them. psql does the work, as for the stack's own set-up: no Python driver needed, and
the password travels in the child's environment, never on a command line.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import random
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlparse

from featurestream.config.training_set import TrainingSetSpec
from featurestream.errors import ConfigError, FeatureStreamError
from featurestream.io.jars import project_root

COLUMNS = ("label_id", "transaction_id", "card_id", "merchant_id", "amount", "label_time", "is_fraud", "updated_at")
DDL_FILE = Path("conf/training_sets/card_labels.sql")
_NULLABLE = ("transaction_id", "merchant_id", "amount")
_EVENT_FIELDS = ("transaction_id", "card_id", "event_time")
Row = tuple[object, ...]


class LabelsWriteError(FeatureStreamError):
    """psql is missing or refused the labels."""


def label_rows(events: Iterable[dict[str, object]], seed: int, now: datetime, source: str) -> list[Row]:
    """One label row per event, in COLUMNS order; an event without its fields is a ConfigError."""
    rows: list[Row] = []
    for index, event in enumerate(events):
        missing = [f for f in _EVENT_FIELDS if not event.get(f)]
        if missing:
            raise ConfigError(source, f"event {index + 1}", f"has no {', '.join(missing)} (needed for a label)")
        transaction = str(event["transaction_id"])
        amount = event.get("amount")
        value = float(amount) if isinstance(amount, int | float) else None
        rng = random.Random(f"{seed}:{transaction}")
        fraud = rng.random() < (0.15 if value is not None and value > 150 else 0.02)
        label_id = int(hashlib.sha256(transaction.encode()).hexdigest()[:15], 16)  # < 2**60: a bigint
        rows.append((label_id, transaction, str(event["card_id"]), event.get("merchant_id"), value,
                     str(event["event_time"]), int(fraud), now.isoformat()))
    return rows


def check_target(spec: TrainingSetSpec, source: str) -> str:
    """The quoted table the training set reads, if it can be our schema; else a ConfigError."""
    labels = spec.labels
    if labels.jdbc is None or labels.table is None:
        raise ConfigError(source, "labels.table", "--labels writes a JDBC table (the set reads a query or Parquet)")
    if not labels.jdbc.url.startswith("jdbc:postgresql:"):
        raise ConfigError(source, "labels.jdbc.url", "--labels writes PostgreSQL (the local stack's)")
    wanted = [labels.timestamp_column, *labels.label_columns, *(labels.columns or []),
              *(key for group in spec.feature_groups for key in group.keys)]
    if spec.export_history is not None:
        wanted.append(spec.export_history.updated_at_column)
    unknown = sorted({c for c in wanted if c not in COLUMNS})
    if unknown:
        raise ConfigError(source, "labels", f"{unknown} are not columns of {DDL_FILE} ({', '.join(COLUMNS)})")
    # Parts were validated as identifiers by the model; quoting keeps them literal.
    return ".".join(f'"{part}"' for part in labels.table.split("."))


def _psql() -> str:
    found = shutil.which("psql")
    if found:
        return found
    from featurestream.dev.stack.services.postgres_install import find_bin_dir

    bin_dir = find_bin_dir()
    if bin_dir is None or not (bin_dir / "psql").is_file():
        raise LabelsWriteError("psql not found (apt-get install postgresql-client)")
    return str(bin_dir / "psql")


def _csv(rows: Sequence[Row]) -> str:
    buffer = io.StringIO()
    # Every value quoted (a line `\.` cannot end the data early); FORCE_NULL turns "" into NULL.
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(
        ["" if v is None else v for v in row] for row in rows)
    return buffer.getvalue()


def script(table: str, rows: Sequence[Row]) -> str:
    """psql input: create the table (the .sql file), load a temp table, upsert on label_id."""
    columns = ", ".join(COLUMNS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c != "label_id")
    ddl = project_root() / DDL_FILE
    # `table` is validated and quoted (check_target), the columns are ours: nothing user-typed.
    upsert = f"INSERT INTO {table} ({columns}) SELECT {columns} FROM fs_labels_in"  # noqa: S608
    return (
        f"\\i '{ddl}'\n"
        f"CREATE TEMP TABLE fs_labels_in (LIKE {table});\n"
        f"COPY fs_labels_in ({columns}) FROM STDIN WITH (FORMAT csv, FORCE_NULL ({', '.join(_NULLABLE)}));\n"
        f"{_csv(rows)}\\.\n"
        f"{upsert} ON CONFLICT (label_id) DO UPDATE SET {updates};\n"
    )


def write_labels(spec: TrainingSetSpec, events: Sequence[dict[str, object]], seed: int, *,
                 spec_file: str, events_source: str) -> int:
    """Create the training set's labels table if missing and upsert one label per event."""
    from featurestream.connectors.rds import resolve_password, resolve_user

    table = check_target(spec, spec_file)
    rows = label_rows(events, seed, datetime.now(UTC), events_source)
    jdbc = spec.labels.jdbc
    assert jdbc is not None  # check_target
    url = urlparse(jdbc.url.removeprefix("jdbc:"))
    user = resolve_user(jdbc) or dict(parse_qsl(url.query)).get("user")
    password = resolve_password(jdbc, spec_file)
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    if password is not None:
        env["PGPASSWORD"] = password.reveal()
    command = [_psql(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", f"labels_table={table}",
               "-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432), "-d", url.path.lstrip("/")]
    if user:
        command += ["-U", user]
    done = subprocess.run(command, input=script(table, rows), capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise LabelsWriteError(f"writing labels to {spec.labels.table} failed: {lines[-1] if lines else 'psql failed'}")
    return len(rows)
