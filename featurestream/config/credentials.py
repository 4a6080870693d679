"""Credentials inside config values: what is refused at load, and the one way to mask them in text.

Secrets come from the environment or secret files, never from a config file: a JDBC password
from `password_env` / `password_file`, Kafka secrets from `security.kafka_secret_options`. So a
value that carries one is refused when the file is loaded, in every form a driver or client
accepts:

- a URL's user information, `scheme://user:password@host` (MySQL, MariaDB, PostgreSQL, HTTP);
- Oracle thin's `jdbc:oracle:thin:user/password@host`;
- a `name=value` pair whose name is a secret's (`password`, `sslpassword`, `PWD`, `clientSecret`,
  `apiToken`, `secret_key`, ...) as a URL parameter (`?`, `&`), a property (`;password=`, MySQL's
  `(host=h,password=p)`) or inside a JAAS string (`password="..."`).

`redact` masks the same forms in any text (a URL, an error message, a log line, a manifest
value); everything that prints or records a URL goes through it. A user name is not a secret and
stays readable.
"""

from __future__ import annotations

import re

MASK = "***"

# The name of a setting whose value is a secret: it ends with one of these words.
_SECRET_NAME = r"(?:password|passwd|passphrase|pwd|secret|token|credentials?|api_?key|access_?key|private_?key)"  # noqa: S105
# `name=value`, `name = "value"`, `name='value'`: the name starts after a non-name character.
_PAIR = re.compile(
    r"(?i)(?<![A-Za-z0-9_.-])((?:[A-Za-z][A-Za-z0-9_.-]*?)?" + _SECRET_NAME + r")(\s*=\s*)"
    r"(\"[^\"]*\"|'[^']*'|[^\s&;,)\"'}\]]*)"
)
# `scheme://user:password@host`: the password runs to the last `@` before the path.
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:]*):([^\s/?#]*)@")
# Oracle thin: `jdbc:oracle:thin:user/password@...`.
_ORACLE = re.compile(r"(?i)(jdbc:oracle:[a-z0-9]+:[^\s/@:]+)/([^\s@]+)@")
_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^\s/?#]*)")


def credential_in(value: str) -> str | None:
    """What kind of credential `value` carries (never the credential itself), or None."""
    for match in _AUTHORITY.finditer(value):
        userinfo, at, _ = match.group(1).rpartition("@")
        if at and ":" in userinfo:
            return "a password in the URL (user:password@host)"
    if _ORACLE.search(value):
        return "a password in the URL (user/password@host)"
    pair = _PAIR.search(value)
    if pair:
        return f"a password or other secret ({pair.group(1)}=...)"
    return None


def redact(text: str) -> str:
    """`text` with every credential of the forms above replaced by `***` (the rest kept as is)."""
    text = _USERINFO.sub(lambda m: f"{m.group(1)}:{MASK}@", text)
    text = _ORACLE.sub(lambda m: f"{m.group(1)}/{MASK}@", text)
    return _PAIR.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def refuse_credentials(value: str, where: str = "") -> str:
    """`value` unchanged, or ValueError naming the kind of credential (for field validators)."""
    found = credential_in(value)
    if found:
        hint = f" {where}" if where else ""
        raise ValueError(f"carries {found}: secrets never go in the config{hint}")
    return value


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def env_var_name(value: str) -> str:
    """A `password_env`: the *name* of an environment variable, never the secret itself."""
    if not _ENV_NAME.match(value):
        raise ValueError(f"{value!r} is not an environment variable name")
    return value
