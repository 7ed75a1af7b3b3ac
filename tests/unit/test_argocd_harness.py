"""The real Argo CD's recipe and harness, without building or starting anything.

Aspects covered:
- `argocd` is a delegate of `python -m federator.devcluster.delegates build`, version-pinned,
  its toolchain new enough for the go.mod of that version;
- the miniredis recipe pins the miniredis module;
- a missing build is an error naming the command that builds it;
- the health customizations the harness installs are the chart's argocd-cm.yaml keys.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from federator.devcluster import argocd, delegates

RECIPE_DIR = delegates.recipe_dir("argocd")
CHART = Path(__file__).resolve().parents[2] / "charts" / "federator"


def test_argocd_is_a_delegate_of_the_build_cli() -> None:
    assert "argocd" in delegates.names()
    recipe = delegates.recipe("argocd")
    assert recipe is argocd.RECIPE
    assert (recipe.product, recipe.version) == ("argocd", "v3.6.2")
    assert delegates.read_recipe(RECIPE_DIR, recipe.files).keys() == set(recipe.files)
    # v3.6's go.mod says `go 1.27.0`: the pinned toolchain must be a 1.27 release.
    assert argocd.GO_TOOLCHAIN.startswith("go1.27.")


def test_miniredis_is_pinned() -> None:
    gomod = (RECIPE_DIR / "miniredis" / "go.mod").read_text()
    assert "github.com/alicebob/miniredis/v2 v2.40.0" in gomod
    gosum = (RECIPE_DIR / "miniredis" / "go.sum").read_text()
    assert "github.com/alicebob/miniredis/v2 v2.40.0 h1:" in gosum


def test_a_missing_build_names_the_command_that_builds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDERATOR_CACHE", str(tmp_path))
    with pytest.raises(delegates.DelegateBuildError, match="delegates build argocd"):
        argocd.ensure_argocd(build_missing=False)
    root = delegates.cache_dir(argocd.RECIPE, root=tmp_path)
    assert root.name.startswith("argocd-v3.6.2-")
    assert not argocd.ArgoCDBuild(root).complete


def test_the_chart_ships_the_health_keys_the_harness_installs() -> None:
    data = yaml.safe_load((CHART / "argocd" / "argocd-cm.yaml").read_text())["data"]
    assert "resource.customizations.health.federator.io_Application" in data


PORTS = {
    "redis": 16379,
    "repo-server": 18081,
    "repo-metrics": 18084,
    "controller": 18082,
    "server": 18080,
    "server-metrics": 18083,
}


def test_every_component_listens_on_loopback_and_talks_to_loopback() -> None:
    argv = argocd.commands(argocd.ArgoCDBuild(Path("/a")), PORTS)
    assert argv["redis"] == ["/a/bin/miniredis-server", "-addr", "127.0.0.1:16379"]
    for name in ("repo-server", "server"):
        flags = argv[name]
        assert flags[0] == "/a/bin/argocd"
        for flag in ("--address", "--metrics-address"):
            assert flags[flags.index(flag) + 1] == "127.0.0.1"
    for name in ("repo-server", "controller", "server"):
        flags = argv[name]
        assert flags[flags.index("--redis") + 1] == "127.0.0.1:16379"
    for name in ("controller", "server"):
        flags = argv[name]
        assert flags[flags.index("--repo-server") + 1] == "127.0.0.1:18081"
    assert argv["server"][argv["server"].index("--dex-server") + 1] == "http://127.0.0.1:1"


def test_the_flags_argocd_needs_out_of_cluster() -> None:
    argv = argocd.commands(argocd.ArgoCDBuild(Path("/a")), PORTS, app_resync=7)
    # v3.6 refuses --disable-tls with a non-empty client CA path.
    assert {"--disable-tls", "--client-ca-path="} <= set(argv["repo-server"])
    controller = argv["controller"]
    assert "--persist-resource-health" in controller  # health in status.resources
    assert controller[controller.index("--app-resync") + 1] == "7"
    assert set(argocd.BINARY_NAMES) == set(argocd.COMPONENTS) - {"redis"}
