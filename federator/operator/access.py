"""Whether the API server still accepts the operator's own identity, for readiness.

Why: a 401 refuses every request of the process (an expired or revoked service-account token),
so it is the operator's condition, not one application's: the pod must say it (readiness, which
a platform team's alerting watches) while each application's worker keeps retrying with backoff.
A 403 is not recorded here: with namespaced RBAC one namespace may refuse federator while others
serve it, so it is named on the applications it stops instead.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from federator.kube.client import KubeError

UNAUTHORIZED = 401


@dataclass
class Access:
    """The latest refusal of the operator's credentials, cleared by the next accepted request."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _refused: str | None = None
    _since: float | None = None

    def saw(self, error: BaseException) -> None:
        """Record `error` if it refuses the operator's credentials."""
        if isinstance(error, KubeError) and error.status == UNAUTHORIZED:
            with self._lock:
                if self._refused is None:
                    self._since = time.monotonic()
                self._refused = str(error)

    def accepted(self) -> None:
        """A request (a whole reconcile) went through: the credentials work again."""
        with self._lock:
            self._refused = self._since = None

    def problem(self) -> str | None:
        """What the readiness probe reports: None while the credentials are accepted."""
        with self._lock:
            if self._refused is None or self._since is None:
                return None
            ago = time.monotonic() - self._since
            return (
                f"the API server refuses federator's credentials (for {ago:.0f}s): {self._refused}"
            )
