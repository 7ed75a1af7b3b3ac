"""The Flink options the pod check reads are the ones Flink declares, read from the real jars.

`childpods.FLINK_POD_OPTIONS` names, per `KubernetesConfigOptions` field, the key and fallback
keys of every option that sets a pod field (ServiceAccount, hostNetwork, annotations). A small
Java program (tests/integration/data/flink/PodOptions.java) loads those fields from the Flink
jars the real operator runs with (`make delegates`) and prints what Flink itself reads each
option from; the table must say the same, so a key Flink adds or renames cannot slip past the
check unseen.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from federator.core.childpods import FLINK_POD_OPTIONS
from federator.devcluster.flink_operator import ensure_flink_operator
from federator.devcluster.harness import in_ci

pytestmark = pytest.mark.real_delegates
SOURCE = Path(__file__).resolve().parent / "data" / "flink" / "PodOptions.java"


def test_the_pod_options_are_flinks_own(tmp_path: Path) -> None:
    built = ensure_flink_operator(build_missing=not in_ci(), out=sys.__stderr__)
    javac, java = shutil.which("javac"), shutil.which("java")
    assert javac and java, "a JDK (javac, java) builds and runs the Flink delegate"
    classpath = f"{built.lib}/*"
    subprocess.run(
        [javac, "-cp", classpath, "-d", str(tmp_path), str(SOURCE)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    done = subprocess.run(
        [java, "-cp", f"{tmp_path}:{classpath}", "PodOptions", *FLINK_POD_OPTIONS],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    declared = {
        field: tuple(keys)
        for field, *keys in (line.split("\t") for line in done.stdout.splitlines() if line)
    }
    assert declared == dict(FLINK_POD_OPTIONS)
