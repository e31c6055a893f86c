"""Work done in a forked process comes back as if done here, or is done here."""
from __future__ import annotations

import os

import pytest

from kg.forking import Forked, Standby


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


_READY: list[int] = []


def _get_ready() -> None:
    _READY.append(os.getpid())


def _where_ready(value: int) -> tuple[int, list[int], int]:
    return os.getpid(), list(_READY), value + 1


def test_a_standby_gets_ready_first_and_computes_what_it_is_sent_later():
    job = Standby(_get_ready, _where_ready)
    job.run(41)
    pid, ready, value = job.result()
    assert value == 42 and pid != os.getpid() and ready == [pid]   # ready there, not here
    assert _READY == []


def _die(value: int) -> int:
    os._exit(3)


def _dies_there(parent: int, value: int) -> int:
    if os.getpid() != parent:
        os._exit(3)
    return value * 2


def test_what_a_standby_fails_at_or_dies_of_is_done_here():
    job = Standby(None, _only_here)
    job.run(os.getpid(), 21)
    assert job.result() == 42
    job = Standby(None, _dies_there)
    job.run(os.getpid(), 4)
    assert job.result() == 8
    job = Standby(_die, _only_here)       # dies while getting ready
    job.run(os.getpid(), 5)
    assert job.result() == 10
    with pytest.raises(ValueError):       # an error here is the caller's
        job = Standby(None, int)
        job.run("not a number")
        job.result()


def test_a_standby_never_sent_anything_ends():
    job = Standby(None, _where_ready)
    child = job._child
    job.close()
    assert child is not None and child.exitcode == 0
    with pytest.raises(RuntimeError):
        job.result()


def test_where_no_process_can_start_the_work_is_done_here(monkeypatch):
    import multiprocessing.context

    def refuse(self):
        raise OSError("no more processes")

    monkeypatch.setattr(multiprocessing.context.ForkProcess, "start", refuse)
    assert Forked(os.getpid).result() == os.getpid()
    job = Standby(None, os.getpid)
    job.run()
    assert job.result() == os.getpid()
    from kg import workers

    forks = workers.Forks(2)        # no extraction worker: its tasks fail, for the caller
    with pytest.raises(workers.WorkerError, match="no extraction worker"):
        forks.submit(os.getpid).get()
    forks.close()
