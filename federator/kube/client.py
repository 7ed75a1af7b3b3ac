"""One choke point for the Kubernetes API: typed errors, server-side apply, counted writes.

Every request goes through `Kube`, which turns transport and HTTP errors into the typed errors
below (`from None`: callers see what happened, not a urllib3 stack), and counts writes by verb
and kind so metrics and tests can prove "zero writes on a no-op resync".
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import urllib3
from kubernetes import client

from federator.core import appkind
from federator.kube.forbidden import Denial, service_account_user

FIELD_MANAGER = "federator"
REQUEST_TIMEOUT = (5.0, 30.0)
IMPERSONATE_USER = "Impersonate-User"
PARTIAL_METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


Page = list[dict[str, Any]]
"""One page of a listing (`Kube.pages`)."""


class KubeError(Exception):
    """An API call failed; `status` is the HTTP status (0 for transport errors)."""

    status: int = 0
    retryable: bool = False

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    retryable = True


class Forbidden(KubeError):
    """401/403. `denial` is the refused permission when the server names one (RBAC: who may
    not do what, where); a refusal by admission (a quota) may name none."""

    def __init__(self, message: str, status: int = 403, denial: Denial | None = None) -> None:
        super().__init__(message, status)
        self.denial = denial


class Invalid(KubeError):
    """The server refused the object (422/400): a bug in a template or a delegate mismatch."""


class Transient(KubeError):
    """Timeouts, 429, 5xx, connection errors: worth retrying with backoff. `transport` is the
    connection error itself (status 0), for a caller that explains it to a human."""

    retryable = True
    transport: BaseException | None = None


def _message(body: Any) -> str:
    try:
        data = json.loads(body) if isinstance(body, str | bytes) else body
        return str(data.get("message") or data)
    except (ValueError, AttributeError):
        return str(body)[:500]


@contextmanager
def translated(what: str) -> Iterator[None]:
    try:
        yield
    except client.ApiException as exc:
        status = int(exc.status or 0)
        text = f"{what}: {_message(exc.body) if exc.body else exc.reason}"
        if status == 404:
            raise NotFound(text, status) from None
        if status == 409:
            raise Conflict(text, status) from None
        if status in (401, 403):
            server = _message(exc.body) if exc.body else str(exc.reason)
            raise Forbidden(text, status, Denial.parse(server)) from None
        if status in (400, 422):
            raise Invalid(text, status) from None
        raise Transient(text, status) from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        error = Transient(f"{what}: {type(exc).__name__}: {exc}")
        error.transport = exc
        raise error from None


def _obj(value: object) -> dict[str, Any]:
    """Custom-object calls return plain JSON objects; say so to the type checker."""
    return value if isinstance(value, dict) else {}


def split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


@dataclass(frozen=True, kw_only=True)
class ResourceRef:
    group: str
    version: str
    plural: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.plural}.{self.group}/{self.namespace}/{self.name}"


@dataclass
class Kube:
    """Thin, typed access to the API; thread-safe (the kubernetes client pools connections)."""

    api: client.ApiClient
    writes: Counter[tuple[str, str]] = field(default_factory=Counter)
    on_write: Callable[[str, str], None] | None = None
    acting_as: str | None = None
    """The user this client impersonates; None: federator's own identity."""
    instance: str = "federator"
    """The Events' reportingInstance: which operator process (shard) posted them."""
    timeout: float | tuple[float, float] = REQUEST_TIMEOUT
    """Seconds each request may take (connect, read); a CLI lets its user choose."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _principal: Kube | None = None
    """The client an impersonating one was made from: writes are counted there."""
    _accounts: dict[tuple[str, str], Kube] = field(default_factory=dict)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def _count(self, verb: str, kind: str) -> None:
        if self._principal is not None:
            self._principal._count(verb, kind)
            return
        with self._lock:
            self.writes[(verb, kind)] += 1
        if self.on_write is not None:
            self.on_write(verb, kind)

    def as_service_account(self, namespace: str, name: str) -> Kube:
        """This client acting as the ServiceAccount `namespace/name`, so that the account's
        RBAC, not federator's, decides what its requests may do.

        Only `Impersonate-User: system:serviceaccount:<ns>:<name>` is sent: the API server then
        checks `impersonate` on that one serviceaccount (never on users or groups, which
        federator is not granted) and gives the request the account's own groups
        (`system:serviceaccounts`, `system:serviceaccounts:<ns>`, `system:authenticated`), as
        if the account had sent it. One client per account, kept for the life of the process
        (one per ServiceAccount applications name): it shares this client's configuration and
        connection pool, and its writes are counted here."""
        if self._principal is not None:
            return self._principal.as_service_account(namespace, name)
        if not namespace or not name or ":" in namespace + name:
            raise ValueError(f"not a ServiceAccount: {namespace!r}/{name!r}")
        with self._lock:
            view = self._accounts.get((namespace, name))
            if view is None:
                user = service_account_user(namespace, name)
                api = client.ApiClient(self.api.configuration)
                api.rest_client = self.api.rest_client  # one pool of connections for all
                api.user_agent = self.api.user_agent
                api.default_headers = {**self.api.default_headers, IMPERSONATE_USER: user}
                view = Kube(api, acting_as=user, timeout=self.timeout, _principal=self)
                self._accounts[(namespace, name)] = view
        return view

    def service_account_exists(self, namespace: str, name: str) -> bool | None:
        """Whether the ServiceAccount exists (None: cannot tell, e.g. not allowed to read it).
        Impersonating an account that does not exist is not refused: only its requests are,
        so this tells the author which of the two to fix."""
        try:
            with translated(f"get serviceaccount {namespace}/{name}"):
                client.CoreV1Api(self.api).read_namespaced_service_account(
                    name, namespace, _request_timeout=self.timeout
                )
        except NotFound:
            return False
        except KubeError:
            return None
        return True

    # -- reads

    def get(self, ref: ResourceRef) -> dict[str, Any] | None:
        try:
            with translated(f"get {ref}"):
                raw = self.custom.get_namespaced_custom_object(
                    ref.group,
                    ref.version,
                    ref.namespace,
                    ref.plural,
                    ref.name,
                    _request_timeout=self.timeout,
                )
                result = _obj(raw)
                return result
        except NotFound:
            return None

    def list(
        self,
        group: str,
        version: str,
        plural: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        page_size: int | None = None,
    ) -> list[dict[str, Any]]:
        """Every object of a kind, in one namespace or (None) all; in pages of `page_size`
        (None: one response), so a large list never has to fit one answer."""
        items: list[dict[str, Any]] = []
        for page in self.pages(
            group,
            version,
            plural,
            namespace=namespace,
            label_selector=label_selector,
            page_size=page_size,
        ):
            items += page
        return items

    def pages(
        self,
        group: str,
        version: str,
        plural: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        page_size: int | None = None,
    ) -> Iterator[Page]:
        """`list`, one page at a time: a caller that keeps only a digest of each object (the
        start-up priming of the watch cache) never holds a whole listing parsed at once."""
        token: str | None = None
        while True:
            extra: dict[str, Any] = {"label_selector": label_selector}
            if page_size is not None:
                extra["limit"] = page_size
            if token:
                extra["_continue"] = token
            with translated(f"list {plural}.{group}"):
                if namespace is None:
                    raw = self.custom.list_cluster_custom_object(
                        group, version, plural, _request_timeout=self.timeout, **extra
                    )
                else:
                    raw = self.custom.list_namespaced_custom_object(
                        group, version, namespace, plural, _request_timeout=self.timeout, **extra
                    )
            result = _obj(raw)
            yield [item for item in result.get("items") or () if isinstance(item, dict)]
            token = (result.get("metadata") or {}).get("continue")
            if page_size is None or not token:
                return

    def get_application(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(
            ResourceRef(
                group=appkind.GROUP,
                version=appkind.VERSION,
                plural=appkind.PLURAL,
                namespace=namespace,
                name=name,
            )
        )

    def crd(self, name: str, *, metadata_only: bool = False) -> dict[str, Any] | None:
        """One CustomResourceDefinition as plain JSON (None: not installed). `metadata_only`
        asks for its PartialObjectMetadata: a few hundred bytes instead of the whole object
        (half a megabyte for FlinkDeployment), enough to see whether it changed."""
        headers = {"Accept": PARTIAL_METADATA} if metadata_only else None
        try:
            with translated(f"get customresourcedefinition {name}"):
                response: Any = client.ApiextensionsV1Api(
                    self.api
                ).read_custom_resource_definition(  # raw: no model for half a megabyte
                    name,
                    _preload_content=False,
                    _headers=headers,
                    _request_timeout=self.timeout,
                )
                return _obj(json.loads(response.data))
        except NotFound:
            return None

    # -- writes

    def apply(self, ref: ResourceRef, manifest: Mapping[str, Any], kind: str) -> dict[str, Any]:
        """Server-side apply as field manager `federator`, forcing our fields back (drift)."""
        with translated(f"apply {ref}"):
            raw = self.custom.patch_namespaced_custom_object(
                ref.group,
                ref.version,
                ref.namespace,
                ref.plural,
                ref.name,
                dict(manifest),
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type="application/apply-patch+yaml",
                _request_timeout=self.timeout,
            )
            result = _obj(raw)
        self._count("apply", kind)
        return result

    def create(self, ref: ResourceRef, manifest: Mapping[str, Any], kind: str) -> dict[str, Any]:
        """Create, refusing (Conflict, 409 AlreadyExists) when anything holds the name: unlike
        an apply, a create can never write onto an object federator did not make. Follow it
        with `claim_fields`, so that later server-side applies own the fields exactly as if
        an apply had created the object."""
        with translated(f"create {ref}"):
            raw = self.custom.create_namespaced_custom_object(
                ref.group,
                ref.version,
                ref.namespace,
                ref.plural,
                dict(manifest),
                field_manager=FIELD_MANAGER,
                _request_timeout=self.timeout,
            )
        self._count("create", kind)
        return _obj(raw)

    def claim_fields(self, ref: ResourceRef, body: Mapping[str, Any], kind: str) -> dict[str, Any]:
        """Turn our `Update` entry of managedFields (a create's) into an `Apply` one, as
        client-go's csaupgrade does: otherwise a field later dropped from the applied manifest
        would stay, still owned by the create. A JSON patch that first tests the entry, so a
        concurrent change of managedFields fails it (Invalid) instead of editing another."""
        entries = (body.get("metadata") or {}).get("managedFields") or []
        index = next(
            (
                i
                for i, m in enumerate(entries)
                if m.get("manager") == FIELD_MANAGER
                and m.get("operation") == "Update"
                and not m.get("subresource")
            ),
            None,
        )
        if index is None:
            return dict(body)
        path = f"/metadata/managedFields/{index}"
        patch = [
            {"op": "test", "path": f"{path}/manager", "value": FIELD_MANAGER},
            {"op": "test", "path": f"{path}/operation", "value": "Update"},
            {"op": "replace", "path": f"{path}/operation", "value": "Apply"},
        ]
        with translated(f"claim fields of {ref}"):
            raw = self.custom.patch_namespaced_custom_object(
                ref.group,
                ref.version,
                ref.namespace,
                ref.plural,
                ref.name,
                patch,
                _content_type="application/json-patch+json",
                _request_timeout=self.timeout,
            )
        self._count("claim", kind)
        return _obj(raw)

    def delete(self, ref: ResourceRef, kind: str, *, uid: str | None = None) -> bool:
        """Delete (background propagation); False when it was already gone, or (with `uid`, a
        precondition) when the object of that name is now another one: never delete what
        was not the object federator looked at."""
        try:
            with translated(f"delete {ref}"):
                self.custom.delete_namespaced_custom_object(
                    ref.group,
                    ref.version,
                    ref.namespace,
                    ref.plural,
                    ref.name,
                    propagation_policy="Background",
                    body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid))
                    if uid
                    else None,
                    _request_timeout=self.timeout,
                )
        except NotFound:
            return False
        except Conflict:
            if uid is None:
                raise
            return False  # the UID precondition failed: someone else's object now
        self._count("delete", kind)
        return True

    def json_patch(
        self, ref: ResourceRef, ops: Sequence[Mapping[str, Any]], kind: str
    ) -> dict[str, Any]:
        """An RFC 6902 patch: with a `test` op first, it applies only to the object as read."""
        with translated(f"patch {ref}"):
            raw = self.custom.patch_namespaced_custom_object(
                ref.group,
                ref.version,
                ref.namespace,
                ref.plural,
                ref.name,
                [dict(op) for op in ops],
                _content_type="application/json-patch+json",
                _request_timeout=self.timeout,
            )
        self._count("patch", kind)
        return _obj(raw)

    def patch_application_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any]:
        with translated(f"patch status of application {namespace}/{name}"):
            raw = self.custom.patch_namespaced_custom_object_status(
                appkind.GROUP,
                appkind.VERSION,
                namespace,
                appkind.PLURAL,
                name,
                {"status": dict(status)},
                _content_type="application/merge-patch+json",
                _request_timeout=self.timeout,
            )
            result = _obj(raw)
        self._count("patch_status", appkind.KIND)
        return result

    def event(self, app: Mapping[str, Any], *, type_: str, reason: str, message: str) -> None:
        """A Kubernetes Event on the Application (best effort: never fails a reconcile)."""
        meta = app.get("metadata") or {}
        now = datetime.now(UTC)
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(
                generate_name=f"{meta.get('name', 'application')}.", namespace=meta.get("namespace")
            ),
            involved_object=client.V1ObjectReference(
                api_version=appkind.API_VERSION,
                kind=appkind.KIND,
                name=meta.get("name"),
                namespace=meta.get("namespace"),
                uid=meta.get("uid"),
                resource_version=meta.get("resourceVersion"),
            ),
            reason=reason,
            message=message[:1024],
            type=type_,
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=client.V1EventSource(component="federator"),
            reporting_component="federator.io/operator",
            reporting_instance=self.instance,
        )
        try:
            with translated("create event"):
                client.CoreV1Api(self.api).create_namespaced_event(
                    str(meta.get("namespace", "default")), body, _request_timeout=self.timeout
                )
            self._count("event", "Event")
        except KubeError:
            pass
