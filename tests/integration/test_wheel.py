"""The wheel is complete: built from this checkout, installed into a fresh virtualenv outside it,
`federator demo` runs there to Healthy, reading only the package's own data (the control-plane
recipe, the seed example, the Application CRD and the delegate CRDs).

The control-plane binaries are reused from the cache: the recipe shipped in the wheel has the
same bytes as hack/controlplane, so it keys the same cache entry (a rebuild here would mean the
wheel's recipe differs, and `--no-build`-style failure is what we want then, not a 7-minute build).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from federator.devcluster import build, crdfiles

REPO = Path(__file__).resolve().parents[2]


def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload,no-any-return]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, bin_dir: Path) -> Path:
    """A venv outside the checkout with the wheel (and its dependencies) installed."""
    root = tmp_path_factory.mktemp("wheel")
    wheels = root / "dist"
    built = run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "--wheel-dir",
            str(wheels),
            str(REPO),
        ],
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("federator-*.whl")
    venv = root / "venv"
    made = run([sys.executable, "-m", "venv", str(venv)], timeout=120)
    assert made.returncode == 0, made.stderr
    pip = run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(wheel),
        ],
        timeout=600,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    return venv


def clean_env(home: Path) -> dict[str, str]:
    """The user's environment without anything that points back into this checkout."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", crdfiles.ENV_DELEGATE_CRDS}
        and not k.startswith("FEDERATOR_")
    }
    env["FEDERATOR_CACHE"] = str(build.cache_root())  # reuse the built control plane
    env["TMPDIR"] = str(home)
    return env


def test_the_installed_package_reads_only_its_own_data(installed: Path, tmp_path: Path) -> None:
    probe = (
        "import federator, json\n"
        "from federator.core import resources\n"
        "from federator.devcluster import build\n"
        "print(json.dumps({'package': federator.__file__,"
        " 'data': [str(resources.data_dir(n)) for n in resources._REPO_PATHS],"
        " 'bin': str(build.bin_dir())}))\n"
    )
    out = run(
        [str(installed / "bin" / "python"), "-c", probe], cwd=tmp_path, env=clean_env(tmp_path)
    )
    assert out.returncode == 0, out.stderr
    import json

    found = json.loads(out.stdout)
    site = str(installed)
    assert found["package"].startswith(site), found
    assert all(d.startswith(site) and "/_data/" in d for d in found["data"]), found
    # Same recipe bytes -> same cache key as the checkout: the binaries are reused.
    assert found["bin"] == str(build.bin_dir()), found


def test_federator_demo_from_the_wheel_reaches_healthy(installed: Path, tmp_path: Path) -> None:
    done = run(
        [str(installed / "bin" / "federator"), "demo", "--timeout", "150"],
        cwd=tmp_path,
        env=clean_env(tmp_path),
        timeout=400,
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "building" not in done.stderr, "the wheel's recipe did not find the cached binaries"
    assert re.search(r"^Phase:\s+Healthy$", out, re.M), out[-3000:]
    assert re.search(r"^Ready:\s+15/15$", out, re.M), out[-3000:]
    assert str(REPO) not in out, "the demo read something from the checkout"
    assert not os.listdir(tmp_path), f"left behind: {os.listdir(tmp_path)}"
