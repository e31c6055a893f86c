"""Work done in a forked process comes back as if done here, or is done here."""
from __future__ import annotations

import os

import pytest

from kg.forking import Forked


def _only_here(parent: int, value: int) -> int:
    if os.getpid() != parent:
        raise RuntimeError("not in the forked process")
    return value * 2


def test_a_result_comes_back_from_the_fork():
    assert Forked(sorted, [3, 1, 2]).result() == [1, 2, 3]


def test_what_fails_in_the_fork_is_done_here():
    assert Forked(_only_here, os.getpid(), 21).result() == 42


def test_an_error_here_is_the_callers():
    with pytest.raises(ValueError):
        Forked(int, "not a number").result()


def _pids() -> tuple[int, int]:
    return os.getpid(), Forked(os.getpid).result()


def test_a_process_that_is_no_daemon_may_fork_in_turn():
    mine, nested = Forked(_pids, daemon=False).result()
    assert os.getpid() != mine != nested          # the inner fork ran, in a third process


def test_an_answer_not_wanted_is_waited_for_and_dropped():
    job = Forked(sorted, [2, 1])
    job.close()
    assert job.result() == [1, 2]                  # asked again: computed here
