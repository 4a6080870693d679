"""boto3 clients for health probes: dummy credentials, one attempt, short timeouts."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

# A probe must fail fast rather than sit in botocore's retry loop while a server boots.
PROBE_CONFIG = Config(connect_timeout=1, read_timeout=3, retries={"max_attempts": 1})


def probe_client(service: str, endpoint: str, region: str) -> Any:
    """A client for `service` at `endpoint`, never using the caller's real AWS credentials."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - the local services' dummy key
        config=PROBE_CONFIG,
    )
