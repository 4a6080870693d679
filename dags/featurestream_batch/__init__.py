"""Helpers of the featurestream DAGs: which batch jobs exist, how their exit codes become task
states, how a job runs locally (the `featurestream` CLI or spark-submit) and on EMR Serverless.

Copy this folder next to the DAG files (`featurestream_local.py`, `featurestream_aws.py`) into your
DAGs folder; see dags/README.md.
"""
