"""Run a function in a forked process while this one goes on; take its result later."""
from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
from collections.abc import Callable
from typing import Any

__all__ = ["Forked", "Standby", "can_fork"]

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

    def __init__(self, function: Callable[..., Any], *args: Any, daemon: bool = True) -> None:
        """``daemon=False`` lets the function start processes of its own; then the caller
        must take the `result` or `close` (a daemon is stopped when this process ends)."""
        self.function, self.args = function, args
        self._child = None
        if can_fork():
            self._receive, send = mp.get_context("fork").Pipe(duplex=False)
            self._child = _start(function, _run, (function, args, send), self._receive, send,
                                 daemon=daemon)

    def result(self) -> Any:
        if self._child is not None:
            child, self._child = self._child, None
            try:
                done, value = _answer(self._receive, self.function)
            finally:
                self._receive.close()
                child.join()
            if done:
                return value
        return self.function(*self.args)

    def close(self) -> None:
        """Wait for the child and drop its answer (when the result is not wanted)."""
        if self._child is not None:
            child, self._child = self._child, None
            with contextlib.suppress(EOFError, OSError):
                self._receive.recv()
            self._receive.close()
            child.join()


def _start(function: Callable[..., Any], target: Callable[..., None], args: tuple, ours,
           theirs, *, daemon: bool):
    """A child forked to run ``target(*args)`` for ``function``, or None when no process
    could start (a limit; a daemon cannot have children): then ``ours``, this process's
    end of the pipe, is closed too. ``theirs`` is the child's end: closed here either
    way."""
    child = mp.get_context("fork").Process(target=target, args=args, daemon=daemon)
    try:
        child.start()
    except Exception as err:  # noqa: BLE001 - no process: computed here
        log.debug("no process for %s (%s); computed here", function.__name__, err)
        ours.close()
        child = None
    theirs.close()
    return child


def _run(function: Callable[..., Any], args: tuple, send) -> None:
    send.send(_computed(function, args))


def _computed(function: Callable[..., Any], args: tuple) -> tuple[bool, Any]:
    """In a child: ``(True, value)``, or ``(False, why)`` for the parent to compute it."""
    try:
        return True, function(*args)
    except Exception as err:  # noqa: BLE001 - reported to the parent, which computes it
        return False, f"{type(err).__name__}: {err}"


def _answer(talk, function: Callable[..., Any]) -> tuple[bool, Any]:
    """In the parent: what the child sent (`_computed`), or why there is nothing."""
    try:
        done, value = talk.recv()
    except (EOFError, OSError):
        done, value = False, "it ended without an answer"
    if not done:
        log.debug("a forked %s failed (%s); computed here", function.__name__, value)
    return done, value


class Standby:
    """A child forked now that gets ready (``prepare()``) while this process goes on, then
    computes ``function(*args)`` with the arguments `run` sends it later: for work whose
    inputs come late but whose set-up (imports, say) can be done early, on a core that
    would idle. `result` gives the value, computed here where the child could not be
    forked, failed or died (``prepare`` is then not needed: ``function`` does its own).

    >>> job = Standby(None, sum); job.run([1, 2, 3]); job.result()
    6
    """

    def __init__(self, prepare: Callable[[], Any] | None, function: Callable[..., Any]) -> None:
        self.function = function
        self._args: tuple | None = None
        self._child = None
        if can_fork():
            self._talk, theirs = mp.get_context("fork").Pipe()
            self._child = _start(function, _stand_by, (prepare, function, theirs, self._talk),
                                 self._talk, theirs, daemon=True)

    def run(self, *args: Any) -> None:
        """Send the child the arguments (once)."""
        self._args = args
        if self._child is not None:
            try:
                self._talk.send(args)
            except (OSError, ValueError, TypeError, AttributeError) as err:  # dead, or
                log.debug("%s not sent (%s); computed here", self.function.__name__, err)
                self.close()                                    # unpicklable: here

    def result(self) -> Any:
        """The value of ``function(*args)`` for the arguments `run` sent."""
        if self._args is None:
            raise RuntimeError("Standby.result before run")
        if self._child is not None:
            try:
                done, value = _answer(self._talk, self.function)
            finally:
                self.close()
            if done:
                return value
        return self.function(*self._args)

    def close(self) -> None:
        """Stop waiting for the child (it ends when it finds nobody to talk to)."""
        if self._child is not None:
            child, self._child = self._child, None
            self._talk.close()
            child.join()


def _stand_by(prepare: Callable[[], Any] | None, function: Callable[..., Any], talk,
              ours) -> None:
    ours.close()        # the parent's end: once the parent closes it, nothing is coming
    if prepare is not None:
        try:
            prepare()
        except Exception:  # noqa: BLE001, S110 - the function does its own set-up
            pass
    try:
        args = talk.recv()
    except (EOFError, OSError):
        return                  # nothing to do after all
    talk.send(_computed(function, args))
