"""`--env PROFILE` of the commands and jobs that run Spark, and what its absence means.

Without `--env` a command uses the `local` profile (the local stack). Under spark-submit to a
cluster master that default would point a cluster job at 127.0.0.1, so there it is an error.
"""

from __future__ import annotations

import argparse

from featurestream.errors import ConfigError
from featurestream.spark import submitted_master

DEFAULT_PROFILE = "local"


def add_env_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", default=None, metavar="PROFILE",
                        help="environment profile: a YAML file, or a name looked up in ./conf/environments, then "
                             "among the profiles shipped with featurestream (local, aws); default: local, "
                             "except under spark-submit to a cluster, where it is required")


def profile_name(given: str | None) -> str:
    """`--env` as given, else `local`; a ConfigError under spark-submit with a non-local master."""
    if given:
        return given
    master = submitted_master()
    if master is not None and not master.startswith("local"):
        raise ConfigError("command line", "--env", f"required under spark-submit --master {master}: the default "
                          f"profile {DEFAULT_PROFILE!r} is the local stack's (give --env aws or a profile file)")
    return DEFAULT_PROFILE
