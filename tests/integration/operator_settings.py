"""The operator settings most integration tests run `federator run` with: one Kafka cluster
`default` in the test's Kafka namespace, metrics and liveness on free ports, a short resync and
debounce."""

from __future__ import annotations

from pathlib import Path

import yaml

from federator.devcluster.harness import free_port


def write(path: Path, kafka_namespace: str) -> Path:
    """Write the settings to `path` (returned)."""
    path.write_text(
        yaml.safe_dump(
            {
                "kafkaClusters": [
                    {
                        "name": "default",
                        "strimziCluster": "pipelines-strimzi",
                        "namespace": kafka_namespace,
                        "bootstrapServers": "pipelines-strimzi-kafka-bootstrap:9092",
                    }
                ],
                "operator": {
                    "metricsPort": free_port(),
                    "livenessPort": free_port(),
                    "resyncSeconds": 30,
                    "statusDebounceSeconds": 0.1,
                },
            }
        )
    )
    return path
