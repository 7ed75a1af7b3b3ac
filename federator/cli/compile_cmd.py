"""Offline commands over an Application file: compile, validate, graph, crd."""

from __future__ import annotations

import argparse
import functools
import gc
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from federator.cli.main import EXIT_INVALID, EXIT_OK, UsageError
from federator.core import childschema, compiler, export, validation
from federator.core.problems import InvalidSpec, Problem
from federator.core.resources import application_crd_path
from federator.core.settings import Settings, SettingsError
from federator.settings_file import load_settings
from federator.yamlio import InputError, dump_all, iter_documents, load_all, read_text


def _settings(args: argparse.Namespace) -> Settings:
    try:
        return load_settings(args.settings)
    except SettingsError as exc:
        raise UsageError(str(exc)) from None


def _documents(source: str) -> list[Mapping[str, Any]]:
    try:
        docs = list(iter_documents(source))
    except InputError as exc:
        raise UsageError(str(exc)) from None
    if not docs:
        raise UsageError(f"{source}: no YAML document found")
    for n, doc in enumerate(docs):
        if not isinstance(doc, Mapping):
            raise UsageError(
                f"{source}: document {n + 1} is a {type(doc).__name__}, expected an Application "
                "mapping (apiVersion, kind, metadata, spec)"
            )
    return docs


def _label(doc: Mapping[str, Any]) -> str:
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return f"Application {name}" if isinstance(name, str) else "Application"


_SHIPPED = "<shipped delegate CRDs>"


def _print_problems(source: str, doc: Mapping[str, Any], problems: tuple[Problem, ...]) -> None:
    print(f"{source}: {_label(doc)} is invalid: {len(problems)} problem(s)", file=sys.stderr)
    for p in problems:
        print(f"  {p.path}: {p.message} [{p.code.value}]", file=sys.stderr)


def _schema_index(directory: str) -> childschema.SchemaIndex:
    root = Path(directory)
    if not root.is_dir():
        raise UsageError(f"--schemas {directory}: not a directory")
    files = sorted([*root.glob("*.yaml"), *root.glob("*.yml"), *root.glob("*.json")])
    docs: list[Any] = []
    for file in files:
        try:
            docs += load_all(read_text(str(file)), str(file))
        except InputError:
            continue  # not every file in a folder of CRDs need be YAML we understand
    index = childschema.SchemaIndex.from_documents(docs)
    if not index.schemas:
        raise UsageError(f"--schemas {directory}: no CustomResourceDefinition found")
    return index


def _schemas_dir(value: str | None) -> str | None:
    """--schemas DIR as given; bare --schemas means the delegate CRDs shipped with federator
    (or $FEDERATOR_DELEGATE_CRDS)."""
    if value != _SHIPPED:
        return value
    from federator.devcluster import crdfiles

    try:
        return str(crdfiles.delegate_crds_dir())
    except crdfiles.CRDFileError as exc:
        raise UsageError(str(exc)) from None


def _without_cyclic_gc(command: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """A one-shot command over one input of at most 3 MiB makes almost no cyclic garbage (the
    peak memory of a 1,000-streamlet compile is the same without the collector), yet the
    collector's passes over its hundreds of thousands of young objects were a fifth of the
    time. Reference counting still frees everything; the collector is back afterwards."""

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return command(args)
        finally:
            if was_enabled:
                gc.enable()

    return run


@_without_cyclic_gc
def cmd_compile(args: argparse.Namespace) -> int:
    settings = _settings(args)
    args.schemas = _schemas_dir(args.schemas)
    index = _schema_index(args.schemas) if args.schemas else None
    manifests: list[Any] = []
    invalid = False
    for doc in _documents(args.file):
        try:
            compiled = compiler.compile_application(doc, settings)
        except InvalidSpec as exc:
            _print_problems(args.file, doc, exc.problems)
            invalid = True
            continue
        if index is not None:
            problems = childschema.check(compiled.children, index)
            if problems:
                print(
                    f"{args.file}: {_label(doc)}: {len(problems)} rendered child(ren) do not "
                    f"match their CRD schema in {args.schemas}:",
                    file=sys.stderr,
                )
                for p in problems:
                    print(f"  {p.path}: {p.message}", file=sys.stderr)
                invalid = True
                continue
        manifests += [dict(c.manifest) for c in compiled.children]
    if invalid:
        return EXIT_INVALID
    if args.output == "json":
        json.dump({"apiVersion": "v1", "kind": "List", "items": manifests}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        dump_all(manifests, sys.stdout)
    return EXIT_OK


@_without_cyclic_gc
def cmd_validate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    code = EXIT_OK
    for doc in _documents(args.file):
        try:  # the spec, then the pods its children would run (the pod policy)
            compiler.compile_application(doc, settings)
        except InvalidSpec as exc:
            _print_problems(args.file, doc, exc.problems)
            code = EXIT_INVALID
        else:
            print(f"{args.file}: {_label(doc)} is valid")
    return code


@_without_cyclic_gc
def cmd_graph(args: argparse.Namespace) -> int:
    settings = _settings(args)
    code = EXIT_OK
    views = {"mermaid": export.mermaid, "dot": export.dot, "text": export.text}
    for doc in _documents(args.file):
        result = validation.validate(doc, settings)
        if not result.ok:
            _print_problems(args.file, doc, result.problems)
            code = EXIT_INVALID
            continue
        sys.stdout.write(views[args.format](result.topology))
    return code


def cmd_crd(args: argparse.Namespace) -> int:
    sys.stdout.write(application_crd_path().read_text(encoding="utf-8"))
    return EXIT_OK


def register(subparsers: Any) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("file", metavar="FILE", help="Application manifest (YAML); - for stdin")
        p.add_argument(
            "--settings",
            metavar="FILE",
            help="operator settings (named Kafka clusters); default $FEDERATOR_SETTINGS, else "
            "a development cluster named 'default'",
        )

    p = subparsers.add_parser(
        "compile", help="render the child manifests of an Application (offline)"
    )
    common(p)
    p.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")
    p.add_argument(
        "--schemas",
        metavar="DIR",
        nargs="?",
        const=_SHIPPED,
        help="validate every child against the CRD files in DIR before printing; without DIR, "
        "against the delegate CRDs shipped with federator",
    )
    p.set_defaults(func=cmd_compile)

    p = subparsers.add_parser("validate", help="report every problem of an Application")
    common(p)
    p.set_defaults(func=cmd_validate)

    p = subparsers.add_parser("graph", help="draw an Application's topology")
    common(p)
    p.add_argument("--format", choices=("mermaid", "dot", "text"), default="text")
    p.set_defaults(func=cmd_graph)

    p = subparsers.add_parser("crd", help="print the Application CRD")
    p.set_defaults(func=cmd_crd)
