"""The patches `federator uninstall --orphan` sends: only federator's owner and finalizer go,
every other entry stays, and each patch applies only to the object as it was read."""

from __future__ import annotations

from federator.core.uninstall import FINALIZER, finalizer_patch, owner_patch

APP_UID = "7f0c-app"
OURS = {"apiVersion": "federator.io/v1alpha1", "kind": "Application", "uid": APP_UID}
THEIRS = {"apiVersion": "v1", "kind": "ConfigMap", "uid": "someone-else"}


def test_owner_patch_drops_only_the_application() -> None:
    child = {"metadata": {"ownerReferences": [THEIRS, OURS]}}
    assert owner_patch(child, APP_UID) == [
        {"op": "test", "path": "/metadata/ownerReferences", "value": [THEIRS, OURS]},
        {"op": "replace", "path": "/metadata/ownerReferences", "value": [THEIRS]},
    ]


def test_owner_patch_removes_a_list_left_empty() -> None:
    child = {"metadata": {"ownerReferences": [OURS]}}
    assert owner_patch(child, APP_UID) == [
        {"op": "test", "path": "/metadata/ownerReferences", "value": [OURS]},
        {"op": "remove", "path": "/metadata/ownerReferences"},
    ]


def test_owner_patch_leaves_what_the_application_does_not_own() -> None:
    assert owner_patch({"metadata": {"ownerReferences": [THEIRS]}}, APP_UID) is None
    assert owner_patch({"metadata": {}}, APP_UID) is None
    assert owner_patch({}, APP_UID) is None


def test_finalizer_patch_removes_only_federators() -> None:
    app = {"metadata": {"finalizers": ["other.io/keep", FINALIZER]}}
    assert finalizer_patch(app) == [
        {"op": "test", "path": "/metadata/finalizers", "value": ["other.io/keep", FINALIZER]},
        {"op": "replace", "path": "/metadata/finalizers", "value": ["other.io/keep"]},
    ]
    assert finalizer_patch({"metadata": {"finalizers": ["other.io/keep"]}}) is None
    assert finalizer_patch({"metadata": {}}) is None
