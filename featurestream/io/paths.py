"""The one way to build a path under a configured root (checkpoints, DLQs, outputs, manifests).

Roots come from configuration and may be URIs (`s3a://bucket/x`, `hdfs://nn/x`, `file:///x`, and
Hadoop's own `file:/x`) or local paths; Spark and Hadoop read both, so both are joined with `/`.
`os.path.join` and `Path` would turn `s3a://b` into `s3a:/b`; plain string joins leave double
slashes. Every caller uses this one, so the path a check reads is the path the query writes.
"""

from __future__ import annotations

import re

# `scheme://authority` (the authority may be empty: file:///x) or Hadoop's `file:/x`. Two letters
# at least, so that a Windows drive (`C:`) is never taken for a scheme.
_PREFIX = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:(?://[^/]*)?")
_SLASHES = re.compile(r"/{2,}")


def join(base: str, *parts: str) -> str:
    """`base`, then `parts` below it, one `/` between each.

    The base keeps its scheme and authority; repeated slashes in it collapse and a trailing one
    goes. Parts are always relative to the base: a part may hold several segments (`a/b`), and
    leading, trailing or repeated slashes and `.` segments are dropped. A `..` segment raises
    ValueError: a name taken from a config or a manifest must not lead out of its root.
    """
    if not base.strip():
        raise ValueError("empty base path")
    match = _PREFIX.match(base)
    prefix = match.group(0) if match else ""
    path = _SLASHES.sub("/", base[len(prefix):])
    if len(path) > 1:
        path = path.rstrip("/")  # a lone "/" stays: it is the root (of file:/// too)
    segments: list[str] = []
    for part in parts:
        for segment in part.split("/"):
            if segment == "..":
                raise ValueError(f"{part!r} leads out of {base!r}")
            if segment and segment != ".":
                segments.append(segment)
    head = prefix + path
    if not segments:
        return head
    return head + ("" if head.endswith("/") else "/") + "/".join(segments)
