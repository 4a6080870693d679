"""The definition a checkpoint's state was computed with, kept beside it and checked at every start.

`<checkpoint_root>/<group>/definition.json` holds the fingerprint and the normalised definition
(`featurestream.config.fingerprint`) of the group whose state the checkpoint holds. A job that
starts on a checkpoint written by another definition would reinterpret that state (a 1m tile read
as a 5m tile, a 1h window's tiles as 2h) and write wrong values without a word, so it stops before
any query starts: exit 2, one line naming what changed and what to do.

Every change counts, adding a feature included: the state holds no input for a new feature (its
slots do not exist), so its values would be wrong until its longest window has passed, and the
state layout may not even fit. A new feature therefore needs a new checkpoint (or a new version of
the group) and a backfill; `feature-groups plan` says so.

A checkpoint made before fingerprints existed (state, but no definition file) is adopted: the
current definition is recorded and a `definition_adopted` log line says so. Nothing can tell what
definition wrote it; adopting is what every start did before this check existed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from featurestream.config.feature_group import FeatureGroupSpec
from featurestream.config.fingerprint import changes, definition, fingerprint
from featurestream.errors import ConfigError
from featurestream.io import hadoop_fs, paths
from featurestream.ops.checkpoints import checkpoints_under, recorded_conf

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

DEFINITION_FILE = "definition.json"


@dataclass(frozen=True)
class StoredDefinition:
    fingerprint: str
    definition: dict[str, Any]


def definition_path(checkpoint_dir: str) -> str:
    return paths.join(checkpoint_dir, DEFINITION_FILE)


def read_stored(spark: SparkSession, checkpoint_dir: str) -> StoredDefinition | None:
    path = definition_path(checkpoint_dir)
    if not hadoop_fs.exists(spark, path):
        return None
    try:
        data = json.loads(hadoop_fs.read_text(spark, path))
        return StoredDefinition(str(data["fingerprint"]), dict(data["definition"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(path, "", f"not a definition file ({exc}); restore it, or delete it to adopt the "
                                    "current definition") from None


def _has_state(spark: SparkSession, checkpoint_dir: str) -> bool:
    return any(recorded_conf(spark, c) is not None for c in checkpoints_under(spark, checkpoint_dir))


def mismatch_reason(stored: StoredDefinition, spec: FeatureGroupSpec, checkpoint_dir: str) -> str:
    lines = [c.line() for c in changes(stored.definition, definition(spec))]
    what = "; ".join(lines) if lines else f"fingerprint {stored.fingerprint} -> {fingerprint(spec)}"
    return (f"the checkpoint {checkpoint_dir} holds state computed by another definition ({what}): "
            "starting on it would mix both; create a new version (online_store.feature_group_name) and "
            "backfill it, or point checkpoint_root at a new folder")


def record(spark: SparkSession, checkpoint_dir: str, spec: FeatureGroupSpec) -> None:
    body = {"feature_group": spec.name, "fingerprint": fingerprint(spec), "definition": definition(spec),
            "recorded_at": datetime.now(UTC).isoformat(timespec="seconds")}
    hadoop_fs.write_text(spark, definition_path(checkpoint_dir), json.dumps(body, indent=2, sort_keys=True) + "\n")


def check_checkpoint_definition(spark: SparkSession, checkpoint_dir: str, spec: FeatureGroupSpec,
                                source_file: str) -> str:
    """Stop (ConfigError) when the checkpoint was written by another definition; record it when new.

    Returns what was found: `same`, `new` (recorded) or `adopted` (state without a definition file).
    """
    stored = read_stored(spark, checkpoint_dir)
    current = fingerprint(spec)
    if stored is not None:
        if stored.fingerprint != current:
            raise ConfigError(source_file, "definition", mismatch_reason(stored, spec, checkpoint_dir))
        return "same"
    adopted = _has_state(spark, checkpoint_dir)
    record(spark, checkpoint_dir, spec)
    if adopted:
        log.warning(json.dumps({
            "event": "definition_adopted", "feature_group": spec.name, "checkpoint": checkpoint_dir,
            "fingerprint": current,
            "message": "the checkpoint predates definition fingerprints: its state is taken to be of the "
                       "current definition, which is recorded now",
        }))
        return "adopted"
    return "new"
