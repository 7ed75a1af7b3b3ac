"""The heap tuning of `federator run`: on glibc it applies, elsewhere it is a no-op."""

from __future__ import annotations

import asyncio
import platform
import subprocess
import sys

import pytest

from federator.operator import memory

GLIBC = platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="mallopt and malloc_trim are glibc's")
def test_arenas_are_limited_and_trim_runs_on_glibc() -> None:
    # In a child process: the limit is process-wide and stays for the test session otherwise.
    code = "from federator.operator import memory; print(memory.limit_arenas(), memory.trim())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "True"
    assert out.stdout.split()[1] in ("True", "False")  # False: nothing was free to give back


def test_without_glibc_both_do_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_glibc", lambda: None)
    assert memory.limit_arenas() is False
    assert memory.trim() is False


def test_trim_every_trims_until_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(memory, "trim", lambda: calls.append(1) or True)

    async def scenario() -> None:
        task = asyncio.create_task(memory.trim_every(0.001))
        for _ in range(500):
            if len(calls) >= 2:
                break
            await asyncio.sleep(0.005)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())
    assert len(calls) >= 2
