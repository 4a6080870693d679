"""Named failures of the local stack; the CLI maps them to exit codes (2 = bad input, 1 = failure)."""

from __future__ import annotations


class StackError(Exception):
    """Base of every local-stack failure."""


class StackConfigError(StackError):
    """A bad service name, port or path in the arguments or the environment (exit code 2)."""


class PrerequisiteMissingError(StackError):
    """Something the set-up step provides is absent: jars, node_modules, java, PostgreSQL."""


class PortInUseError(StackError):
    """A service's port is taken by a process this stack did not start."""


class ServiceStartError(StackError):
    """A service did not become healthy in time; the message names its log file."""
