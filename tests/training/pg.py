"""The stack's PostgreSQL from the tests' side: psql (not Spark) creates and fills tables, so the
reader under test is the only Spark code that touches the database."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd


def jdbc_url() -> str:
    return os.environ["FEATURESTREAM_JDBC_URL"]


def password() -> str:
    return Path(os.environ["FEATURESTREAM_JDBC_PASSWORD_FILE"]).read_text().rstrip("\r\n")


def _psql_args() -> list[str]:
    parsed = urlparse(jdbc_url().removeprefix("jdbc:"))
    user = dict(p.split("=", 1) for p in parsed.query.split("&") if "=" in p).get("user", "featurestream")
    psql = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"
    return [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", parsed.hostname or "127.0.0.1",
            "-p", str(parsed.port), "-U", user, "-d", parsed.path.lstrip("/")]


def psql(sql: str, stdin: str | None = None) -> str:
    env = {**os.environ, "PGPASSWORD": password()}
    args = [*_psql_args(), "-c", sql] if stdin is not None else [*_psql_args()]
    done = subprocess.run(args, input=stdin if stdin is not None else sql, capture_output=True, text=True,
                          env=env, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"psql failed: {done.stderr.strip()}")
    return done.stdout


def load_frame(table: str, ddl: str, frame: pd.DataFrame) -> None:
    """(Re)create `table` with `ddl` and COPY the frame in (timestamps as ISO-8601 with zone)."""
    psql(f"DROP TABLE IF EXISTS {table}; CREATE TABLE {table} ({ddl});")
    out = frame.copy()
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = out[column].map(lambda v: "" if pd.isna(v) else v.isoformat())
    buffer = io.StringIO()
    out.to_csv(buffer, index=False, header=False, na_rep="")
    psql(f"COPY {table} ({', '.join(out.columns)}) FROM STDIN WITH (FORMAT csv)", stdin=buffer.getvalue())


LABELS_DDL = (
    "label_id bigint PRIMARY KEY, card_id text, merchant bigint, label_time timestamptz, "
    "is_fraud integer, amount double precision, updated_at timestamptz"
)
