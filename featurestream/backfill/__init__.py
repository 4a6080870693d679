"""`featurestream backfill`: a feature group's history computed by the stream's own engine.

The events of a time range (Parquet/JSON files, an RDS table or the raw event archive; any
`EventSource`) are cut into chunks of event time. Each chunk is one batch pass through the same
pipeline the stream runs (transforms, then the tile engine's history steps: a record at every event
and at every decay boundary), its events met with the entity state the previous chunk wrote
(a Parquet folder of key and encoded state): bounded memory, one chunk in flight, and a run
resumable after a kill -9 (a finished chunk is not redone). Records go to the group's offline store
in SageMaker's Glue layout and schema, under names derived from the range and the chunk, so a redo
or a re-run replaces its own files.
"""
