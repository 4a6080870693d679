"""The project's SageMaker Feature Store emulator (featurestream.dev.feature_store), over HTTP.

One server answers both the SageMaker control plane and the featurestore runtime. When S3 is
part of the stack, the emulator replicates the offline store to it (AWS_ENDPOINT_URL_S3 is passed
through); otherwise it writes the offline store under its own state folder. When PostgreSQL is up
too, Iceberg-format groups go to the `local` profile's Iceberg catalog (the stack's PostgreSQL,
files on its S3).
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

from featurestream.dev.stack import process
from featurestream.dev.stack.config import LOOPBACK
from featurestream.dev.stack.services.base import Service


class FeatureStoreService(Service):
    name = "feature-store"
    uses = ("s3", "postgres")

    def launch(self) -> process.PidRecord:
        self.dir.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable, "-m", "featurestream.dev.feature_store",
            "--host", LOOPBACK, "--port", str(self.port), "--state-dir", str(self.dir),
        ]
        env = {**os.environ, **self.config.aws_env()}
        s3_port = self.config.port("s3")
        if process.port_open(s3_port):
            env["AWS_ENDPOINT_URL_S3"] = env["AWS_ENDPOINT_URL_GLUE"] = self.config.url("s3")
        else:
            env.pop("AWS_ENDPOINT_URL_S3", None)
            env.pop("AWS_ENDPOINT_URL_GLUE", None)
            cmd += ["--offline-local-dir", str(self.dir / "offline-store")]
        if process.port_open(s3_port) and process.port_open(self.config.port("postgres")):
            # The local profile's catalog resolves its port and password file from these.
            env["FEATURESTREAM_STATE_DIR"] = str(self.config.state_dir)
            env["FEATURESTREAM_POSTGRES_PORT"] = str(self.config.port("postgres"))
            cmd += ["--catalog-profile", "local"]
        return process.spawn(
            cmd, log_path=self.log_path, pid_path=self.pid_path, cwd=self.config.root, env=env
        )

    def healthy(self) -> bool:
        if not process.port_open(self.port):
            return False
        try:
            with urllib.request.urlopen(f"{self.endpoint()}/health", timeout=2) as response:  # noqa: S310
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL_SAGEMAKER": self.endpoint(),
            "AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME": self.endpoint(),
        }
