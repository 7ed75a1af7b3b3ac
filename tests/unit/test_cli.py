"""The offline CLI: `federator compile | validate | graph | crd` (DESIGN §6, issue 2 item 8).

Aspects covered:
- exit codes: 0 valid; 1 invalid spec, every problem printed with its path on stderr; 2 for
  unreadable input (missing file, directory, invalid YAML, non-mapping or empty document, not
  UTF-8), bad --settings files and bad --schemas directories; never a traceback;
- output: a YAML stream equal to the compiled children, ordered by wave; `-o json` a `List`
  (also through a real `python -m federator` subprocess); stdin `-`;
- `--schemas DIR`: the real delegate CRDs pass; a tightened CRD fails naming the child, the
  field path and the reason;
- hostile input: alias bombs, documents over 3 MiB, deep nesting fail fast and cleanly;
- `graph --format mermaid|dot|text` content, `crd` output.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from federator.cli.main import main
from federator.core import compiler, validation
from federator.core.settings import Settings
from federator.yamlio import MAX_BYTES

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
EXAMPLES = tuple(sorted(p.name for p in EXAMPLES_DIR.glob("*.yaml") if p.name != "settings.yaml"))
SETTINGS = str(EXAMPLES_DIR / "settings.yaml")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run `federator argv...` in-process; a traceback is never acceptable output."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, out, err


def example(name: str) -> str:
    return str(EXAMPLES_DIR / name)


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


INVALID_APP = """\
apiVersion: federator.io/v1alpha1
kind: Application
metadata: {name: broken, namespace: team}
spec:
  streamlets:
    - {name: src, runtime: container, image: i, outlets: [out]}
    - {name: src, runtime: container, image: i, outlets: [out]}
    - {name: proc, runtime: sparkk, image: i, inlets: [in]}
    - {name: sink, runtime: container, image: i, inlets: [in, other]}
  connections:
    - {from: src.out, to: [sink.inn]}
    - {from: src.out, to: [sink.in]}
"""


# === exit codes =================================================================================


@pytest.mark.parametrize("command", ["compile", "validate", "graph"])
@pytest.mark.parametrize("name", EXAMPLES, ids=[e.removesuffix(".yaml") for e in EXAMPLES])
def test_valid_examples_exit_0(command: str, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, command, example(name), "--settings", SETTINGS)
    assert code == 0, err
    assert out
    if command == "validate":
        assert "is valid" in out


@pytest.mark.parametrize("command", ["compile", "validate", "graph"])
def test_invalid_spec_exits_1_with_every_problem(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], example_settings: Settings
) -> None:
    path = write(tmp_path / "broken.yaml", INVALID_APP)
    problems = validation.validate(yaml.safe_load(INVALID_APP), example_settings).problems
    assert len(problems) >= 4
    code, out, err = run(capsys, command, path, "--settings", SETTINGS)
    assert code == 1
    assert out == ""
    assert f"{len(problems)} problem(s)" in err
    for problem in problems:
        assert f"{problem.path}: {problem.message}" in err
    for path_text in (
        "spec.streamlets[1].name",
        "spec.streamlets[2].runtime",
        "spec.connections[0].to[0]",
        "spec.streamlets[3].inlets[1]",
    ):
        assert f"  {path_text}: " in err, path_text


def test_unknown_cluster_without_settings_uses_development_defaults(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FEDERATOR_SETTINGS", raising=False)
    code, _, err = run(capsys, "validate", example("wordcount-lyft.yaml"))
    assert code == 1
    assert "spec.kafka.cluster: unknown Kafka cluster 'legacy'" in err
    monkeypatch.setenv("FEDERATOR_SETTINGS", SETTINGS)
    code, out, _ = run(capsys, "validate", example("wordcount-lyft.yaml"))
    assert code == 0 and "is valid" in out


UNREADABLE = {
    "missing-file": (None, "cannot read"),
    "directory": ("", "is a directory"),
    "invalid-yaml": ("a: [1, 2\nb: {", "invalid YAML"),
    "tab-indentation": ("a:\n\tb: 1\n", "invalid YAML"),
    "list-document": ("- 1\n- 2\n", "is a list, expected an Application mapping"),
    "scalar-document": ("just a string\n", "is a str, expected an Application mapping"),
    "second-document-not-a-mapping": (
        Path(EXAMPLES_DIR / "mixed-sensors.yaml").read_text() + "---\n42\n",
        "document 2 is a int",
    ),
    "empty-file": ("", "no YAML document found"),
    "only-comments": ("# nothing here\n---\n", "no YAML document found"),
    "python-object-tag": ("!!python/object/apply:os.system ['true']\n", "invalid YAML"),
}


@pytest.mark.parametrize("command", ["compile", "validate", "graph"])
@pytest.mark.parametrize("case", list(UNREADABLE))
def test_unreadable_input_exits_2(
    case: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, message = UNREADABLE[case]
    if content is None:
        path = str(tmp_path / "missing.yaml")
    elif case == "directory":
        path = str(tmp_path)
    else:
        path = write(tmp_path / "input.yaml", content)
    code, out, err = run(capsys, command, path, "--settings", SETTINGS)
    assert code == 2
    assert out == ""
    assert err.startswith("federator: error: ")
    assert path in err and message in err, err


def test_not_utf8_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    code, _, err = run(capsys, "compile", str(path))
    assert code == 2
    assert "not UTF-8" in err


SETTINGS_CASES = {
    "missing": (None, "cannot read"),
    "invalid-yaml": ("kafkaClusters: [\n", "invalid YAML"),
    "not-a-mapping": ("- 1\n", "expected a mapping"),
    "wrong-type": ("kafkaClusters: 3\n", "settings.kafkaClusters: expected list"),
    "unknown-key": ("kafkaClusterz: []\n", "unknown key(s) kafkaClusterz"),
    "missing-field": ("kafkaClusters: [{name: default}]\n", "strimziCluster: required"),
    "bad-enum": (
        "kafkaClusters: [{name: d, strimziCluster: s, namespace: k, bootstrapServers: b, "
        "topicApiVersion: v2}]\n",
        "topicApiVersion: 'v2' is not one of",
    ),
    "two-documents": ("kafkaClusters: []\n---\nflink: {}\n", "expected one YAML document"),
}


@pytest.mark.parametrize("command", ["compile", "validate"])
@pytest.mark.parametrize("case", list(SETTINGS_CASES))
def test_bad_settings_file_exits_2(
    case: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, message = SETTINGS_CASES[case]
    path = str(tmp_path / "settings.yaml")
    if content is not None:
        write(tmp_path / "settings.yaml", content)
    code, out, err = run(capsys, command, example("mixed-sensors.yaml"), "--settings", path)
    assert code == 2
    assert out == ""
    assert path in err and message in err, err


def test_bad_schemas_dir_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = example("mixed-sensors.yaml")
    code, _, err = run(capsys, "compile", app, "--schemas", str(tmp_path / "nope"))
    assert code == 2 and "not a directory" in err
    file = write(tmp_path / "file.yaml", "a: 1\n")
    code, _, err = run(capsys, "compile", app, "--schemas", file)
    assert code == 2 and "not a directory" in err
    code, _, err = run(capsys, "compile", app, "--schemas", str(tmp_path))
    assert code == 2 and "no CustomResourceDefinition found" in err


@pytest.mark.parametrize(
    "argv",
    [[], ["compile"], ["compile", "x.yaml", "-o", "xml"], ["graph", "x.yaml", "--format", "png"]],
    ids=["no-command", "no-file", "bad-output", "bad-format"],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert "usage:" in err and "Traceback" not in err


# === output =====================================================================================


@pytest.mark.parametrize("name", EXAMPLES, ids=[e.removesuffix(".yaml") for e in EXAMPLES])
def test_yaml_stream_is_the_compiled_children(
    name: str, capsys: pytest.CaptureFixture[str], example_settings: Settings
) -> None:
    code, out, _ = run(capsys, "compile", example(name), "--settings", SETTINGS)
    assert code == 0
    documents = list(yaml.safe_load_all(out))
    body = yaml.safe_load(Path(example(name)).read_text())
    compiled = compiler.compile_application(body, example_settings)
    assert documents == [dict(c.manifest) for c in compiled.children]
    kinds = [d["kind"] for d in documents]
    first_streamlet = next(i for i, k in enumerate(kinds) if k != "KafkaTopic")
    assert set(kinds[:first_streamlet]) == {"KafkaTopic"}
    assert "KafkaTopic" not in kinds[first_streamlet:]


def test_json_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "compile", example("mixed-sensors.yaml"), "--settings", SETTINGS, "-o", "json"
    )
    assert code == 0
    document = json.loads(out)
    assert document["apiVersion"] == "v1" and document["kind"] == "List"
    assert len(document["items"]) == 16


def test_subprocess_json_list(repo_root: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "federator",
            "compile",
            "examples/call-record-aggregator.yaml",
            "--settings",
            "examples/settings.yaml",
            "-o",
            "json",
        ],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["kind"] == "List"
    items: list[dict[str, Any]] = document["items"]
    kinds = [i["kind"] for i in items]
    assert kinds.count("KafkaTopic") == 7
    assert kinds.count("SparkApplication") == 3 and kinds.count("Deployment") == 5
    topics = {i["spec"]["topicName"] for i in items if i["kind"] == "KafkaTopic"}
    assert "call-record-aggregator.merge.out" in topics


def test_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    data = Path(example("mixed-sensors.yaml")).read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, out, _ = run(capsys, "compile", "-", "--settings", SETTINGS)
    assert code == 0
    assert len(list(yaml.safe_load_all(out))) == 16
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, out, _ = run(capsys, "validate", "-", "--settings", SETTINGS)
    assert code == 0 and "-: Application mixed-sensors is valid" in out


def test_stdin_invalid_yaml(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a: [")))
    code, _, err = run(capsys, "compile", "-")
    assert code == 2 and "-: invalid YAML" in err


def test_several_documents(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "---\n".join(
        Path(example(n)).read_text() for n in ("mixed-sensors.yaml", "call-record-aggregator.yaml")
    )
    code, out, _ = run(
        capsys, "compile", write(tmp_path / "two.yaml", text), "--settings", SETTINGS
    )
    assert code == 0
    assert len(list(yaml.safe_load_all(out))) == 16 + 15
    # One invalid document makes the whole run invalid, and nothing is printed.
    text += "---\n" + INVALID_APP
    code, out, err = run(
        capsys, "compile", write(tmp_path / "three.yaml", text), "--settings", SETTINGS
    )
    assert code == 1 and out == ""
    assert "Application broken is invalid" in err


# === --schemas ==================================================================================


@pytest.mark.parametrize("name", EXAMPLES, ids=[e.removesuffix(".yaml") for e in EXAMPLES])
def test_schemas_with_the_real_crds(
    name: str, delegate_crds: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "compile", example(name), "--settings", SETTINGS, "--schemas", str(delegate_crds)
    )
    assert code == 0, err
    assert out


def test_bare_schemas_uses_the_shipped_delegate_crds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FEDERATOR_DELEGATE_CRDS", raising=False)
    app = example("call-record-aggregator.yaml")
    code, out, err = run(capsys, "compile", app, "--settings", SETTINGS, "--schemas")
    assert code == 0, err
    assert "kind: SparkApplication" in out
    # $FEDERATOR_DELEGATE_CRDS overrides, and an empty folder is a usage error naming it.
    monkeypatch.setenv("FEDERATOR_DELEGATE_CRDS", str(tmp_path))
    code, _, err = run(capsys, "compile", app, "--settings", SETTINGS, "--schemas")
    assert code == 2
    assert f"--schemas {tmp_path}: no CustomResourceDefinition found" in err


def test_schemas_tightened_crd_names_child_field_and_reason(
    delegate_crds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schemas = tmp_path / "crds"
    schemas.mkdir()
    for crd in delegate_crds.glob("*.crd.yaml"):
        if not crd.name.startswith("strimzi-"):
            (schemas / crd.name).symlink_to(crd)  # the real files, not copies
    crd = yaml.safe_load((delegate_crds / "strimzi-kafkatopic.crd.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    partitions = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"][
        "partitions"
    ]
    partitions["maximum"] = 10
    write(schemas / "kafkatopic-tight.yaml", yaml.safe_dump(crd))

    code, out, err = run(
        capsys,
        "compile",
        example("mixed-sensors.yaml"),
        "--settings",
        SETTINGS,
        "--schemas",
        str(schemas),
    )
    assert code == 1
    assert out == ""
    assert "7 rendered child(ren) do not match their CRD schema" in err
    for topic in (
        "ingress.out",
        "akka-process.out",
        "akka-process1.out",
        "akka-process2.out",
        "spark-process.out",
        "spark-process1.out",
        "spark-process2.out",
    ):
        child = f"KafkaTopic/kafka/mixed-sensors.{topic}"
        line = f"{child} spec.partitions: 53 is greater than the maximum of 10"
        assert line in err, line
    assert "SparkApplication/" not in err and "Deployment/" not in err


def test_schemas_without_a_needed_crd(
    delegate_crds: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "strimzi.yaml").symlink_to(delegate_crds / "strimzi-kafkatopic.crd.yaml")
    code, _, err = run(
        capsys,
        "compile",
        example("mixed-sensors.yaml"),
        "--settings",
        SETTINGS,
        "--schemas",
        str(tmp_path),
    )
    assert code == 1
    assert "SparkApplication/lightbend/mixed-sensors-spark-process" in err
    assert "no CRD serves sparkoperator.k8s.io/v1beta2 SparkApplication" in err


# === hostile input ==============================================================================


def billion_laughs(levels: int, width: int, *, inside_runtime_block: bool) -> str:
    """`levels` anchored lists, each of `width` aliases of the previous: width**levels items."""
    rows = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for n in range(1, levels):
        rows.append(f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * width)}]")
    if not inside_runtime_block:
        return "\n".join(rows) + "\n"
    indent = "        "
    return (
        "apiVersion: federator.io/v1alpha1\nkind: Application\n"
        "metadata: {name: bomb, namespace: team}\nspec:\n  streamlets:\n"
        "    - name: s\n      runtime: container\n      image: i\n      container:\n"
        + "".join(f"{indent}{row}\n" for row in rows)
    )


def test_wide_alias_bomb_fails_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "bomb.yaml", billion_laughs(10, 12, inside_runtime_block=True))
    code, out, err = run(capsys, "compile", path)
    assert code == 2 and out == ""
    assert "alias bomb" in err and path in err


@pytest.mark.parametrize("inside", [False, True], ids=["top-level", "in-runtime-block"])
def test_billion_laughs_9_levels_fails_fast(
    inside: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = billion_laughs(9, 10, inside_runtime_block=inside)
    path = write(tmp_path / "bomb.yaml", text)
    if inside:
        # Not through main(): today that expands 10**9 items. Loading is where it must stop.
        from federator.yamlio import InputError, load_all

        with pytest.raises(InputError, match="alias"):
            load_all(text, path)
        return
    code, _, err = run(capsys, "compile", path)
    assert code == 2
    assert "alias" in err


def test_over_3_mib_fails_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = Path(example("mixed-sensors.yaml")).read_text()
    padding = "#" * (MAX_BYTES - len(body.encode()) - 1) + "\n"
    assert len((body + padding).encode()) == MAX_BYTES
    code, _, err = run(
        capsys, "validate", write(tmp_path / "limit.yaml", body + padding), "--settings", SETTINGS
    )
    assert code == 0, err  # exactly at the limit is still read
    path = write(tmp_path / "huge.yaml", body + padding + "\n")
    code, out, err = run(capsys, "compile", path, "--settings", SETTINGS)
    assert code == 2 and out == ""
    assert "larger than 3 MiB" in err and path in err


def test_over_3_mib_on_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a: " + b"x" * MAX_BYTES)))
    code, _, err = run(capsys, "compile", "-")
    assert code == 2 and "larger than 3 MiB" in err


@pytest.mark.parametrize(
    "text",
    [
        "[" * 50_000 + "]" * 50_000 + "\n",
        "{a: " * 20_000 + "1" + "}" * 20_000 + "\n",
        billion_laughs(1, 1, inside_runtime_block=True)
        + "        deep: "
        + "{a: " * 5_000
        + "1"
        + "}" * 5_000
        + "\n",
    ],
    ids=["lists", "mappings", "in-runtime-block"],
)
def test_deep_nesting_fails_cleanly(
    text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "deep.yaml", text)
    code, out, err = run(capsys, "compile", path)
    assert code == 2 and out == ""
    assert "nested too deeply" in err and path in err


# === graph and crd ==============================================================================


def test_graph_mermaid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "graph",
        example("call-record-aggregator.yaml"),
        "--settings",
        SETTINGS,
        "--format",
        "mermaid",
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "flowchart LR"
    ids = {}
    for line in lines[1:]:
        if '(["' in line:
            node, label = line.strip().split('(["')
            ids[label.removesuffix('"])')] = node
        elif '[("' in line:
            node, label = line.strip().split('[("')
            ids[label.removesuffix('")]')] = node
    assert ids["merge (container)"] and ids["cdr-aggregator (spark)"]
    assert ids["cdr-validator (container)"]  # akka is shown as its runtime
    topic = ids["call-record-aggregator.merge.out"]
    assert f"  {ids['merge (container)']} -- out --> {topic}" in lines
    assert f"  {topic} -- in --> {ids['cdr-validator (container)']}" in lines
    assert sum(1 for line in lines if "-->" in line) == 7 + 7  # producers + consumers


def test_graph_dot(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "graph", example("wordcount-lyft.yaml"), "--settings", SETTINGS, "--format", "dot"
    )
    assert code == 0
    assert out.startswith('digraph "wordcount" {\n')
    assert out.rstrip().endswith("}")
    assert '"streamlet/counter" [label="counter (flink)", shape=box, style=rounded];' in out
    assert (
        '"topic/analytics.audit-log" [label="analytics.audit-log", shape=cylinder, style=dashed];'
        in out
    )
    assert '"streamlet/counter" -> "topic/analytics.counts" [label="out"];' in out
    assert '"topic/wordcount.lines-ingress.out" -> "streamlet/counter" [label="in"];' in out


def test_graph_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "graph",
        example("call-record-aggregator.yaml"),
        "--settings",
        SETTINGS,
        "--format",
        "text",
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "application lightbend/call-record-aggregator"
    merge = lines.index("  merge (container)")
    assert lines[merge + 1].split() == ["<-", "in-0", "call-record-aggregator.cdr-generator1.out"]
    assert lines[merge + 4].split() == ["->", "out", "call-record-aggregator.merge.out"]
    assert lines.index("  merge (container)") < lines.index("  cdr-validator (container)")


def test_graph_defaults_to_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "graph", example("mixed-sensors.yaml"), "--settings", SETTINGS)
    assert code == 0 and out.startswith("application lightbend/mixed-sensors\n")


def test_crd(capsys: pytest.CaptureFixture[str], repo_root: Path) -> None:
    code, out, _ = run(capsys, "crd")
    assert code == 0
    crd = yaml.safe_load(out)
    assert crd["kind"] == "CustomResourceDefinition"
    assert crd["metadata"]["name"] == "applications.federator.io"
    assert crd["spec"]["names"]["kind"] == "Application"
    assert out == (repo_root / "crds" / "application.yaml").read_text(encoding="utf-8")


def test_run_without_a_cluster_says_how_to_give_one(tmp_path: Path) -> None:
    """No kubeconfig anywhere and not in a pod: a usage error naming the ways to give
    credentials (it was an 'internal error' from the in-cluster loader, exit 3)."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "federator", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "no cluster to run against: pass --kubeconfig FILE, set KUBECONFIG" in done.stderr
    assert "internal error" not in done.stderr
    named = subprocess.run(
        [sys.executable, "-m", "federator", "run", "--kubeconfig", str(tmp_path / "nope")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert named.returncode == 2, named.stderr
    assert f"--kubeconfig {tmp_path / 'nope'}: cannot use it" in named.stderr
