"""What a 403 means, said as `kubectl auth can-i` would ask it.

The API server words an authorization refusal one way (k8s.io/apiserver responsewriters,
`forbiddenMessage`): `<resource> "<name>" is forbidden: User "<user>" cannot <verb> resource
"<resource>" in API group "<group>" in the namespace "<ns>"` (or `at the cluster scope`). An
admission refusal (a quota, OwnerReferencesPermissionEnforcement) embeds the same sentence or
none. `Denial` is that sentence as data, so a refusal reaches an Application's status naming
who lacked which permission and the exact command that checks it, instead of a bare 403.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"

_SENTENCE = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>[a-z]+) resource "(?P<resource>[^"]*)" '
    r'in API group "(?P<group>[^"]*)"'
    r'(?: in the namespace "(?P<namespace>[^"]*)"| at the cluster scope)'
)
_NAMED = re.compile(r'^(?:[^:]*: )?[a-z0-9.-]+ "(?P<name>[^"]+)" is forbidden: ')


def service_account_user(namespace: str, name: str) -> str:
    """The user name a ServiceAccount authenticates as (and is impersonated by)."""
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def split_service_account(user: str) -> tuple[str, str] | None:
    """`system:serviceaccount:<ns>:<name>` -> (ns, name); None for any other user."""
    if not user.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    namespace, sep, name = user[len(SERVICE_ACCOUNT_PREFIX) :].partition(":")
    return (namespace, name) if sep and namespace and name and ":" not in name else None


@dataclass(frozen=True, kw_only=True)
class Denial:
    """One authorization refusal: `user` may not `verb` `resource` (with its subresource,
    `applications/finalizers`) of API `group` in `namespace` (None: cluster scope)."""

    user: str
    verb: str
    resource: str
    group: str
    namespace: str | None
    name: str | None = None
    """The object the request named, when the server says (`serviceaccounts "x" is ...`)."""

    @classmethod
    def parse(cls, message: str) -> Denial | None:
        """The refusal in an API server message, or None if it holds no RBAC sentence."""
        found = _SENTENCE.search(message)
        if found is None:
            return None
        named = _NAMED.match(message)
        return cls(
            user=found["user"],
            verb=found["verb"],
            resource=found["resource"],
            group=found["group"],
            namespace=found["namespace"],
            name=named["name"] if named else None,
        )

    @property
    def qualified(self) -> str:
        """`deployments.apps`, `events` (core group): how kubectl names a resource type."""
        plural = self.resource.partition("/")[0]
        return f"{plural}.{self.group}" if self.group else plural

    def can_i(self) -> str:
        """The command that asks the API server the same question."""
        plural, _, sub = self.resource.partition("/")
        target = f"{plural}.{self.group}" if self.group else plural
        if self.name:
            target += f"/{self.name}"
        words = ["kubectl auth can-i", self.verb, target]
        if sub:
            words.append(f"--subresource={sub}")
        if self.namespace:
            words.append(f"-n {self.namespace}")
        words.append(f"--as {self.user}")
        return " ".join(words)

    def sentence(self) -> str:
        """`ServiceAccount team-a/deployer may not create deployments.apps in namespace
        team-a (kubectl auth can-i ...)`."""
        account = split_service_account(self.user)
        who = f"ServiceAccount {account[0]}/{account[1]}" if account else f"user {self.user}"
        what = self.qualified
        plural, _, sub = self.resource.partition("/")
        if sub:
            what += f" (subresource {sub})"
        if self.verb == "impersonate" and plural == "serviceaccounts" and self.name:
            what = f"ServiceAccount {self.namespace}/{self.name}"
            where = ""
        else:
            where = f" in namespace {self.namespace}" if self.namespace else " cluster-wide"
        return f"{who} may not {self.verb} {what}{where} ({self.can_i()})"


def explain(
    text: str,
    denial: Denial | None,
    *,
    acting_as: str | None,
    account_missing: bool = False,
) -> str:
    """The message of a refused write, for the child's status: who lacked which permission,
    the command that checks it, and who can fix it. `text` is the error as raised; `acting_as`
    the ServiceAccount user the write was made as (None: federator's own identity)."""
    account = split_service_account(acting_as) if acting_as else None
    named = f"ServiceAccount {account[0]}/{account[1]}" if account else ""
    if denial is None:
        out = text  # refused by admission (a quota, a policy): the server's own words
    elif account and denial.verb == "impersonate":
        out = (
            f"federator may not act as {named}: {denial.sentence()}; the platform team grants "
            "federator impersonate on serviceaccounts (the Helm chart does, in the namespaces "
            "it serves)"
        )
    elif account and denial.user == acting_as:
        out = (
            f"{denial.sentence()}: grant it to the ServiceAccount (a Role and RoleBinding in "
            f"namespace {account[0]}), or name another one in spec.serviceAccountName"
        )
    else:
        out = (
            f"{denial.sentence()}: federator's own identity lacks this permission; the "
            "platform team grants it (the Helm chart's RBAC)"
        )
    if account_missing and account:
        return (
            f"{named} does not exist: create it, or name an existing one in "
            f"spec.serviceAccountName ({out})"
        )
    return out
