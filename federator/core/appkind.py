"""The Application's own identity: API group, version, kind and plural, written once.

The CRD (crds/application.yaml) declares them; the operator's handlers, the API client, the CLI,
the renderer and the validator all name the same resource, so they import these instead of
spelling the strings again (a unit test checks the CRD declares exactly these).
"""

from typing import Final

GROUP: Final = "federator.io"
VERSION: Final = "v1alpha1"
KIND: Final = "Application"
PLURAL: Final = "applications"
API_VERSION: Final = f"{GROUP}/{VERSION}"
"""The `apiVersion` of an Application body."""
CRD_NAME: Final = f"{PLURAL}.{GROUP}"
"""The CRD's `metadata.name`."""
