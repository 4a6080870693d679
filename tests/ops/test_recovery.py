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
