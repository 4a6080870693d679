"""S3 URIs: the one check every S3 location the project accepts goes through.

A configured or described location (offline store, compaction input and output, training-set
inputs and outputs, checkpoints, DLQs) is later joined with other names and, where an emulator
stands in for S3, mapped onto a local folder as `<root>/<bucket>/<key>`. A bucket of `..` or a key
with an empty, `.` or `..` segment would lead out of that folder (`s3://../../../x`,
`s3://bucket//abs/path`), and S3 itself would store a different key than the one named. So a
bucket must follow S3's naming rules for general purpose buckets and a key must be a plain
`/`-separated list of non-empty names; anything else is refused before it is used.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

S3_SCHEMES = ("s3", "s3a", "s3n")
MAX_KEY_BYTES = 1024  # S3's limit on an object key

_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://([^/]*)(.*)$", re.DOTALL)
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html (general purpose buckets)
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class S3UriError(ValueError):
    """Not an S3 URI we accept; the message says which rule it breaks (never echoing credentials)."""


@dataclass(frozen=True)
class S3Location:
    scheme: str  # as written: s3, s3a or s3n (lower case)
    bucket: str
    key: str  # without leading or trailing "/"; "" for the whole bucket


def scheme_of(text: str) -> str | None:
    """The URI's scheme in lower case, or None for a plain path."""
    match = _URI.match(text.strip())
    return match.group(1).lower() if match else None


def is_s3(text: str) -> bool:
    return scheme_of(text) in S3_SCHEMES


def bucket_problem(bucket: str) -> str | None:
    """Why `bucket` is not a valid S3 bucket name, or None when it is."""
    if "@" in bucket or ":" in bucket:
        # `s3a://KEY:SECRET@bucket` (old Hadoop): never echo it, and never accept it.
        return "the bucket part holds credentials or a port; S3 credentials come from the environment"
    if not _BUCKET.match(bucket):
        return (f"bucket {bucket!r} is not a valid S3 bucket name (3-63 characters: lower-case letters, digits, "
                "'.' and '-', starting and ending with a letter or digit)")
    if ".." in bucket:
        return f"bucket {bucket!r} is not a valid S3 bucket name (two adjacent periods)"
    try:
        ipaddress.IPv4Address(bucket)
    except ValueError:
        pass
    else:
        return f"bucket {bucket!r} is not a valid S3 bucket name (formatted as an IP address)"
    if bucket.startswith(_RESERVED_PREFIXES) or bucket.endswith(_RESERVED_SUFFIXES):
        return f"bucket {bucket!r} is not a valid S3 bucket name (reserved prefix or suffix)"
    return None


def key_problem(key: str) -> str | None:
    """Why `key` (the part after `bucket/`, one trailing `/` allowed) is not a safe key, or None."""
    if not key:
        return None
    if _CONTROL.search(key):
        return "the key holds a control character"
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        return f"the key is longer than {MAX_KEY_BYTES} bytes"
    for segment in key.removesuffix("/").split("/"):
        if segment == "":
            return "the key has an empty segment ('//' or a leading '/')"
        if segment in (".", ".."):
            return f"the key has a {segment!r} segment"
    return None


def parse_s3_uri(text: str, schemes: tuple[str, ...] = S3_SCHEMES) -> S3Location:
    """`scheme://bucket/key` checked against S3's bucket rules and our key rules; S3UriError otherwise."""
    raw = text.strip()
    match = _URI.match(raw)
    if match is None or match.group(1).lower() not in schemes:
        raise S3UriError(f"expected {' or '.join(s + '://' for s in schemes)}bucket/prefix")
    scheme, bucket, rest = match.group(1).lower(), match.group(2), match.group(3)
    problem = bucket_problem(bucket)
    if problem is None and rest and not rest.startswith("/"):
        problem = "expected '/' after the bucket"
    key = rest[1:]
    problem = problem or key_problem(key)
    if problem is not None:
        raise S3UriError(problem)
    return S3Location(scheme, bucket, key.removesuffix("/"))


def check_location(text: str) -> str:
    """`text` unchanged when it is not an S3 URI or is a valid one; S3UriError otherwise.

    For settings that take a local path, an `hdfs://` URI or an S3 URI alike.
    """
    if is_s3(text):
        parse_s3_uri(text)
    return text
