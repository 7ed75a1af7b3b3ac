"""Fair sharing of the operator between applications: one huge application never starves the
others (issue 10 §4).

Two mechanisms, both round robin across applications:

- `Turns`: at most N reconciles run at once, granted in arrival order; a reconcile working
  through thousands of children passes its turn between chunks (`pass_turn`) whenever another
  application waits, and goes to the back of the line.
- `FairPool`: the threads that GET and write children serve the applications with queued
  requests in turn, one request each, instead of first come first served: the few requests of
  a small application wait behind at most one request of each other application, not behind
  the thousands a large one queued first.

Without them (one first-come-first-served pool of 8 threads), a one-line change to an
application waited for the 6,000 applies of another to drain (45 s in issue 10);
bench/reconcile.py measures the delay now (docs/PERFORMANCE.md, section 5).
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Closed(Exception):
    """The operator is stopping: no more turns are granted."""


class Turns:
    """At most `slots` holders at once, in arrival order (a ticket queue: no barging)."""

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self._slots = slots
        self._cond = threading.Condition()
        self._waiting: deque[object] = deque()
        self._holders: set[int] = set()
        self._closed = False

    def close(self) -> None:
        """Stop granting turns: whoever waits for one, or passes one, gets `Closed` (a
        stopping operator must not start the reconciles still waiting in their threads)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        """Grant turns again: kopf's machinery restarted in-process after a failure (`run`),
        its cleanup closed them, and the same workers serve the new machinery."""
        with self._cond:
            self._closed = False

    @property
    def waiting(self) -> int:
        """How many wait for a turn (for metrics and tests)."""
        with self._cond:
            return len(self._waiting)

    def _wait(self) -> None:
        """Queue up and wait to be first with a free slot; call holding the condition."""
        ticket = object()
        self._waiting.append(ticket)
        try:
            while not (len(self._holders) < self._slots and self._waiting[0] is ticket):
                if self._closed:
                    raise Closed
                self._cond.wait()
            if self._closed:
                raise Closed
        except BaseException:
            self._waiting.remove(ticket)
            self._cond.notify_all()
            raise
        self._waiting.popleft()
        self._holders.add(threading.get_ident())
        self._cond.notify_all()  # the next ticket may go too if another slot is free

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold a turn for the duration of the block (a thread holds at most one)."""
        me = threading.get_ident()
        with self._cond:
            if me in self._holders:
                raise RuntimeError("this thread already holds a turn")
            self._wait()
        try:
            yield
        finally:
            with self._cond:
                self._holders.discard(me)
                self._cond.notify_all()

    def pass_turn(self) -> None:
        """Let whoever waits go first, then wait for a turn again at the back of the line. A
        no-op when nobody waits, or when the calling thread holds no turn (a reconcile called
        directly, the finalizer)."""
        me = threading.get_ident()
        with self._cond:
            if me not in self._holders or not self._waiting:
                return
            self._holders.discard(me)
            self._cond.notify_all()
            self._wait()


class FairPool:
    """`workers` threads serving the queued calls of several owners in turn (round robin, one
    call per owner per round); an owner's calls run concurrently with each other and with
    other owners'. Threads start on first use and live as long as the process (daemons)."""

    def __init__(self, workers: int, name: str = "fair") -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self._workers = workers
        self._name = name
        self._cond = threading.Condition()
        self._queues: OrderedDict[str, deque[tuple[Future[Any], Callable[[Any], Any], Any]]] = (
            OrderedDict()
        )
        self._threads: list[threading.Thread] = []
        self._idle = 0

    def map(self, owner: str, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """`[fn(item) for item in items]`, run on the pool in `owner`'s turn; results in order.
        The first exception is raised once every call has finished (none is left running).
        A single item runs in the calling thread (no hand-off for one call)."""
        todo = list(items)
        if len(todo) <= 1:
            return [fn(item) for item in todo]
        futures: list[Future[R]] = [Future() for _ in todo]
        with self._cond:
            queue = self._queues.setdefault(owner, deque())
            queue.extend(zip(futures, [fn] * len(todo), todo, strict=True))
            missing = min(self._workers - len(self._threads), len(todo) - self._idle)
            for _ in range(max(0, missing)):
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            self._cond.notify(len(todo))
        for future in futures:
            future.exception()  # wait for all before raising any
        return [future.result() for future in futures]

    def _next(self) -> tuple[Future[Any], Callable[[Any], Any], Any]:
        """The next call: the first owner's oldest, then that owner goes to the back."""
        with self._cond:
            while not self._queues:
                self._idle += 1
                try:
                    self._cond.wait()
                finally:
                    self._idle -= 1
            owner, queue = next(iter(self._queues.items()))
            call = queue.popleft()
            if queue:
                self._queues.move_to_end(owner)
            else:
                del self._queues[owner]
            return call

    def _work(self) -> None:
        while True:
            future, fn, item = self._next()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(item)
            except BaseException as exc:  # handed to the caller, like an executor's future
                future.set_exception(exc)
            else:
                future.set_result(result)
