"""Fair sharing between applications (issue 10 §4): `Turns` and `FairPool`, and the reconciler
working through a large application in chunks that let others go first.

Threads are synchronised with events and polled with a deadline, never with sleeps; what is
asserted is the order in which work was granted, not how long it took (the benchmark measures
that: docs/PERFORMANCE.md, section 5).

Aspects covered:
- turns are granted in arrival order, at most `slots` at once; passing a turn lets every
  waiter that came before go first, and is a no-op when nobody waits or no turn is held;
- the pool serves owners round robin: a small owner's calls wait behind one call of a large
  owner each, not behind all of them; results keep their order; an exception surfaces once
  every call has finished;
- the reconciler paces between chunks of a large wave, and only then.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from federator.devcluster.harness import eventually
from federator.operator import run, workers
from federator.operator.fairness import Closed, FairPool, Turns
from federator.operator.reconciler import CHUNK, OBSERVERS, Reconciler

WAIT = 10.0  # a deadline, never a delay: events fire as soon as the work happens


def started(target: Callable[[], Any]) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread


# -- Turns


def test_turns_are_granted_in_arrival_order() -> None:
    turns = Turns(1)
    order: list[str] = []
    release = threading.Event()
    holding = threading.Event()

    def holder() -> None:
        with turns.turn():
            holding.set()
            assert release.wait(WAIT)

    def waiter(name: str) -> None:
        with turns.turn():
            order.append(name)

    threads = [started(holder)]
    assert holding.wait(WAIT)
    for queued, name in enumerate(("a", "b", "c"), 1):
        threads.append(started(lambda name=name: waiter(name)))
        eventually(lambda n=queued: turns.waiting == n, "queued", WAIT, 0.001)
    release.set()
    for thread in threads:
        thread.join(WAIT)
    assert order == ["a", "b", "c"]


def test_passing_a_turn_lets_the_waiters_go_first() -> None:
    turns = Turns(1)
    order: list[str] = []
    holding = threading.Event()
    go = threading.Event()

    def large() -> None:
        with turns.turn():
            holding.set()
            assert go.wait(WAIT)
            order.append("large: chunk 1")
            turns.pass_turn()
            order.append("large: chunk 2")

    def small(name: str) -> None:
        with turns.turn():
            order.append(name)

    threads = [started(large)]
    assert holding.wait(WAIT)
    threads += [started(lambda: small("small 1")), started(lambda: small("small 2"))]
    eventually(lambda: turns.waiting == 2, "two waiting", WAIT, 0.001)
    go.set()
    for thread in threads:
        thread.join(WAIT)
    assert order == ["large: chunk 1", "small 1", "small 2", "large: chunk 2"]


def test_passing_a_turn_is_free_when_nobody_waits_or_none_is_held() -> None:
    turns = Turns(2)
    turns.pass_turn()  # no turn held: nothing happens
    with turns.turn():
        turns.pass_turn()  # nobody waits: keeps the turn
        assert turns.waiting == 0
    with turns.turn(), pytest.raises(RuntimeError):
        turns.turn().__enter__()


def test_a_stopping_operator_grants_no_more_turns() -> None:
    """Reconciles waiting in their threads when the operator stops never start."""
    turns = Turns(1)
    outcome: list[str] = []
    holding = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with turns.turn():
            holding.set()
            assert release.wait(WAIT)

    def waiter() -> None:
        try:
            with turns.turn():
                outcome.append("ran")
        except Closed:
            outcome.append("closed")

    threads = [started(holder)]
    assert holding.wait(WAIT)
    threads.append(started(waiter))
    eventually(lambda: turns.waiting == 1, "waiting", WAIT, 0.001)
    turns.close()
    threads[1].join(WAIT)
    assert outcome == ["closed"] and turns.waiting == 0
    release.set()
    threads[0].join(WAIT)
    with pytest.raises(Closed), turns.turn():
        pass
    # kopf's machinery restarted in-process (its cleanup closed the turns): they open again.
    turns.reopen()
    with turns.turn():
        outcome.append("ran after reopen")
    assert outcome[-1] == "ran after reopen"


def test_at_most_slots_turns_at_once() -> None:
    turns = Turns(2)
    inside = 0
    most = 0
    lock = threading.Lock()
    gate = threading.Event()

    def work() -> None:
        nonlocal inside, most
        with turns.turn():
            with lock:
                inside += 1
                most = max(most, inside)
            assert gate.wait(WAIT)
            with lock:
                inside -= 1

    threads = [started(work) for _ in range(5)]
    eventually(lambda: turns.waiting == 3, "three waiting", WAIT, 0.001)
    gate.set()
    for thread in threads:
        thread.join(WAIT)
    assert most == 2


# -- FairPool


def test_a_small_owner_waits_one_round_not_for_a_large_owners_backlog() -> None:
    pool = FairPool(1)  # one thread: the order of service is the order of execution
    order: list[str] = []
    first = threading.Event()
    gate = threading.Event()

    def run(name: str) -> str:
        if name == "A0":
            first.set()
            assert gate.wait(WAIT)
        order.append(name)
        return name.lower()

    large: list[str] = []
    small: list[str] = []
    threads = [started(lambda: large.extend(pool.map("A", run, [f"A{i}" for i in range(50)])))]
    assert first.wait(WAIT)  # A's 50 calls are queued and the first one runs
    threads.append(started(lambda: small.extend(pool.map("B", run, ["B0", "B1", "B2"]))))
    eventually(lambda: "B" in pool._queues, "B's calls queued", WAIT, 0.001)
    gate.set()
    for thread in threads:
        thread.join(WAIT)
    assert order[:7] == ["A0", "A1", "B0", "A2", "B1", "A3", "B2"]
    assert large == [f"a{i}" for i in range(50)] and small == ["b0", "b1", "b2"]


def test_the_first_error_surfaces_after_every_call_finished() -> None:
    pool = FairPool(4)
    done: list[int] = []
    lock = threading.Lock()

    def run(i: int) -> int:
        if i == 3:
            raise ValueError("three")
        with lock:
            done.append(i)
        return i

    with pytest.raises(ValueError, match="three"):
        pool.map("A", run, range(20))
    assert sorted(done) == [i for i in range(20) if i != 3]


def test_one_call_runs_in_the_calling_thread() -> None:
    pool = FairPool(2)
    assert pool.map("A", lambda _: threading.current_thread().name, [1]) == [
        threading.current_thread().name
    ]


# -- the reconciler's chunks


def test_the_reconciler_paces_between_chunks_only() -> None:
    paced: list[int] = []
    done: list[int] = []
    r = Reconciler(kube=None, settings=None, discovery=None)  # type: ignore[arg-type]
    r.pace = lambda: paced.append(len(done))
    r._map("ns/app", done.append, list(range(CHUNK)))
    assert paced == []  # one chunk: nothing to pace
    done.clear()
    r._map("ns/app", done.append, list(range(2 * CHUNK + 1)))
    assert paced == [CHUNK, 2 * CHUNK]  # between chunks, after each one is done


# -- connections


KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def test_every_thread_that_talks_to_the_api_keeps_its_connection(tmp_path: Any) -> None:
    """More threads than pooled connections: urllib3 closes the extra ones, and each of their
    requests pays a new TLS handshake (the "Connection pool is full" warning under load)."""
    assert run.CONNECTIONS >= OBSERVERS + workers.RECONCILERS + 4  # + the Event posters
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    api = run.api_client(str(path))
    assert api.configuration.connection_pool_maxsize == run.CONNECTIONS
    assert api.rest_client.pool_manager.connection_pool_kw["maxsize"] == run.CONNECTIONS
