"""What the Apache Flink operator's validator refuses in a job (issue 13, finding 1): upgrade
modes without their directories or HA, found at compile time at the user's `flink` block.
The messages the real operator 1.7.0 gave are quoted in them."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from conftest import load_example, load_example_settings

from federator.core import compiler, flinkjob
from federator.core.problems import Code, InvalidSpec

SETTINGS = load_example_settings()
CKPT = {"state.checkpoints.dir": "s3://b/ckpt"}
SAVE = {"state.savepoints.dir": "s3://b/save"}
HA = {"high-availability.type": "kubernetes", "high-availability.storageDir": "s3://b/ha"}


@pytest.mark.parametrize(
    ("mode", "config", "fragments"),
    [
        ("stateless", {}, []),
        ("savepoint", {**CKPT, **SAVE}, []),
        ("savepoint", SAVE, ["needs a checkpoint directory"]),
        ("savepoint", CKPT, ["needs a savepoint directory"]),
        ("savepoint", {}, ["needs a checkpoint directory", "needs a savepoint directory"]),
        ("last-state", {**CKPT, **HA}, []),
        ("last-state", CKPT, ["needs high availability"]),
        ("last-state", {**CKPT, "high-availability.type": "NONE"}, ["needs high availability"]),
        ("last-state", {**CKPT, "high-availability": "kubernetes"}, []),  # the legacy key
        ("savepoint", {"execution.checkpointing.dir": "s3://b/c", **SAVE}, []),  # newer key
        ("savepoint", {"state": {"checkpoints": {"dir": "s3://b/c"}}, **SAVE}, []),  # nested
        ("savepoint", {"state.checkpoints.dir": "  ", **SAVE}, ["needs a checkpoint directory"]),
        (
            "stateless",
            {"kubernetes.operator.periodic.savepoint.interval": "1h"},
            ["periodic savepoints need a savepoint directory"],
        ),
    ],
)
def test_job_rules_of_the_operators_validator(
    mode: str, config: dict[str, Any], fragments: list[str]
) -> None:
    spec = {"job": {"upgradeMode": mode}, "flinkConfiguration": config}
    messages = [m for _, m in flinkjob.job_problems(spec)]
    assert len(messages) == len(fragments), messages
    for fragment, message in zip(fragments, messages, strict=True):
        assert fragment in message


def test_the_compiled_example_is_refused_at_the_users_block_without_a_checkpoint_dir() -> None:
    body = load_example("fraud-detection-flink.yaml")
    assert compiler.compile_application(body, SETTINGS).children  # as shipped: accepted
    broken = copy.deepcopy(body)
    scorer = next(s for s in broken["spec"]["streamlets"] if s.get("runtime") == "flink")
    del scorer["flink"]["flinkConfiguration"]["state.checkpoints.dir"]
    index = broken["spec"]["streamlets"].index(scorer)
    with pytest.raises(InvalidSpec) as caught:
        compiler.compile_application(broken, SETTINGS)
    (problem,) = caught.value.problems
    assert problem.path == f"spec.streamlets[{index}].flink.job.upgradeMode"
    assert problem.code is Code.FLINK_JOB
    assert "Checkpoint directory[state.checkpoints.dir] must be defined" in problem.message
