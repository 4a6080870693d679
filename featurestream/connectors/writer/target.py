"""What the online-store sinks write: the feature group and which columns make its records."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OnlineStoreTarget:
    """What to write: the feature group and which columns make its records."""

    feature_group_name: str
    record_identifier: str
    event_time_feature: str
    feature_names: tuple[str, ...]
    region: str
    # The caller guarantees at most one row per identifier in every micro-batch (the tile engine's
    # output does: one record per entity per call of its state function). The sink then writes the
    # rows as they are and skips the latest-per-entity aggregation. Default: always deduplicate.
    already_unique: bool = False
