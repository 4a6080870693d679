"""Kinesis: npm kinesis-local (kinesis-mock) under node, forced onto 127.0.0.1 by a preload."""

from __future__ import annotations

import os
import shutil

from botocore.exceptions import BotoCoreError, ClientError

from featurestream.dev.stack import paths, process
from featurestream.dev.stack.config import ACCOUNT_ID, LOOPBACK
from featurestream.dev.stack.errors import PrerequisiteMissingError
from featurestream.dev.stack.services.aws_probe import probe_client
from featurestream.dev.stack.services.base import Service


class KinesisService(Service):
    name = "kinesis"

    def listen_ports(self) -> list[int]:
        return [self.port, self.config.port("kinesis-tls")]

    def check_prerequisites(self) -> None:
        if shutil.which("node") is None:
            raise PrerequisiteMissingError("kinesis: `node` is not on PATH (apt-get install nodejs)")
        main = paths.kinesis_package_dir(self.config.root) / "main.js"
        if not main.is_file():
            raise PrerequisiteMissingError(f"kinesis: {main} is missing; run `make npm`")

    def launch(self) -> process.PidRecord:
        node = shutil.which("node") or "node"
        preload = paths.kinesis_dir(self.config.root) / "loopback.js"
        env = {
            **os.environ,
            "KINESIS_MOCK_PLAIN_PORT": str(self.port),
            "KINESIS_MOCK_TLS_PORT": str(self.config.port("kinesis-tls")),
            "FEATURESTREAM_KINESIS_HOST": LOOPBACK,
            "AWS_ACCOUNT_ID": ACCOUNT_ID,
            "AWS_REGION": self.config.region,
            "LOG_LEVEL": "INFO",
        }
        # Run from the package folder: kinesis-local reads its TLS material from ./server.json.
        return process.spawn(
            [node, "-r", str(preload), "main.js"],
            log_path=self.log_path,
            pid_path=self.pid_path,
            cwd=paths.kinesis_package_dir(self.config.root),
            env=env,
        )

    def healthy(self) -> bool:
        if not process.port_open(self.port):
            return False
        try:
            probe_client("kinesis", self.endpoint(), self.config.region).list_streams(Limit=1)
        except (BotoCoreError, ClientError):
            return False
        return True

    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL_KINESIS": self.endpoint()}
