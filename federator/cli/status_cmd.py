"""`federator status [NAME]`: Applications with their phase, and one application's children.

What `kubectl cloudflow status` showed, for every delegate kind. It only reads: the status the
operator wrote (``status.phase``, ``ready``/``total``, ``conditions``, ``children``), never the
children themselves, so it shows exactly what the operator concluded.

Exit codes: 0 when the status was shown, whatever the applications' health (``status`` inspects;
to wait for or gate on health use ``kubectl wait --for=condition=Ready fapp/NAME``, which reads
the same Ready condition); 1 when the named Application (or the Application CRD) does not exist;
2 for usage errors, a missing or unreadable kubeconfig, and an API server that cannot be reached,
refuses the credentials or fails the request.

The formatting (``format_app_table``, ``format_app_detail``, ``summarize``) is pure: bodies in,
text out, the clock passed in.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import yaml

from federator.cli.main import EXIT_INVALID, EXIT_OK, UsageError
from federator.core import fields
from federator.core.appkind import CRD_NAME, GROUP, PLURAL, VERSION
from federator.core.status_types import Phase

if TYPE_CHECKING:
    from federator.kube.client import Kube

DEFAULT_REQUEST_TIMEOUT: Final = 10.0
LIST_PAGE_SIZE: Final = 500
# The Ready message in the list, and messages in the detail tables (unless -o wide).
LIST_MESSAGE_WIDTH: Final = 60
DETAIL_MESSAGE_WIDTH: Final = 80
NONE: Final = "<none>"
SERVICE_ACCOUNT_NAMESPACE: Final = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

Body = Mapping[str, Any]


# --------------------------------------------------------------------------------------------------
# Pure: reading a body defensively (anything may be missing or of the wrong type)
# --------------------------------------------------------------------------------------------------


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str:
    """One table cell: a single line without control characters (no terminal escapes)."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    out = []
    for char in text:
        if char in "\n\r\t":
            out.append(" ")
        elif unicodedata.category(char) in ("Cc", "Cf"):
            out.append(f"\\x{ord(char):02x}" if ord(char) < 256 else f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return " ".join("".join(out).split())


def _clip(text: str, width: int | None) -> str:
    if width is None or len(text) <= width:
        return text
    return text[: width - 1] + "…"


def _parse_time(value: Any) -> datetime | None:
    text = fields.as_str(value)
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def human_duration(seconds: float) -> str:
    """kubectl's AGE format: 45s, 3m12s, 25m, 5h10m, 30h, 3d4h, 200d, 3y20d, 12y."""
    if seconds < -1:
        return "<invalid>"
    total = max(int(seconds), 0)
    minutes, hours, days = total // 60, total // 3600, total // 86400
    if total < 120:
        return f"{total}s"
    if minutes < 10:
        return f"{minutes}m{total % 60}s" if total % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    if years < 8:
        return f"{years}y{days % 365}d" if days % 365 else f"{years}y"
    return f"{years}y"


def _age(value: Any, now: datetime) -> str:
    when = _parse_time(value)
    return human_duration((now - when).total_seconds()) if when is not None else NONE


def _conditions(status: Any) -> list[dict[str, str]]:
    found = []
    for item in _list(fields.get(status, "conditions")):
        kind = fields.as_str(fields.get(item, "type"))
        if kind is None:
            continue
        found.append(
            {
                "type": kind,
                "status": fields.as_str(fields.get(item, "status")) or "Unknown",
                "reason": fields.as_str(fields.get(item, "reason")) or "",
                "message": fields.as_str(fields.get(item, "message")) or "",
                "lastTransitionTime": fields.as_str(fields.get(item, "lastTransitionTime")) or "",
            }
        )
    return found


def _children(status: Any) -> list[dict[str, str]]:
    found = []
    for item in _list(fields.get(status, "children")):
        if not isinstance(item, Mapping):
            continue
        child = {
            key: fields.as_str(item.get(key)) or ""
            for key in ("kind", "apiVersion", "namespace", "name", "health", "reason", "message")
        }
        for key in ("streamlet", "topic"):
            value = fields.as_str(item.get(key))
            if value:
                child[key] = value
        found.append(child)
    return found


def _inventory(status: Any) -> dict[str, Any] | None:
    """`status.inventory` when the operator summarised the children (too many to list)."""
    summary = fields.get(status, "inventory")
    if not isinstance(summary, Mapping) or summary.get("summarised") is not True:
        return None
    counts: dict[str, dict[str, int]] = {}
    for item in _list(summary.get("counts")):
        n = fields.as_int(fields.get(item, "count"))
        kind = fields.as_str(fields.get(item, "kind"))
        health = fields.as_str(fields.get(item, "health"))
        if kind and health and n is not None:
            counts.setdefault(kind, {})[health] = n
    return {
        "total": fields.as_int(summary.get("total")),
        "listed": fields.as_int(summary.get("listed")),
        "counts": counts,
    }


def summarize(body: Body) -> dict[str, Any]:
    """The status of one Application as plain data (what ``-o json|yaml`` prints).

    ``phase`` is None when the operator has written no status yet; ``stale`` is True when the
    status describes an older generation than the spec's (``status.observedGeneration`` lower
    than ``metadata.generation``, or absent).
    """
    status = fields.get(body, "status")
    status = status if isinstance(status, Mapping) else {}
    generation = fields.as_int(fields.get(body, "metadata", "generation"))
    observed = fields.as_int(status.get("observedGeneration"))
    phase = fields.as_str(status.get("phase")) or None
    ready, total = fields.as_int(status.get("ready")), fields.as_int(status.get("total"))
    stale = bool(status) and generation is not None and (observed is None or observed < generation)
    return {
        "namespace": fields.as_str(fields.get(body, "metadata", "namespace")) or "",
        "name": fields.as_str(fields.get(body, "metadata", "name")) or "",
        "creationTimestamp": fields.as_str(fields.get(body, "metadata", "creationTimestamp")),
        "generation": generation,
        "observedGeneration": observed,
        "stale": stale,
        "phase": phase,
        "ready": ready,
        "total": total,
        "summary": fields.as_str(status.get("summary")),
        "conditions": _conditions(status),
        "children": _children(status),
        "inventory": _inventory(status),
    }


def _phase_cell(summary: Mapping[str, Any]) -> str:
    phase = summary["phase"] or NONE
    return f"{phase} (stale)" if summary["stale"] else phase


def _ready_cell(summary: Mapping[str, Any]) -> str:
    if summary["ready"] is not None and summary["total"] is not None:
        return f"{summary['ready']}/{summary['total']}"
    return summary["summary"] or "-"


def _condition(summary: Mapping[str, Any], kind: str) -> Mapping[str, str] | None:
    for condition in summary["conditions"]:
        if condition["type"] == kind:
            return condition  # type: ignore[no-any-return]
    return None


def _list_message(summary: Mapping[str, Any]) -> str:
    if summary["phase"] is None and not summary["conditions"]:
        return "no status yet: the operator has not reconciled it"
    if Phase.parse(summary["phase"]) is Phase.INVALID:
        compiled = _condition(summary, "Compiled")
        if compiled is not None and compiled["message"]:
            return compiled["message"]
    ready = _condition(summary, "Ready")
    return ready["message"] if ready is not None else ""


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded like kubectl's (three spaces apart); the last column is not padded."""
    cells = [[_text(cell) for cell in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    lines = []
    for row in [list(headers), *cells]:
        padded = [cell.ljust(widths[index]) for index, cell in enumerate(row[:-1])]
        lines.append("   ".join([*padded, row[-1]]).rstrip())
    return "\n".join(lines)


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def format_app_table(
    items: Sequence[Body],
    *,
    all_namespaces: bool = False,
    now: datetime | None = None,
    wide: bool = False,
) -> str:
    """The list of Applications: [NAMESPACE] NAME PHASE READY AGE MESSAGE (the Ready message).

    Sorted by namespace and name. ``wide``: messages are not truncated.
    """
    moment = _now(now)
    summaries = sorted(
        (summarize(item) for item in items), key=lambda s: (s["namespace"], s["name"])
    )
    headers = ["NAME", "PHASE", "READY", "AGE", "MESSAGE"]
    if all_namespaces:
        headers.insert(0, "NAMESPACE")
    rows = []
    for summary in summaries:
        row = [
            summary["name"],
            _phase_cell(summary),
            _ready_cell(summary),
            _age(summary["creationTimestamp"], moment),
            _clip(_text(_list_message(summary)), None if wide else LIST_MESSAGE_WIDTH),
        ]
        if all_namespaces:
            row.insert(0, summary["namespace"])
        rows.append(row)
    return render_table(headers, rows)


_PROBLEM_SEPARATOR: Final = re.compile(r"; (?=[A-Za-z_][^\s:;]*: )")


def _problems(message: str) -> list[str] | None:
    """The problems of a ``Compiled=False`` message ("N problem(s): a; b"), None if not that."""
    head, sep, rest = message.partition(" problem(s): ")
    if not sep or not head.isdigit():
        return None
    # Each problem is "path: message"; a message may itself contain "; ", a path never a space.
    parts = _PROBLEM_SEPARATOR.split(rest)
    return parts if len(parts) == int(head) else [rest]


def format_app_detail(body: Body, *, now: datetime | None = None, wide: bool = False) -> str:
    """One Application: phase, ready/total, conditions, problems when invalid, children."""
    moment = _now(now)
    summary = summarize(body)
    width = None if wide else DETAIL_MESSAGE_WIDTH
    phase = summary["phase"] or NONE
    if summary["phase"] is None and not summary["conditions"]:
        phase += " (no status yet: the operator has not reconciled this application)"
    elif summary["stale"]:
        observed = summary["observedGeneration"]
        seen = "no generation" if observed is None else f"generation {observed}"
        phase += (
            f" (stale: the status describes {seen}, the spec is generation "
            f"{summary['generation']}; the operator has not caught up)"
        )
    lines = [
        f"Name:        {_text(summary['name'])}",
        f"Namespace:   {_text(summary['namespace'])}",
        f"Phase:       {_text(phase)}",
        f"Ready:       {_ready_cell(summary)}",
        f"Age:         {_age(summary['creationTimestamp'], moment)}",
    ]
    if summary["conditions"]:
        rows = [
            [
                condition["type"],
                condition["status"],
                condition["reason"],
                _age(condition["lastTransitionTime"], moment)
                if condition["lastTransitionTime"]
                else "",
                _clip(_text(condition["message"]), width),
            ]
            for condition in summary["conditions"]
        ]
        lines += ["", "Conditions:"]
        lines.append(render_table(["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"], rows))
    compiled = _condition(summary, "Compiled")
    if compiled is not None and compiled["status"] == "False" and compiled["message"]:
        problems = _problems(compiled["message"]) or [compiled["message"]]
        lines += ["", "Problems:"]
        lines += [f"  - {_text(problem)}" for problem in problems]
    children = summary["children"]
    lines.append("")
    counted = summary["inventory"]
    if counted is not None:
        by_kind = "; ".join(
            f"{_text(kind)}: " + ", ".join(f"{n} {_text(h)}" for h, n in sorted(by_health.items()))
            for kind, by_health in sorted(counted["counts"].items())
        )
        lines.append(
            f"Inventory:   {counted['total']} children, too many to list all: "
            f"{len(children)} shown, those that are not Healthy, worst first"
        )
        lines.append(f"             {by_kind}")
    if not children:
        lines.append("Children:    none")
        return "\n".join(lines) + "\n"
    elsewhere = any(
        child["namespace"] and child["namespace"] != summary["namespace"] for child in children
    )
    headers = ["KIND", "NAME", "STREAMLET/TOPIC", "HEALTH", "REASON", "MESSAGE"]
    if elsewhere:
        headers.insert(2, "NAMESPACE")
    rows = []
    for child in children:
        row = [
            child["kind"],
            child["name"],
            child.get("streamlet") or child.get("topic") or "",
            child["health"] or NONE,
            child["reason"],
            _clip(_text(child["message"]), width),
        ]
        if elsewhere:
            row.insert(2, child["namespace"] or summary["namespace"])
        rows.append(row)
    lines.append("Children:")
    lines.append(render_table(headers, rows))
    return "\n".join(lines) + "\n"


def format_summaries(items: Sequence[Body], output: str, *, single: bool) -> str:
    """``-o json|yaml``: one summary (``single``) or ``{"items": [...]}``."""
    summaries = [summarize(item) for item in items]
    summaries.sort(key=lambda s: (s["namespace"], s["name"]))
    data: Any = summaries[0] if single else {"items": summaries}
    if output == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


# --------------------------------------------------------------------------------------------------
# I/O: the kubernetes client
# --------------------------------------------------------------------------------------------------


def _kubeconfig_source(explicit: str | None) -> str | None:
    """The kubeconfig to load (a path, or a KUBECONFIG path list); None for in-cluster."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise UsageError(f"--kubeconfig {explicit}: no such file")
        return str(path)
    env = os.environ.get("KUBECONFIG", "")
    if env.strip():
        return env
    default = Path("~/.kube/config").expanduser()
    if default.is_file():
        return str(default)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    raise UsageError(
        "no kubeconfig: pass --kubeconfig FILE, set KUBECONFIG or create ~/.kube/config "
        "(or run in a pod)"
    )


def _context_namespace(source: str | None, context: str | None) -> str:
    """The namespace kubectl would use: the context's, the pod's (in-cluster), else default."""
    from kubernetes import config

    if source is None:
        try:
            return SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip() or "default"
        except OSError:
            return "default"
    try:
        contexts, active = config.list_kube_config_contexts(config_file=source)  # type: ignore[no-untyped-call]
    except Exception:
        return "default"
    chosen = active
    if context is not None:
        chosen = next((c for c in contexts or () if fields.get(c, "name") == context), None)
    return fields.as_str(fields.get(chosen, "context", "namespace")) or "default"


def _kube(source: str | None, context: str | None, timeout: float) -> Kube:
    """The API client for the kubeconfig (or the pod's service account); UsageError if
    unusable."""
    from federator.kube import connect
    from federator.kube.client import Kube

    where = "in-cluster configuration" if source is None else f"kubeconfig {source}"
    try:
        # One retry for a blip; a refused connection must not be retried for long.
        api = connect.api_client(source, context=context, retries=1)
    except Exception as exc:  # ConfigException, YAML, OS and shape errors alike
        detail = _text(str(exc)) or type(exc).__name__
        raise UsageError(f"cannot use {where}: {_clip(detail, 300)}") from None
    return Kube(api, timeout=timeout)


class _Missing(Exception):
    """What was asked for is not on the server: the message says which of the two."""


def _fetch(args: argparse.Namespace, kube: Kube, namespace: str) -> list[Mapping[str, Any]]:
    """The Application(s) asked for; raises _Missing or KubeError."""
    from federator.kube.client import NotFound

    try:
        if args.name:
            body = kube.get_application(namespace, args.name)
            if body is not None:
                return [body]
            # Not there: the Application, or the whole kind? A one-item list tells.
            kube.list(GROUP, VERSION, PLURAL, namespace=namespace, page_size=1)
            raise _Missing(f"Application {args.name} not found in namespace {namespace}")
        return list(
            kube.list(
                GROUP,
                VERSION,
                PLURAL,
                namespace=None if args.all_namespaces else namespace,
                page_size=LIST_PAGE_SIZE,
            )
        )
    except NotFound:
        server = kube.api.configuration.host
        raise _Missing(f"the Application CRD ({CRD_NAME}) is not installed on {server}") from None


def cmd_status(args: argparse.Namespace) -> int:
    """Run `federator status`."""
    if args.name and args.all_namespaces:
        raise UsageError("NAME cannot be combined with -A/--all-namespaces: give -n NAMESPACE")
    if args.request_timeout <= 0:
        raise UsageError("--request-timeout must be a positive number of seconds")
    source = _kubeconfig_source(args.kubeconfig)
    kube = _kube(source, args.context, args.request_timeout)
    namespace = args.namespace or _context_namespace(source, args.context)
    server = kube.api.configuration.host

    from federator.kube.client import Forbidden, KubeError, Transient

    try:
        items = _fetch(args, kube, namespace)
    except _Missing as exc:
        print(f"federator: {_text(str(exc))}", file=sys.stderr)
        return EXIT_INVALID
    except Transient as exc:
        if exc.transport is None:
            message = _clip(_text(str(exc)), 300)
            raise UsageError(f"{server} answered {exc.status}: {message}") from None
        raise UsageError(
            f"cannot reach the API server at {server}: {_reason(exc.transport)}"
        ) from None
    except KubeError as exc:
        message = _clip(_text(str(exc)), 300)
        if isinstance(exc, Forbidden):
            raise UsageError(f"{server} refused the request ({exc.status}): {message}") from None
        raise UsageError(f"{server} answered {exc.status}: {message}") from None
    finally:
        kube.api.close()  # type: ignore[no-untyped-call]

    if args.output in ("json", "yaml"):
        sys.stdout.write(format_summaries(items, args.output, single=bool(args.name)))
        return EXIT_OK
    wide = args.output == "wide"
    if args.name:
        sys.stdout.write(format_app_detail(items[0], wide=wide))
        return EXIT_OK
    if not items:
        where = "any namespace" if args.all_namespaces else f"namespace {namespace}"
        print(f"No Applications found in {where}.", file=sys.stderr)
        return EXIT_OK
    sys.stdout.write(format_app_table(items, all_namespaces=args.all_namespaces, wide=wide) + "\n")
    return EXIT_OK


_CONNECTION_PREFIX: Final = re.compile(r"^(<[^>]*>|\w+Connection(Pool)?\([^)]*\)): ")


def _reason(exc: BaseException) -> str:
    """The innermost useful text of a urllib3 error (MaxRetryError wraps the real one)."""
    reason: Any = getattr(exc, "reason", None)
    while isinstance(reason, BaseException) and getattr(reason, "reason", None) is not None:
        reason = getattr(reason, "reason", None)
    text = _text(str(reason if isinstance(reason, BaseException) else exc))
    # urllib3 prefixes "<...HTTPSConnection object at 0x...>: " or "HTTPSConnection(host=...): ".
    text = _CONNECTION_PREFIX.sub("", text)
    return _clip(text or type(exc).__name__, 300)


def register(subparsers: Any) -> None:
    """Add `status` to the `federator` command."""
    parser = subparsers.add_parser(
        "status",
        help="show Applications and their children's health",
        description=(
            "Without NAME, list the Applications of a namespace (or all, -A) with their phase and "
            "ready/total children; with NAME, show one application's conditions and a table of "
            "its children (kind, name, health, reason, message). Exit code 0 when shown "
            "(whatever the health), 1 when the Application does not exist, 2 when the cluster "
            "cannot be asked."
        ),
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="one Application to detail")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        help="the namespace (default: the kubeconfig context's namespace, else default)",
    )
    scope.add_argument(
        "-A", "--all-namespaces", action="store_true", help="list Applications of all namespaces"
    )
    parser.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else in-cluster)",
    )
    parser.add_argument("--context", help="the kubeconfig context to use (default: current)")
    parser.add_argument(
        "-o",
        "--output",
        choices=("table", "wide", "json", "yaml"),
        default="table",
        help="table (default), wide (messages not truncated), json or yaml",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=DEFAULT_REQUEST_TIMEOUT,
        metavar="SECONDS",
        help=(
            "timeout of each attempt to reach the API server (one retry; "
            f"default {DEFAULT_REQUEST_TIMEOUT:g})"
        ),
    )
    parser.set_defaults(func=cmd_status)
