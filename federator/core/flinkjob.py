"""What the Apache Flink Kubernetes operator refuses in a FlinkDeployment's job, found before
anything is applied.

Why: the operator validates a FlinkDeployment only after it is stored. A refused one is
`lifecycleState: FAILED` with a ValidationError event, which the author sees late and in the
operator's words; the real operator 1.7.0 did exactly that to a compiled example (upgrade mode
`savepoint` without a checkpoint directory). These are the rules of its DefaultValidator
(`validateJobSpec`, unchanged from 1.7.0 to 1.15), checked on the rendered child, i.e. on the
configuration the operator will see (federator's defaults merged with the user's block):

- an upgrade mode other than `stateless` needs a checkpoint directory;
- `savepoint` needs a savepoint directory;
- `last-state` needs high availability;
- periodic savepoints need a savepoint directory.

Configuration keys are looked up under both their current and their deprecated names, flat
(`state.checkpoints.dir: ...`) or nested (`state: {checkpoints: {dir: ...}}`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from federator.core import delegates
from federator.core.model import Application
from federator.core.problems import Code, Problem, format_path
from federator.core.render import Child

CHECKPOINT_DIR = ("execution.checkpointing.dir", "state.checkpoints.dir")
SAVEPOINT_DIR = ("execution.checkpointing.savepoint-dir", "state.savepoints.dir")
HA_MODE = ("high-availability.type", "high-availability")
PERIODIC_SAVEPOINTS = ("kubernetes.operator.periodic.savepoint.interval",)


def _lookup(config: Any, key: str) -> Any:
    if not isinstance(config, Mapping):
        return None
    if key in config:
        return config[key]
    head, dot, rest = key.partition(".")
    while dot:  # a nested mapping at some split of the dotted key
        if isinstance(config.get(head), Mapping) and (found := _lookup(config[head], rest)):
            return found
        more, dot, rest = rest.partition(".")
        head = f"{head}.{more}"
    return None


def _set(config: Any, keys: Sequence[str]) -> bool:
    """Whether any of the keys holds a non-blank value (the validator's isNullOrWhitespaceOnly)."""
    return any(str(_lookup(config, k) or "").strip() for k in keys)


def _ha(config: Any) -> bool:
    return any(str(_lookup(config, k) or "").strip().upper() not in ("", "NONE") for k in HA_MODE)


def job_problems(spec: Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """(path under the FlinkDeployment spec, message) for each rule its job breaks."""
    job = spec.get("job")
    if not isinstance(job, Mapping):
        return []
    config = spec.get("flinkConfiguration")
    mode = str(job.get("upgradeMode") or "stateless")
    out: list[tuple[tuple[str, ...], str]] = []
    at = ("job", "upgradeMode")
    if mode == "last-state" and not _ha(config):
        out.append(
            (
                at,
                "upgradeMode last-state needs high availability: set flinkConfiguration "
                "high-availability.type (e.g. kubernetes) and high-availability.storageDir, or "
                "use upgradeMode savepoint or stateless (the Flink operator refuses it: 'Job "
                "could not be upgraded with last-state while HA disabled')",
            )
        )
    if mode != "stateless" and not _set(config, CHECKPOINT_DIR):
        out.append(
            (
                at,
                f"upgradeMode {mode} needs a checkpoint directory: set flinkConfiguration "
                f"{CHECKPOINT_DIR[1]} (or {CHECKPOINT_DIR[0]}) (the Flink operator refuses it: "
                "'Checkpoint directory[state.checkpoints.dir] must be defined for last-state "
                "and savepoint upgrade modes')",
            )
        )
    if not _set(config, SAVEPOINT_DIR):
        if mode == "savepoint":
            out.append(
                (
                    at,
                    f"upgradeMode savepoint needs a savepoint directory: set flinkConfiguration "
                    f"{SAVEPOINT_DIR[1]} (or {SAVEPOINT_DIR[0]})",
                )
            )
        elif _set(config, PERIODIC_SAVEPOINTS):
            out.append(
                (
                    ("flinkConfiguration", PERIODIC_SAVEPOINTS[0]),
                    f"periodic savepoints need a savepoint directory: set flinkConfiguration "
                    f"{SAVEPOINT_DIR[1]}",
                )
            )
    return out


def check(children: Sequence[Child], app: Application) -> tuple[Problem, ...]:
    """Every rule broken by a FlinkDeployment child, at the user's `flink` block."""
    index = {s.name: i for i, s in enumerate(app.streamlets)}
    problems: list[Problem] = []
    for child in children:
        if child.kind != delegates.FLINK_DEPLOYMENT.kind or child.streamlet not in index:
            continue
        spec = child.manifest.get("spec")
        if not isinstance(spec, Mapping):
            continue
        base: list[str | int] = ["spec", "streamlets", index[child.streamlet], "flink"]
        for path, message in job_problems(spec):
            problems.append(
                Problem(path=format_path([*base, *path]), code=Code.FLINK_JOB, message=message)
            )
    return tuple(problems)
