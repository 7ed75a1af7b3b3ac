"""What `federator compile` does around the compiler to start and finish fast (issue 14, item 5).

Aspects: an offline command imports only its own module (not kopf or the kube client), every
other command line still sees every command; compiling a valid Application does not import
jsonschema; the cyclic collector is paused during a command
and back afterwards, also when the command fails.
"""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest

from federator.cli import main as cli_main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("argv", "offline"),
    [
        (["compile", "app.yaml"], True),
        (["validate", "--settings", "s.yaml", "app.yaml"], True),
        (["graph", "app.yaml", "--format", "dot"], True),
        (["crd"], True),
        (["--help"], False),
        (["run"], False),
        (["status", "compile"], False),
        ([], False),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else str(v),
)
def test_offline_commands_import_only_their_module(argv: list[str], offline: bool) -> None:
    modules = cli_main._modules_for(argv)
    assert (modules == (cli_main.OFFLINE_MODULE,)) if offline else modules is None


def test_compile_does_not_import_the_operator() -> None:
    code = (
        "import sys; from federator.cli.main import main; main(['crd']); "
        "sys.stderr.write(','.join(m for m in ('kopf', 'kubernetes') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    assert done.stderr == ""


def test_compiling_a_valid_application_does_not_import_jsonschema() -> None:
    """quickcheck says a valid Application is valid; jsonschema (0.06 s to import) is only
    needed to report problems."""
    code = (
        "import sys; from federator.cli.main import main; "
        "code = main(['compile', 'examples/call-record-aggregator.yaml', "
        "'--settings', 'examples/settings.yaml']); "
        "sys.stderr.write(f'{code} ' + ','.join(m for m in ('jsonschema', 'kopf') "
        "if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert done.stderr == "0 "


def test_collector_is_back_after_a_command(tmp_path: Path) -> None:
    assert gc.isenabled()
    missing = str(tmp_path / "missing.yaml")
    assert cli_main.main(["compile", missing]) == cli_main.EXIT_USAGE
    assert gc.isenabled()
    app = REPO / "examples" / "mixed-sensors.yaml"
    settings = str(REPO / "examples" / "settings.yaml")
    assert cli_main.main(["validate", str(app), "--settings", settings]) == cli_main.EXIT_OK
    assert gc.isenabled()
