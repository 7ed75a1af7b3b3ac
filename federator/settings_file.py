"""Load operator settings from a YAML file and the environment (the shell side of settings)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from federator.core.settings import Settings, SettingsError, parse_settings
from federator.yamlio import InputError, iter_documents

ENV_SETTINGS_FILE = "FEDERATOR_SETTINGS"

# Used when no settings file is given, so `federator compile app.yaml` works on a laptop: one
# cluster named `default`, like a fresh Strimzi quick start (`my-cluster` in namespace `kafka`).
DEVELOPMENT_SETTINGS: Mapping[str, object] = {
    "kafkaClusters": [
        {
            "name": "default",
            "strimziCluster": "my-cluster",
            "namespace": "kafka",
            "bootstrapServers": "my-cluster-kafka-bootstrap.kafka.svc:9092",
        }
    ]
}


def load_settings(path: str | None, env: Mapping[str, str] | None = None) -> Settings:
    """From `path`, else $FEDERATOR_SETTINGS, else the development defaults."""
    env = os.environ if env is None else env
    path = path or env.get(ENV_SETTINGS_FILE) or None
    if path is None:
        return parse_settings(DEVELOPMENT_SETTINGS)
    try:
        docs = list(iter_documents(path))
    except InputError as exc:
        raise SettingsError(f"settings {exc}") from None
    if len(docs) > 1:
        raise SettingsError(f"settings {path}: expected one YAML document, found {len(docs)}")
    try:
        return parse_settings(docs[0] if docs else {})
    except SettingsError as exc:
        raise SettingsError(f"{path}: {exc}") from None
