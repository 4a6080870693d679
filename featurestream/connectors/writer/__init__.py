"""The online-store writer: latest record per entity → SageMaker Feature Store, from the executors.

Modules, one job each: `settings` (knobs), `dedup` (latest per entity), `records` (rows →
FeatureValues), `rate_limit` (token bucket), `retry` (classification, back-off, deadline),
`client` (one boto3 client per worker), `partition_writer` (thread pool + calls), `task` (the
mapInArrow body), `metrics`, `dlq`, `redact`, `connector_sink` (AWS's connector as a sink).
The driver-side entry point is `connectors.online_store.OnlineStoreSink`. Semantics: README.md.
"""
