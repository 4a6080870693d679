"""S3 URIs in every config (issue 19, finding 3): a bucket that breaks S3's naming rules or a key
with an empty, `.` or `..` segment is refused at load, one line naming the file and the field
(exit 2 from the command), and the offline store's own parser refuses them too."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from featurestream.cli import main
from featurestream.config import load_profile
from featurestream.config.compaction import load_compaction_config
from featurestream.config.training_set import load_training_set
from featurestream.connectors.offline_store import OfflineStoreError, StoreUri
from featurestream.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

BAD = [
    ("s3://../../../x", "bucket '..'"),
    ("s3://bucket//abs/path", "empty segment"),
    ("s3://bucket/a/../../b", "'..' segment"),
    ("s3://bucket/./b", "'.' segment"),
    ("s3://Upper_Case/x", "bucket 'Upper_Case'"),
    ("s3://ab/x", "bucket 'ab'"),
    ("s3://10.0.0.1/x", "IP address"),
    ("s3://my..bucket/x", "two adjacent periods"),
    ("s3a://AKIAEXAMPLE:s3cr3t@bucket/x", "holds credentials"),
]


@pytest.mark.parametrize(("uri", "reason"), BAD)
def test_the_shared_check_and_the_offline_store_parser_refuse(uri: str, reason: str) -> None:
    from featurestream.io.s3_uri import S3UriError, parse_s3_uri

    with pytest.raises(S3UriError, match=reason) as caught:
        parse_s3_uri(uri)
    assert "s3cr3t" not in str(caught.value)
    with pytest.raises(OfflineStoreError, match="not a valid S3 URI"):
        StoreUri.parse(uri)


@pytest.mark.parametrize("uri", ["s3://bucket", "s3://bucket/", "s3://my.bucket-1/a/b/", "s3a://bkt/x=1/y.parquet"])
def test_good_uris_pass(uri: str) -> None:
    from featurestream.io.s3_uri import parse_s3_uri

    assert StoreUri.parse(uri).bucket == parse_s3_uri(uri).bucket


def _profile(tmp_path: Path, **fields: Any) -> Path:
    data: dict[str, Any] = {"kafka": {"bootstrap_servers": "127.0.0.1:1"}, "checkpoint_root": "/tmp/cp",
                            "dlq_path": "/tmp/dlq"}
    for dotted, value in fields.items():
        *parents, last = dotted.split("__")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(("field", "value"), [
    ("feature_store__offline_store_s3_uri", "s3://../../../x"),
    ("feature_store__offline_store_s3_uri", "s3://bucket//abs/path"),
    ("feature_store__offline_store_s3_uri", "s3a://bucket/prefix"),  # SageMaker takes s3:// only
    ("checkpoint_root", "s3a://bucket/../cp"),
    ("dlq_path", "s3a://../dlq"),
    ("feature_store__dlq_path", "s3a://bucket//dlq"),
])
def test_profile_locations_are_checked(tmp_path: Path, field: str, value: str) -> None:
    path = _profile(tmp_path, **{field: value})
    with pytest.raises(ConfigError) as caught:
        load_profile(path)
    assert str(caught.value).startswith(f"{path}: {field.replace('__', '.')}: not a valid"), caught.value


def test_compaction_and_training_set_locations_are_checked(tmp_path: Path) -> None:
    compaction = tmp_path / "compaction.yaml"
    compaction.write_text(yaml.safe_dump({
        "output": "s3://../../../x",
        "feature_groups": [{"name": "g", "path": "s3://bucket//abs/path", "record_identifier": "id",
                            "event_time": "ts"}],
    }))
    with pytest.raises(ConfigError) as caught:
        load_compaction_config(compaction)
    assert [(p.field, p.reason.split(":")[0]) for p in caught.value.problems] == [
        ("output", "not a valid S3 URI"), ("feature_groups[0].path", "not a valid S3 URI")]

    training = yaml.safe_load((ROOT / "conf" / "training_sets" / "card_fraud.yaml").read_text())
    training["output"]["path"] = "s3://bucket/sets/../../elsewhere"
    training["feature_groups"][0]["path"] = "s3://../../../x"
    training["export_history"]["path"] = "s3a://bucket//history"
    path = tmp_path / "fraud.yaml"
    path.write_text(yaml.safe_dump(training))
    with pytest.raises(ConfigError) as caught:
        load_training_set(path)
    assert sorted(p.field for p in caught.value.problems) == [
        "export_history.path", "feature_groups[0].path", "output.path"]


@pytest.fixture
def root_handlers() -> Iterator[None]:
    """The command installs its JSON log handler on the root logger (on this test's stderr): undone after."""
    saved = list(logging.getLogger().handlers)
    yield
    logging.getLogger().handlers[:] = saved


@pytest.mark.usefixtures("root_handlers")
def test_the_command_exits_2_with_one_line_per_mistake(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "compaction.yaml"
    config.write_text(yaml.safe_dump({"output": "s3://bucket//abs/path", "feature_groups": [{"name": "g"}]}))
    assert main(["compact", "--config", str(config)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"featurestream: config error: {config}: output: not a valid S3 URI: the key has an empty "
                     "segment ('//' or a leading '/')"]
