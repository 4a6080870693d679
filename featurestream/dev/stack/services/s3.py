"""S3: moto's server from the venv, in memory, on 127.0.0.1."""

from __future__ import annotations

import sys

from botocore.exceptions import BotoCoreError, ClientError

from featurestream.dev.stack import process
from featurestream.dev.stack.config import LOOPBACK
from featurestream.dev.stack.services.aws_probe import probe_client
from featurestream.dev.stack.services.base import Service


class S3Service(Service):
    name = "s3"

    def launch(self) -> process.PidRecord:
        cmd = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.port)]
        return process.spawn(cmd, log_path=self.log_path, pid_path=self.pid_path, cwd=self.dir)

    def healthy(self) -> bool:
        if not process.port_open(self.port):
            return False
        try:
            probe_client("s3", self.endpoint(), self.config.region).list_buckets()
        except (BotoCoreError, ClientError):
            return False
        return True

    def after_healthy(self) -> None:
        """Create the offline-store bucket the `local` profile names.

        The emulator, like AWS, refuses a feature group whose offline-store bucket does not exist,
        and moto starts empty: without this, `feature-groups apply --env local` and the demo fail.
        """
        client = probe_client("s3", self.endpoint(), self.config.region)
        for bucket in local_profile_buckets():
            try:
                client.create_bucket(Bucket=bucket)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    def env(self) -> dict[str, str]:
        # moto's server answers every AWS service on this port; Glue holds the offline stores' tables.
        return {"AWS_ENDPOINT_URL_S3": self.endpoint(), "AWS_ENDPOINT_URL_GLUE": self.endpoint()}


def local_profile_buckets() -> list[str]:
    """Buckets of the offline store URIs in the `local` profile (none when it names none)."""
    from featurestream.config.loader import load_profile

    uri = load_profile("local").feature_store.offline_store_s3_uri
    if not uri or not uri.startswith("s3://"):
        return []
    return [uri.removeprefix("s3://").split("/", 1)[0]]
