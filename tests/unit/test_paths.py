"""featurestream.io.paths.join: URIs and local paths, against the standard library's own joiners."""

from __future__ import annotations

import posixpath
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from featurestream.io.paths import join

# Path segments as configs and manifests produce them: names, `k=v` partitions, dots inside names.
SEGMENT = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.=-]{0,11}", fullmatch=True).filter(lambda s: s not in {".", ".."})
SEGMENTS = st.lists(SEGMENT, min_size=1, max_size=4)


@pytest.mark.parametrize(("base", "parts", "expected"), [
    ("s3a://bucket/root", ("g", "features"), "s3a://bucket/root/g/features"),
    ("s3a://bucket/root/", ("g",), "s3a://bucket/root/g"),
    ("s3a://bucket", ("g",), "s3a://bucket/g"),
    ("s3a://bucket/", ("g",), "s3a://bucket/g"),
    ("s3a://bucket//root//", ("/g/", "x//y"), "s3a://bucket/root/g/x/y"),
    ("hdfs://nn:8020/cp", ("g",), "hdfs://nn:8020/cp/g"),
    ("file:///tmp/cp", ("g",), "file:///tmp/cp/g"),
    ("file:/tmp/cp", ("g",), "file:/tmp/cp/g"),  # Hadoop's own spelling of local paths
    ("file:///", ("g",), "file:///g"),
    ("/tmp/cp/", ("g", "batch_id=3"), "/tmp/cp/g/batch_id=3"),
    ("/", ("g",), "/g"),
    ("state/cp", ("g", "*/offsets"), "state/cp/g/*/offsets"),
    ("/tmp/cp", ("./g", ""), "/tmp/cp/g"),
    ("/tmp/cp//", (), "/tmp/cp"),
    ("../shared/cp", ("g",), "../shared/cp/g"),  # the base is the user's to choose
])
def test_join(base: str, parts: tuple[str, ...], expected: str) -> None:
    assert join(base, *parts) == expected


@pytest.mark.parametrize("parts", [("..",), ("g", "../other"), ("a/../../b",)])
def test_parts_never_lead_out_of_the_base(parts: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="leads out of"):
        join("s3a://bucket/root", *parts)
    with pytest.raises(ValueError, match="leads out of"):
        join("/tmp/root", *parts)


def test_empty_base_is_refused() -> None:
    with pytest.raises(ValueError, match="empty base"):
        join("  ", "g")


@given(base=SEGMENTS, parts=SEGMENTS, trailing=st.booleans())
def test_local_paths_agree_with_posixpath(base: list[str], parts: list[str], trailing: bool) -> None:
    root = "/" + "/".join(base) + ("/" if trailing else "")
    assert join(root, *parts) == posixpath.normpath(posixpath.join(root, *parts))
    relative = "/".join(base)
    assert join(relative, *parts) == posixpath.join(relative, *parts)


@given(bucket=SEGMENT, key=st.lists(SEGMENT, max_size=3), parts=SEGMENTS, trailing=st.booleans())
def test_uris_keep_scheme_and_bucket_and_join_the_key(bucket: str, key: list[str], parts: list[str],
                                                      trailing: bool) -> None:
    base = "s3a://" + "/".join([bucket.lower(), *key]) + ("/" if trailing else "")
    joined = urlsplit(join(base, *parts))
    assert (joined.scheme, joined.netloc) == ("s3a", bucket.lower())
    assert joined.path == "/" + "/".join([*key, *parts])
