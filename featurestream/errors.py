"""Named exceptions. Entry points map them to exit codes (2 for config, 1 for the rest)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class FeatureStreamError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(FeatureStreamError):
    """A configuration file or argument is wrong; raised before Spark starts (exit code 2).

    The message is one line naming the file, the field and the reason, so a user can fix it
    without reading a traceback.
    """

    def __init__(self, source: str | Path, field: str, reason: str) -> None:
        self.source = str(source)
        self.field = field
        self.reason = reason
        where = f"{self.source}: {field}" if field else self.source
        super().__init__(f"{where}: {reason}")

    @property
    def problems(self) -> tuple[ConfigError, ...]:
        """Every mistake this error stands for, one line each (a plain ConfigError is one)."""
        return (self,)

    @staticmethod
    def of(problems: Sequence[ConfigError]) -> ConfigError:
        """One error for one problem, a ConfigErrors for several (so a user fixes them in one go)."""
        return problems[0] if len(problems) == 1 else ConfigErrors(problems)


class ConfigErrors(ConfigError):
    """Several mistakes of one file; `str()` is one line per mistake, the attributes are the first's."""

    def __init__(self, problems: Sequence[ConfigError]) -> None:
        if not problems:
            raise ValueError("ConfigErrors needs at least one problem")
        first = problems[0]
        super().__init__(first.source, first.field, first.reason)
        self._problems = tuple(p for problem in problems for p in problem.problems)
        self.args = ("\n".join(str(p) for p in self._problems),)

    @property
    def problems(self) -> tuple[ConfigError, ...]:
        return self._problems


class SinkError(FeatureStreamError):
    """Writing to the online store failed for good; the micro-batch fails so Spark retries it."""


class DataLossError(FeatureStreamError):
    """Kafka records the job had not read are gone and `kafka.fail_on_data_loss` is true (exit 1).

    Not retried: a restart from the checkpoint asks for the same missing offsets.
    """
