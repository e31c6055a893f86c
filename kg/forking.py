"""Run a function in a forked process while this one goes on; take its result later."""
from __future__ import annotations

import logging
import multiprocessing as mp
from collections.abc import Callable
from typing import Any

__all__ = ["Forked", "can_fork"]

log = logging.getLogger(__name__)


def can_fork() -> bool:
    return "fork" in mp.get_all_start_methods()


class Forked:
    """``function(*args)`` computed in a child forked now (it sees this process's memory
    as it is, nothing is pickled on the way in; the result comes back pickled), or here,
    when `result` is called, where processes cannot be forked or the child failed.

    >>> Forked(sum, [1, 2, 3]).result()
    6
    """

    def __init__(self, function: Callable[..., Any], *args: Any) -> None:
        self.function, self.args = function, args
        self._child = None
        if can_fork():
            context = mp.get_context("fork")
            self._receive, send = context.Pipe(duplex=False)
            # not a daemon: the function may start processes of its own (GraphML does)
            self._child = context.Process(target=_run, args=(function, args, send))
            self._child.start()
            send.close()

    def result(self) -> Any:
        if self._child is not None:
            child, self._child = self._child, None
            try:
                done, value = self._receive.recv()
            except (EOFError, OSError):
                done, value = False, "it ended without an answer"
            finally:
                self._receive.close()
                child.join()
            if done:
                return value
            log.debug("a forked %s failed (%s); computed here", self.function.__name__, value)
        return self.function(*self.args)


def _run(function: Callable[..., Any], args: tuple, send) -> None:
    try:
        answer = (True, function(*args))
    except Exception as err:  # noqa: BLE001 - reported to the parent, which computes it
        answer = (False, f"{type(err).__name__}: {err}")
    send.send(answer)
