"""The exit-code contract of every featurestream command and job, as task outcomes.

    0  success
    1  a failure worth retrying (a service down, a lock held by a live run, Spark lost): retried
    2  bad configuration or arguments: retrying cannot help, the task fails at once, no retry
    3  a check ran and found its threshold exceeded (consistency): the task fails, no retry, and
       says so, so it is not mistaken for a crash

AirflowFailException is Airflow's "fail without retrying"; any other exception is retried while
the task has retries left.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException, AirflowFailException

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG, EXIT_THRESHOLD = 0, 1, 2, 3


def raise_for_exit(code: int, what: str, error_line: str | None) -> None:
    """Nothing for 0; otherwise the exception that gives the task the contract's outcome."""
    cause = f": {error_line}" if error_line else ""
    if code == EXIT_OK:
        return
    if code == EXIT_CONFIG:
        raise AirflowFailException(f"{what} exited 2 (configuration error, not retried){cause}")
    if code == EXIT_THRESHOLD:
        raise AirflowFailException(f"{what} exited 3 (check threshold exceeded, not retried){cause}")
    raise AirflowException(f"{what} exited {code} (failure, retried while retries remain){cause}")
