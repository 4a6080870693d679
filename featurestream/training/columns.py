"""Internal column names of the training-set engine (prefixed so they never meet a user's column)."""

from __future__ import annotations

# Normalised metadata of a compacted feature row.
EVENT_TIME = "_fs_event_time"
WRITE_TIME = "_fs_write_time"
API_TIME = "_fs_api_time"
DELETED = "_fs_is_deleted"

# Columns of the union that the as-of join sorts.
TS = "_fs_ts"
SIDE = "_fs_side"
LABEL = "_fs_label"
BUCKET = "_fs_bucket"
BOUNDS = "_fs_bounds"
HASH = "_fs_hash"

RESERVED_PREFIX = "_fs_"
