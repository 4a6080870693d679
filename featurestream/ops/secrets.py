"""Secrets of a job: read at run time from the environment or a mounted file, never from config,
and masked in every Python log line once read. Credentials written into text by their form (a
URL's `user:password@`, `password=...`; featurestream.config.credentials) are masked too, read or not.

Kafka authentication goes through the profile: plain options (`security.protocol`,
`sasl.mechanism`, truststore locations) in `kafka.options`, secret values (`sasl.jaas.config`,
keystore passwords) in `security.kafka_secret_options` as references, and Amazon MSK IAM as one
switch that adds the four client options the aws-msk-iam-auth library documents.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from pathlib import Path

from featurestream.config import credentials
from featurestream.config.profile import SecretRef, SecuritySpec
from featurestream.errors import ConfigError
from featurestream.logs import filter_every_root_handler

MASK = "***"
# Values shorter than this would mask ordinary words in log lines; no real secret is this short.
_MIN_SECRET_LENGTH = 6
# Credentials the AWS default chain reads from the environment (instance profiles and IRSA give
# none to a log). Real ones are 16+ characters; local stand-ins such as `testing` are not masked.
AWS_CREDENTIAL_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_MIN_AWS_CREDENTIAL_LENGTH = 16
_JAAS_SECRET = re.compile(r'(?i)(?:password|secret|token)\s*=\s*"([^"]+)"')

MSK_IAM_OPTIONS = {
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "AWS_MSK_IAM",
    "sasl.jaas.config": "software.amazon.msk.auth.iam.IAMLoginModule required;",
    "sasl.client.callback.handler.class": "software.amazon.msk.auth.iam.IAMClientCallbackHandler",
}
# The client library MSK IAM needs on the driver and executors (`--packages`).
MSK_IAM_PACKAGE = "software.amazon.msk:aws-msk-iam-auth:2.3.5"


def read_secret(ref: SecretRef, source: str, field: str) -> str:
    """The secret's value; a missing variable or unreadable file is a ConfigError (exit 2)."""
    if ref.env is not None:
        value = os.environ.get(ref.env)
        if not value:
            raise ConfigError(source, field, f"environment variable {ref.env} is not set")
    else:
        assert ref.file is not None
        try:
            value = Path(ref.file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(source, field, f"cannot read the secret file {ref.file} ({exc.strerror})") from None
        if not value:
            raise ConfigError(source, field, f"the secret file {ref.file} is empty")
    return value


def kafka_security_options(security: SecuritySpec, plain: dict[str, str], source: str) -> dict[str, str]:
    """Kafka client options to add to `kafka.options`: MSK IAM's and the resolved secret ones.

    The values read are registered with the log redactor before they are returned.
    """
    extra: dict[str, str] = {}
    if security.kafka_msk_iam:
        for key, value in MSK_IAM_OPTIONS.items():
            if key in plain and plain[key] != value:
                raise ConfigError(source, f"kafka.options.{key}",
                                  f"is {plain[key]!r} but security.kafka_msk_iam needs {value!r}")
            extra[key] = value
    for key, ref in security.kafka_secret_options.items():
        field = f"security.kafka_secret_options.{key}"
        if key in plain or key in extra:
            raise ConfigError(source, field, "is also set elsewhere (kafka.options or kafka_msk_iam); set it once")
        value = read_secret(ref, source, field)
        register_secret(value)
        extra[key] = value
    return extra


class SecretRedactor(logging.Filter):
    """Replaces every registered secret value, and every credential by its form, in a record's
    message and traceback."""

    def __init__(self) -> None:
        super().__init__("featurestream.ops.secrets")
        self.values: set[str] = set()

    def redact(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, MASK)
        return credentials.redact(text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the caller's problem; let logging report it
            return True
        cleaned = self.redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


_redactor = SecretRedactor()
_lock = threading.RLock()  # register_secret calls install_redactor holding it


def register_secret(value: str) -> None:
    """Mask `value` in every log line from now on (root handlers; call again after adding one)."""
    with _lock:
        if len(value) >= _MIN_SECRET_LENGTH:
            _redactor.values.add(value)
            # The password inside a JAAS config is masked on its own too (an error may quote it alone).
            _redactor.values.update(v for v in _JAAS_SECRET.findall(value) if len(v) >= _MIN_SECRET_LENGTH)
        install_redactor()


def install_redactor() -> SecretRedactor:
    """Add the redactor to every root handler; AWS credentials in the environment are masked too."""
    with _lock:
        _redactor.values.update(v for name in AWS_CREDENTIAL_VARIABLES
                                if len(v := os.environ.get(name, "")) >= _MIN_AWS_CREDENTIAL_LENGTH)
    filter_every_root_handler(_redactor)
    return _redactor


def redact(text: str) -> str:
    """`text` with every registered secret and every credential by its form masked (for lines we
    print and files we write: failures, manifests, lineage)."""
    return _redactor.redact(text)
