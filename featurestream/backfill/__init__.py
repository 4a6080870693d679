"""`featurestream backfill`: a feature group's history computed by the stream's own engine.

The events of a time range (Parquet/JSON files or an RDS table; any `EventSource`) are cut into
chunks of event time. Each chunk is staged as Parquet and fed to the same pipeline the stream runs
(transforms, then the tile engine) as a streaming query over a file source with
Trigger.AvailableNow, in history mode: a record at every event and at every decay boundary. The
query's checkpoint carries the engine state from chunk to chunk (bounded memory: one chunk in
flight) and makes a run resumable after a kill -9 (a finished chunk is not redone). Records go to
the group's offline store in SageMaker's Glue layout and schema, under names derived from the
range and the micro-batch, so a replay or a re-run replaces its own files.
"""
