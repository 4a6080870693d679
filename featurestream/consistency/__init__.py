"""`featurestream consistency`: is what the online store serves what the definition says, and does
the offline store hold what the online store served?

For a sample of entities (hot and cold ones, `sample.py`), each online record (BatchGetRecord) is
compared feature by feature with the definition recomputed as of the record's EventTime by the
backfill's engine (`recompute.py`, `compare.py`), and with the entity's newest offline-store row
(`offline.py`). The result is one JSON summary, Prometheus gauges (`metrics.py`) and an HTML page
with inline SVG figures (`report.py`); `job.py` wires them.
"""
