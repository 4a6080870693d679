"""The switch of the raw event archive from a query of its own to the source's one query.

Before, the archive was a second query over the source, with its own checkpoint
`<checkpoint_root>/_archive/<table>`. Now the source's query archives (`engine.archive`), from its
own offsets: the archive continues where the features query stands. That is exact only when the
old archive query had archived up to the same offsets as the features query had committed;
otherwise the events between them would be missing from the archive (it was behind) or in it
twice (it was ahead). So, once, before the query starts:

- the offsets after the old archive's last batch (committed in its checkpoint, or appended to the
  table before a crash: the snapshot summaries say which) are compared with the offsets after the
  features query's last committed batch;
- equal: the old checkpoint is marked retired (`retired.json` in it, naming its successor) and
  never read again;
- different: the job stops, exit 2, with one line saying what to do (docs/operations.md,
  "Checkpoint layout").
"""

from __future__ import annotations

import json
import logging
from typing import Any

from pyspark.sql import SparkSession

from featurestream.config.profile import EnvironmentProfile
from featurestream.engine import archive
from featurestream.errors import ConfigError
from featurestream.io import hadoop_fs, paths

log = logging.getLogger(__name__)

RETIRED = "retired.json"
_SHOWN = 300  # characters of each side's offsets in the message


def legacy_checkpoint(profile: EnvironmentProfile, table: str) -> str:
    """The checkpoint of the archive's own query of before."""
    return paths.join(profile.checkpoint_root, "_archive", table.rsplit(".", 1)[1])


def _last_id(spark: SparkSession, folder: str) -> int | None:
    ids = [int(name) for name in hadoop_fs.list_names(spark, folder) if name.isdigit()]
    return max(ids) if ids else None


def end_offsets(spark: SparkSession, checkpoint: str, batch_id: int | None) -> list[Any] | None:
    """The sources' offsets after batch `batch_id` (its offset-log entry: `v1`, metadata, one line a source)."""
    if batch_id is None:
        return None
    lines = hadoop_fs.read_text(spark, paths.join(checkpoint, "offsets", str(batch_id))).splitlines()[2:]
    return [None if line.strip() == "-" else json.loads(line) for line in lines]


def _leaves(value: Any, at: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _leaves(item, f"{at}/{key}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in _leaves(item, f"{at}/{i}").items()}
    return {at: value}


def _what_happens(archived: list[Any] | None, features: list[Any] | None) -> str:
    """What continuing from the features query's offsets would do to the events between the two."""
    mine, theirs = _leaves(archived or []), _leaves(features or [])
    if archived is not None and features is not None and mine.keys() == theirs.keys() and all(
            isinstance(v, int) for v in [*mine.values(), *theirs.values()]):
        behind = any(mine[k] < theirs[k] for k in mine)
        ahead = any(mine[k] > theirs[k] for k in mine)
        if behind and not ahead:
            return "missing from the archive"
        if ahead and not behind:
            return "archived twice"
    return "missing from the archive or archived twice"


def _shown(offsets: list[Any] | None) -> str:
    text = "nothing archived" if offsets is None else json.dumps(offsets, separators=(",", ":"), sort_keys=True)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def check_switch(spark: SparkSession, profile: EnvironmentProfile, table: str, checkpoint: str,
                 profile_file: str) -> None:
    """Retire the old archive checkpoint of `table` if the source query `checkpoint` continues it
    exactly; raise ConfigError (exit 2) if it does not. Nothing to do without an old checkpoint."""
    old = legacy_checkpoint(profile, table)
    if not hadoop_fs.exists(spark, paths.join(old, "offsets")) or hadoop_fs.exists(spark, paths.join(old, RETIRED)):
        return
    # A batch appended to the table whose commit Spark did not log (kill -9 in between) was archived.
    done = [i for i in (_last_id(spark, paths.join(old, "commits")),
                        archive.last_batch(spark, table, archive.WRITER, old)) if i is not None]
    archived = end_offsets(spark, old, max(done) if done else None)
    features = end_offsets(spark, checkpoint, _last_id(spark, paths.join(checkpoint, "commits")))
    if archived != features:
        raise ConfigError(
            profile_file, "checkpoint_root",
            f"{old} (the raw event archive's own query of before) ended at other offsets ({_shown(archived)}) than "
            f"the features query {checkpoint} ({_shown(features)}); the archive now rides the features query and "
            f"continues from its offsets, so the events in between would be {_what_happens(archived, features)}: "
            "stop the producers, run the previous release once with --available-now (both queries then end at "
            f"the topic's end) and start again, or move {old} away to accept that (docs/operations.md, "
            "'Checkpoint layout')")
    hadoop_fs.write_text(spark, paths.join(old, RETIRED),
                         json.dumps({"continued_by": checkpoint, "offsets": features}) + "\n")
    log.info(json.dumps({"event": "archive_checkpoint_retired", "checkpoint": old, "continued_by": checkpoint}))
