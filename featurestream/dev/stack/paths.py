"""Where things live: the project checkout, the state directory and the resolved jars.

The checkout is found from this package's location (editable install) unless FEATURESTREAM_HOME
says otherwise; the state directory is FEATURESTREAM_STATE_DIR or `<cwd>/.state`.
"""

from __future__ import annotations

from pathlib import Path

from featurestream.io import jars

HOME_ENV = "FEATURESTREAM_HOME"
STATE_DIR_ENV = "FEATURESTREAM_STATE_DIR"


def project_root() -> Path:
    """The featurestream checkout: FEATURESTREAM_HOME, else the one this package is installed from."""
    return jars.project_root().resolve()


def kafka_jars_dir(root: Path | None = None) -> Path:
    """The Kafka broker and its runtime dependencies (from conf/jars/kafka/pom.xml)."""
    return (root or project_root()) / "build" / "jars" / "kafka"


def kinesis_dir(root: Path | None = None) -> Path:
    """The npm project that pins kinesis-local, with the loopback preload beside it."""
    return (root or project_root()) / "featurestream" / "dev" / "stack" / "kinesis"


def kinesis_package_dir(root: Path | None = None) -> Path:
    """kinesis-local as `npm ci` installed it; it must run from here to find its server.json."""
    return kinesis_dir(root) / "node_modules" / "kinesis-local"
