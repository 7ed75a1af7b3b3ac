"""The Application's identity is written once (federator.core.appkind) and is the CRD's.

Aspects covered: every copy of the Application CRD (the source in crds/, the chart's, the one
the package ships) declares exactly the group, version, kind and plural the code imports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.core import appkind
from federator.core.resources import application_crd_path

ROOT = Path(__file__).parents[2]
COPIES = {
    "source": ROOT / "crds" / "application.yaml",
    "chart": ROOT / "charts" / "federator" / "crds" / "application.yaml",
    "package": application_crd_path(),
}


@pytest.mark.parametrize("path", COPIES.values(), ids=COPIES.keys())
def test_the_crd_declares_the_identity_the_code_uses(path: Path) -> None:
    crd: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec = crd["spec"]
    assert crd["metadata"]["name"] == appkind.CRD_NAME
    assert spec["group"] == appkind.GROUP
    assert spec["names"]["kind"] == appkind.KIND
    assert spec["names"]["plural"] == appkind.PLURAL
    assert [v["name"] for v in spec["versions"]] == [appkind.VERSION]
    assert f"{spec['group']}/{appkind.VERSION}" == appkind.API_VERSION
