"""The restart budget: bounded restarts per window, doubling waits, refilled as failures age out."""

from __future__ import annotations

from featurestream.ops.recovery import RestartBudget


def test_budget() -> None:
    budget = RestartBudget(max_restarts=3, window_s=100, backoff_s=5, backoff_max_s=12)
    assert [budget.next_wait(t) for t in (0, 1, 2)] == [5, 10, 12]
    assert budget.next_wait(3) is None  # four failures within 100 s
    assert budget.next_wait(100.5) == 12  # the failure at 0 aged out; two remain in the window
    assert budget.used == 3
    assert budget.next_wait(250) == 5  # all aged out: back to the first wait


def test_no_restarts() -> None:
    assert RestartBudget(max_restarts=0, window_s=60, backoff_s=1, backoff_max_s=1).next_wait(0) is None


QUERY_ERROR = """An exception was raised by the Python Proxy. Return Message: Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/py4j/clientserver.py", line 617, in _call_proxy
    return_value = getattr(self.pool[obj_id], method)(*params)
                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "/venv/lib/python3.11/site-packages/pyspark/sql/utils.py", line 120, in call
    raise e
  File "/venv/lib/python3.11/site-packages/pyspark/sql/utils.py", line 117, in call
    self.func(DataFrame(jdf, wrapped_session_jdf), batch_id)
  File "/work/main/featurestream/engine/pipeline.py", line 120, in __call__
    raise SinkError("writing batch 3 to fg failed: connectors.writer.errors.DeadlineExceeded: out of time")
featurestream.errors.SinkError: writing batch 3 to fg failed: connectors.writer.errors.DeadlineExceeded: out of time

=== Streaming Query ===
Identifier: [id = 5b6e, runId = 0c1f]
Current Committed Offsets: {}
"""


def test_query_error_summary() -> None:
    from featurestream.cli.commands.stream import summarise_error

    assert summarise_error(QUERY_ERROR) == (
        "featurestream.errors.SinkError: writing batch 3 to fg failed: connectors.writer.errors.DeadlineExceeded: "
        "out of time")
    assert summarise_error("plain message\nmore") == "plain message"
