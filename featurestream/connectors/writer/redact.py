"""Keep AWS credential values out of every log line, whoever logs them.

botocore at DEBUG prints request headers (the access key id sits in `Authorization`), and an
error message could echo a value. A filter on the root handlers rewrites such records before
they are emitted: known credential values from the environment and the boto3 session are
replaced, and so are access key ids, `Credential=`, signatures and security tokens by pattern.
"""

from __future__ import annotations

import logging
import os
import re
import threading

from featurestream.logs import filter_every_root_handler

# (pattern, replacement): whole access key ids, and the value after a telling prefix.
_PATTERNS = (
    (re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{12,}"), "***"),
    (re.compile(r"(Credential=)[^/,\s'\"]+"), r"\1***"),
    (re.compile(r"(Signature=)[0-9a-fA-F]+"), r"\1***"),
    (re.compile(r"((?:x-amz-security-token|aws_secret_access_key|aws_session_token|secretaccesskey|sessiontoken)"
                r"['\"]?\s*[:=]\s*b?['\"]?)[^'\",\s}]+", re.IGNORECASE), r"\1***"),
)
_ENV_SECRETS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
MASK = "***"


def _session_values() -> set[str]:
    """Credentials the default chain resolves (instance profile, files...); costly, so once."""
    try:
        import boto3

        credentials = boto3.session.Session().get_credentials()
        if credentials is None:
            return set()
        frozen = credentials.get_frozen_credentials()
        return {v for v in (frozen.access_key, frozen.secret_key, frozen.token) if v}
    except Exception:  # no resolvable credentials is fine: nothing to hide then
        return set()


def _known_values(session_values: set[str]) -> set[str]:
    values = {os.environ[name] for name in _ENV_SECRETS if os.environ.get(name)} | session_values
    # Very short values would mask ordinary words; real credentials are long.
    return {v for v in values if len(v) >= 8}


def redact(text: str, values: set[str]) -> str:
    for value in values:
        if value in text:
            text = text.replace(value, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class CredentialRedactor(logging.Filter):
    """Rewrites a record's message (args merged in) when it carries a credential."""

    def __init__(self) -> None:
        super().__init__("featurestream.redact")
        self.session_values = _session_values()
        self.values = _known_values(self.session_values)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the logger's problem, not ours
            return True
        cleaned = redact(message, self.values)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.values)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_installed: CredentialRedactor | None = None
_lock = threading.Lock()


def install_redaction() -> CredentialRedactor:
    """Attach the filter to every root handler (and the last-resort one); idempotent.

    Handlers added later are covered by calling it again; the known values are refreshed.
    """
    global _installed
    with _lock:
        if _installed is None:
            _installed = CredentialRedactor()
        else:
            _installed.values = _known_values(_installed.session_values)
        filter_every_root_handler(_installed)
        return _installed
