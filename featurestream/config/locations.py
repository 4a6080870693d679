"""Config field types for where data lives: every S3 URI of every config file is checked at load.

`Location` takes a local path, an `hdfs://`/`file:` URI or an S3 URI (`s3://`, `s3a://`), and
refuses an S3 URI that breaks S3's bucket-name rules or has an empty, `.` or `..` key segment
(featurestream.io.s3_uri). `OfflineStoreUri` is what SageMaker's S3StorageConfig.S3Uri takes: an
`s3://` URI only. A refusal is a ConfigError line naming the file and the field (exit 2).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from featurestream.io.s3_uri import S3UriError, check_location, parse_s3_uri


def _location(value: str) -> str:
    try:
        return check_location(value)
    except S3UriError as exc:
        raise ValueError(f"not a valid S3 URI: {exc}") from None


def _offline_store_uri(value: str) -> str:
    try:
        parse_s3_uri(value, schemes=("s3",))
    except S3UriError as exc:
        raise ValueError(f"not a valid offline store URI: {exc}") from None
    return value


Location = Annotated[str, AfterValidator(_location)]
OfflineStoreUri = Annotated[str, AfterValidator(_offline_store_uri)]
