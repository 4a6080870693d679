"""Where `--env` finds a profile: a path, then ./conf/environments, then the profiles shipped in the
package (in the wheel and in the --py-files zip), so `--env local` works from any folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from featurestream.config import load_profile
from featurestream.config.loader import resolve_profile_path
from featurestream.errors import ConfigError
from featurestream.ops import package

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "featurestream" / "config" / "profiles"


def _profile(path: Path, bootstrap: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"kafka": {"bootstrap_servers": bootstrap}, "checkpoint_root": "cp",
                                    "dlq_path": "dlq"}))
    return path


def test_a_name_from_a_folder_without_profiles_is_the_shipped_one(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FEATURESTREAM_KAFKA_BOOTSTRAP", raising=False)
    profile = load_profile("local")
    assert (profile.name, profile.kafka.bootstrap_servers, profile.spark.master) == ("local", "127.0.0.1:19092",
                                                                                    "local[2]")
    assert resolve_profile_path("local") == SHIPPED / "local.yaml"


def test_the_working_tree_profile_wins_over_the_shipped_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _profile(tmp_path / "conf" / "environments" / "local.yaml", "mine:9092")
    _profile(tmp_path / "elsewhere" / "local.yaml", "explicit:9092")
    assert load_profile("local").kafka.bootstrap_servers == "mine:9092"
    assert resolve_profile_path("local") == Path("conf/environments/local.yaml")
    # A path is a path: never looked up by name.
    assert load_profile("elsewhere/local.yaml").kafka.bootstrap_servers == "explicit:9092"
    assert load_profile(tmp_path / "elsewhere" / "local.yaml").name == "local"
    with pytest.raises(ConfigError, match=r"^missing\.yaml: file not found$"):
        load_profile("missing.yaml")


def test_an_unknown_name_says_where_it_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_profile("prod")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("--env: no profile named 'prod': ")
    assert str(tmp_path / "conf" / "environments" / "prod.yaml") in message
    assert "shipped with featurestream (aws, local)" in message


def test_an_unknown_profile_is_exit_2_with_one_line(tmp_path: Path) -> None:
    cli = Path(sys.executable).parent / "featurestream"
    run = subprocess.run([str(cli), "stream", "--feature-group", str(ROOT / "conf/feature_groups/card_activity.yaml"),
                          "--env", "nowhere"], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("featurestream: config error: --env: no profile named")


def test_the_aws_profile_loads_with_its_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in {"KAFKA_BOOTSTRAP_SERVERS": "b-1.msk:9094", "FEATURESTREAM_OFFLINE_S3_URI": "s3://ofs/p",
                        "FEATURESTREAM_FEATURE_STORE_ROLE_ARN": "arn:aws:iam::1:role/r",
                        "FEATURESTREAM_CHECKPOINT_ROOT": "s3a://cps/p", "FEATURESTREAM_DLQ_PATH": "s3a://dlq/p"}.items():
        monkeypatch.setenv(name, value)
    profile = load_profile("aws")
    # No master: spark-submit's decides.
    assert (profile.kind, profile.spark.master, profile.kafka.bootstrap_servers) == ("aws", None, "b-1.msk:9094")


def test_the_pyfiles_zip_carries_the_profiles(tmp_path: Path) -> None:
    zipped = package.build_pyfiles_zip(ROOT, tmp_path / "pyfiles.zip")
    names = set(zipfile.ZipFile(zipped).namelist())
    assert {f"featurestream/config/profiles/{p.name}" for p in SHIPPED.glob("*.yaml")} <= names
    # As on an executor or a driver given --py-files: the zip first on the path, another folder.
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); from featurestream.config import load_profile; "
             "import featurestream; p = load_profile('local'); print(featurestream.__file__); print(p.spark.master)")
    out = subprocess.run([sys.executable, "-I", "-c", probe, str(zipped)], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[0].startswith(str(zipped)) and out[1] == "local[2]"


def test_the_wheel_carries_the_profiles(tmp_path: Path) -> None:
    # Built from a copy: setuptools builds in the source tree, and others may be building this checkout.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "featurestream", source / "featurestream",
                    ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--wheel-dir", str(tmp_path / "wheel"), str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "wheel").glob("featurestream-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for shipped in SHIPPED.glob("*.yaml"):
            assert archive.read(f"featurestream/config/profiles/{shipped.name}") == shipped.read_bytes()


def test_fail_on_data_loss_is_true_outside_the_local_profile(tmp_path: Path) -> None:
    """Spark's failOnDataLoss: only the local profile (topics re-created at will) skips lost records."""
    from featurestream.config.feature_group import KafkaSourceSpec
    from featurestream.connectors.kafka_source import kafka_options

    source = KafkaSourceSpec.model_validate({"type": "kafka", "topic": "t", "schema": {"k": "string"}})
    seen = {}
    for kind, setting in (("local", None), ("aws", None), ("aws", False), ("local", True)):
        kafka: dict[str, object] = {"bootstrap_servers": "b:9092"}
        if setting is not None:
            kafka["fail_on_data_loss"] = setting
        path = tmp_path / f"{kind}-{setting}.yaml"
        path.write_text(yaml.safe_dump({"kind": kind, "kafka": kafka, "checkpoint_root": "cp", "dlq_path": "dlq"}))
        profile = load_profile(path)
        seen[(kind, setting)] = kafka_options(source, profile.kafka, profile.fail_on_data_loss)["failOnDataLoss"]
    assert seen == {("local", None): "false", ("aws", None): "true", ("aws", False): "false", ("local", True): "true"}
