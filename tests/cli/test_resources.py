"""`modelplane apply | get | describe | delete | wait`, run as real commands against a real
control-plane API process."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap

import httpx
import pytest
import yaml

from modelplane.api.loader import load_text
from modelplane.local.api.client import ControlPlaneClient
from modelplane.local.api.process import ApiProcess

ISVC = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: {name}
spec:
  predictor:
    sklearn:
      storageUri: {uri}
"""

RUNTIME = """\
apiVersion: serving.kserve.io/v1alpha1
kind: ClusterServingRuntime
metadata:
  name: {name}
spec:
  supportedModelFormats:
    - name: sklearn
      version: "1"
  containers:
    - name: kserve-container
      image: example/sklearn
"""


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with ApiProcess(tmp_path_factory.mktemp("home")) as process:
        yield process.url


def run(api: str | None, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ}
    env.pop("MODELPLANE_API", None)
    if api:
        env["MODELPLANE_API"] = api
    return subprocess.run(
        [sys.executable, "-m", "modelplane", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return path


def isvc_yaml(name: str, uri: str = "file:///models/iris") -> str:
    return ISVC.format(name=name, uri=uri)


def store(api: str, text: str, namespace: str = "default") -> None:
    """Applies manifests straight through the API (setup for tests of other commands)."""
    with ControlPlaneClient(api) as client:
        client.apply([d.resource for d in load_text(text)], namespace)


def patch_status(api: str, name: str, status: dict, namespace: str = "default") -> None:
    response = httpx.patch(
        f"{api}/apis/serving.kserve.io/v1beta1/namespaces/{namespace}/inferenceservices/{name}/status",
        content=json.dumps({"status": status}),
        headers={"content-type": "application/merge-patch+json"},
    )
    response.raise_for_status()


def test_apply_creates_then_leaves_alone_then_configures(api, tmp_path):
    manifest = write(tmp_path, "iris.yaml", isvc_yaml("iris"))
    rehearsal = run(api, "apply", "--dry-run=server", "-f", str(manifest))
    assert rehearsal.stdout == "inferenceservice.serving.kserve.io/iris created (server dry run)\n"
    client_side = run(api, "apply", "--dry-run=client", "-f", str(manifest))  # kubectl users' habit
    assert client_side.stdout == rehearsal.stdout
    assert "--dry-run=client: checked by the control plane as --dry-run=server" in client_side.stderr
    first = run(api, "apply", "-f", str(manifest))
    assert first.returncode == 0, first.stderr
    assert first.stdout == "inferenceservice.serving.kserve.io/iris created\n"
    assert (
        run(api, "apply", "-f", str(manifest)).stdout == "inferenceservice.serving.kserve.io/iris unchanged\n"
    )
    manifest.write_text(isvc_yaml("iris", "file:///models/iris-v2"))
    assert (
        run(api, "apply", "-f", str(manifest)).stdout
        == "inferenceservice.serving.kserve.io/iris configured\n"
    )
    stored = json.loads(run(api, "get", "isvc", "iris", "-o", "json").stdout)
    assert stored["spec"]["predictor"]["model"]["storageUri"] == "file:///models/iris-v2"
    assert stored["metadata"]["generation"] == 2


def test_apply_a_folder_and_stdin(api, tmp_path):
    folder = tmp_path / "manifests"
    folder.mkdir()
    write(folder, "a.yaml", isvc_yaml("folder-a") + "---\n" + RUNTIME.format(name="folder-rt"))
    write(folder, "b.yml", isvc_yaml("folder-b"))
    write(folder, "notes.txt", "not a manifest")
    result = run(api, "apply", "-f", str(folder), "-n", "team")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "inferenceservice.serving.kserve.io/folder-a created",
        "clusterservingruntime.serving.kserve.io/folder-rt created",
        "inferenceservice.serving.kserve.io/folder-b created",
    ]
    assert json.loads(run(api, "get", "isvc", "folder-b", "-n", "team", "-o", "json").stdout)

    typo = isvc_yaml("from-stdin").replace("      storageUri:", "      storageUrl: x\n      storageUri:")
    piped = run(api, "apply", "-f", "-", stdin=typo)
    assert piped.stdout == "inferenceservice.serving.kserve.io/from-stdin created\n"
    assert piped.stderr == (
        'Warning: <stdin>:8: unknown field "spec.predictor.sklearn.storageUrl"; did you mean "storageUri"?\n'
    )


def test_a_refused_document_refuses_the_whole_apply(api, tmp_path):
    manifest = write(
        tmp_path,
        "batch.yaml",
        isvc_yaml("batch-good")
        + "---\n"
        + isvc_yaml("batch-bad").replace("    sklearn:\n", "    nothing: {}\n    x:\n"),
    )
    result = run(api, "apply", "-f", str(manifest))
    assert result.returncode == 1
    error = result.stderr.splitlines()[-1]
    assert error.startswith(f"modelplane apply: {manifest}:")
    assert 'InferenceService.serving.kserve.io "batch-bad" is invalid' in error
    assert error.endswith("(nothing was applied)")
    missing = run(api, "get", "isvc", "batch-good")
    assert missing.returncode == 1
    assert 'inferenceservices.serving.kserve.io "batch-good" not found' in missing.stderr


def test_a_yaml_error_names_the_file_and_line(api, tmp_path):
    manifest = write(tmp_path, "broken.yaml", "apiVersion: v1\nkind: [unclosed\n")
    result = run(api, "apply", "-f", str(manifest))
    assert result.returncode == 1
    assert result.stderr.startswith(f"modelplane apply: {manifest}:")
    unknown = write(tmp_path, "pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n")
    refused = run(api, "apply", "-f", str(unknown))
    assert refused.returncode == 1
    assert refused.stderr == f'modelplane apply: {unknown}:1: no matches for kind "Pod" in version "v1"\n'
    bad_name = write(tmp_path, "name.yaml", isvc_yaml("Bad_Name"))
    refused = run(api, "apply", "-f", str(bad_name))
    assert refused.returncode == 1
    assert refused.stderr.startswith(
        f'modelplane apply: {bad_name}:4: InferenceService.serving.kserve.io "Bad_Name" is invalid: '
        'metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain'
    )
    old_version = write(tmp_path, "old.yaml", isvc_yaml("old").replace("v1beta1", "v1alpha2"))
    refused = run(api, "apply", "-f", str(old_version))
    assert refused.returncode == 1
    assert refused.stderr == (
        f'modelplane apply: {old_version}:1: no matches for kind "InferenceService" in version '
        '"serving.kserve.io/v1alpha2" (InferenceService is served as "serving.kserve.io/v1beta1")\n'
    )


def test_an_explicit_namespace_must_agree_with_the_file(api, tmp_path):
    text = isvc_yaml("placed").replace("  name: placed\n", "  name: placed\n  namespace: prod\n")
    manifest = write(tmp_path, "placed.yaml", text)
    result = run(api, "apply", "-f", str(manifest), "-n", "dev")
    assert result.returncode == 1
    assert 'does not match the namespace "dev"' in result.stderr


def test_get_shows_kubectl_columns_from_status(api, tmp_path):
    store(api, isvc_yaml("cols"))
    patch_status(
        api,
        "cols",
        {
            "url": "http://cols.default.localhost",
            "conditions": [{"type": "Ready", "status": "True"}],
            "components": {
                "predictor": {
                    "traffic": [
                        {"tag": "prev", "revisionName": "cols-predictor-00001", "percent": 10},
                        {"latestRevision": True, "revisionName": "cols-predictor-00002", "percent": 90},
                    ]
                }
            },
        },
    )
    table = run(api, "get", "isvc", "cols").stdout.splitlines()
    assert table[0].split() == [
        "NAME",
        "URL",
        "READY",
        "PREV",
        "LATEST",
        "PREVROLLEDOUTREVISION",
        "LATESTREADYREVISION",
        "AGE",
    ]
    cells = table[1].split()
    assert cells[:7] == [
        "cols",
        "http://cols.default.localhost",
        "True",
        "10",
        "90",
        "cols-predictor-00001",
        "cols-predictor-00002",
    ]
    assert cells[7][-1] in "smhdy"
    wide = run(api, "get", "inferenceservices", "-o", "wide").stdout
    assert "cols-predictor-00002" in wide
    everywhere = run(api, "get", "isvc", "-A").stdout.splitlines()
    assert everywhere[0].split()[:2] == ["NAMESPACE", "NAME"]


def test_get_output_formats(api, tmp_path):
    store(api, isvc_yaml("fmt"))
    one = yaml.safe_load(run(api, "get", "isvc/fmt", "-o", "yaml").stdout)
    assert one["kind"] == "InferenceService"
    assert one["metadata"]["name"] == "fmt"
    listed = json.loads(run(api, "get", "isvc", "-o", "json").stdout)
    assert listed["kind"] == "List"
    assert "fmt" in [i["metadata"]["name"] for i in listed["items"]]
    assert (
        "inferenceservice.serving.kserve.io/fmt" in run(api, "get", "isvc", "-o", "name").stdout.splitlines()
    )
    empty = run(api, "get", "ig", "-n", "nothing-here")
    assert empty.returncode == 0
    assert empty.stderr == "No resources found in nothing-here namespace.\n"
    assert (
        run(api, "get", "nonsense").stderr
        == 'modelplane get: the server doesn\'t have a resource type "nonsense"\n'
    )


def test_cluster_scoped_runtimes(api, tmp_path):
    store(api, RUNTIME.format(name="listed-rt"))
    table = run(api, "get", "csr").stdout.splitlines()
    assert table[0].split() == ["NAME", "DISABLED", "MODELTYPE", "CONTAINERS", "AGE"]
    row = next(line for line in table if line.startswith("listed-rt "))
    assert row.split()[1:3] == ["sklearn", "kserve-container"]
    assert run(api, "get", "clusterservingruntimes", "listed-rt", "-o", "name").stdout == (
        "clusterservingruntime.serving.kserve.io/listed-rt\n"
    )


def test_describe(api, tmp_path):
    store(api, isvc_yaml("desc"))
    patch_status(api, "desc", {"conditions": [{"type": "Ready", "status": "False", "reason": "Pending"}]})
    text = run(api, "describe", "isvc", "desc").stdout
    assert text.startswith("Name:         desc\nNamespace:    default\n")
    assert "API Version:  serving.kserve.io/v1beta1" in text
    assert "      Storage Uri:  file:///models/iris" in text
    assert "Status:\n  Conditions:\n" in text
    assert text.rstrip().endswith("Events:  <none>")


def test_delete_by_name_and_by_file(api, tmp_path):
    manifest = write(tmp_path, "gone.yaml", isvc_yaml("gone-a") + "---\n" + isvc_yaml("gone-b"))
    store(api, manifest.read_text())
    by_name = run(api, "delete", "isvc", "gone-a")
    assert by_name.stdout == 'inferenceservice.serving.kserve.io "gone-a" deleted\n'
    by_file = run(api, "delete", "-f", str(manifest))
    assert by_file.returncode == 1
    assert by_file.stdout == 'inferenceservice.serving.kserve.io "gone-b" deleted\n'
    assert 'inferenceservices.serving.kserve.io "gone-a" not found' in by_file.stderr
    assert run(api, "delete", "isvc", "gone-a", "--ignore-not-found").returncode == 0
    assert run(api, "wait", "--for=delete", "isvc/gone-a").stdout == (
        "inferenceservice.serving.kserve.io/gone-a condition met\n"
    )


def test_delete_all_with_a_name_deletes_nothing(api):
    store(api, isvc_yaml("kept-a") + "---\n" + isvc_yaml("kept-b"), namespace="kept")
    refused = run(api, "delete", "isvc", "kept-a", "--all", "-n", "kept")
    assert refused.returncode == 1
    assert refused.stderr == "modelplane delete: name cannot be provided when --all is specified\n"
    assert run(api, "get", "isvc", "-n", "kept", "-o", "name").stdout.splitlines() == [
        "inferenceservice.serving.kserve.io/kept-a",
        "inferenceservice.serving.kserve.io/kept-b",
    ]


def test_delete_dry_run_selector_and_every_namespace(api):
    labelled = isvc_yaml("sel-a").replace("  name: sel-a\n", "  name: sel-a\n  labels: {tier: gold}\n")
    store(api, labelled + "---\n" + isvc_yaml("sel-b"), namespace="sel-1")
    store(api, labelled, namespace="sel-2")
    rehearsal = run(api, "delete", "isvc", "sel-b", "-n", "sel-1", "--dry-run=server")
    assert rehearsal.stdout == 'inferenceservice.serving.kserve.io "sel-b" deleted (server dry run)\n'
    assert run(api, "get", "isvc", "sel-b", "-n", "sel-1").returncode == 0
    leading = run(api, "delete", "--dry-run", "isvc", "sel-b", "-n", "sel-1")  # the kind is not its value
    assert leading.stdout == rehearsal.stdout, leading.stderr
    assert run(api, "get", "isvc", "sel-b", "-n", "sel-1").returncode == 0
    by_label = run(api, "delete", "isvc", "-l", "tier=gold", "-A")
    assert by_label.returncode == 0, by_label.stderr
    assert by_label.stdout == 'inferenceservice.serving.kserve.io "sel-a" deleted\n' * 2
    assert run(api, "get", "isvc", "-A", "-l", "tier=gold", "-o", "name").stdout == ""
    everywhere = run(api, "delete", "isvc", "--all", "-A", "--dry-run")
    assert (
        'inferenceservice.serving.kserve.io "sel-b" deleted (server dry run)'
        in everywhere.stdout.splitlines()
    )
    assert (
        run(api, "delete", "isvc", "-l", "tier=gold").stderr == "No resources found in default namespace.\n"
    )


def test_wait_for_ready(api, tmp_path):
    store(api, isvc_yaml("slow"))
    env = {**os.environ, "MODELPLANE_API": api}
    waiter = subprocess.Popen(
        [sys.executable, "-m", "modelplane", "wait", "--for=condition=Ready", "isvc/slow", "--timeout=120s"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        patch_status(
            api, "slow", {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "False"}]}
        )
        patch_status(
            api, "slow", {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]}
        )
        out, err = waiter.communicate(timeout=120)
    finally:
        waiter.kill()
    assert waiter.returncode == 0, err
    assert out == "inferenceservice.serving.kserve.io/slow condition met\n"


def test_wait_ignores_a_ready_status_of_an_older_generation_and_times_out(api, tmp_path):
    store(api, isvc_yaml("stale"))
    patch_status(api, "stale", {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]})
    assert run(api, "wait", "--for=condition=Ready", "isvc", "stale").returncode == 0
    store(api, isvc_yaml("stale", "file:///models/other"))
    result = run(api, "wait", "--for=condition=Ready", "isvc", "stale", "--timeout=1s")
    assert result.returncode == 1
    assert result.stderr == (
        "error: timed out waiting for the condition on inferenceservices/stale: "
        "its status still describes generation 1, not the current 2\n"
    )


def test_a_wait_that_times_out_says_why(api):
    store(api, isvc_yaml("broken"))
    failed = {"type": "Ready", "status": "False", "reason": "ModelLoadFailed", "message": "no model file"}
    patch_status(api, "broken", {"observedGeneration": 1, "conditions": [failed]})
    result = run(api, "wait", "--for=condition=Ready", "isvc/broken", "--timeout=1s")
    assert result.returncode == 1
    assert result.stderr.endswith(
        "inferenceservices/broken: Ready is False (ModelLoadFailed): no model file\n"
    )


def test_a_control_plane_that_is_not_running(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    result = run(url, "get", "isvc")
    assert result.returncode == 1
    assert (
        result.stderr
        == f"modelplane get: cannot reach the control plane at {url} (is 'modelplane up' running?)\n"
    )
    flag = run(None, "apply", "--server", url, "-f", "-", stdin=textwrap.dedent(isvc_yaml("x")))
    assert flag.returncode == 1
    assert f"cannot reach the control plane at {url}" in flag.stderr


def test_get_watch_prints_each_change(api):
    store(api, isvc_yaml("followed"), namespace="followed")
    env = {**os.environ, "MODELPLANE_API": api}
    watcher = subprocess.Popen(
        [sys.executable, "-m", "modelplane", "get", "isvc", "-w", "-n", "followed"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert watcher.stdout.readline().split()[:3] == ["NAME", "URL", "READY"]
        assert watcher.stdout.readline().split()[0] == "followed"
        patch_status(
            api,
            "followed",
            {
                "url": "http://followed.followed.localhost",
                "conditions": [{"type": "Ready", "status": "True"}],
            },
            namespace="followed",
        )
        assert watcher.stdout.readline().split()[:3] == [
            "followed",
            "http://followed.followed.localhost",
            "True",
        ]
    finally:
        watcher.terminate()
        watcher.communicate(timeout=60)


def test_several_kind_slash_name_arguments_as_kubectl_takes_them(api):
    store(api, isvc_yaml("multi-a") + "---\n" + isvc_yaml("multi-b"))
    store(api, RUNTIME.format(name="multi-rt"))
    names = run(api, "get", "isvc/multi-a", "csr/multi-rt", "isvc/multi-b", "-o", "name").stdout.splitlines()
    assert names == [
        "inferenceservice.serving.kserve.io/multi-a",
        "inferenceservice.serving.kserve.io/multi-b",
        "clusterservingruntime.serving.kserve.io/multi-rt",
    ]
    described = run(api, "describe", "isvc/multi-a", "csr/multi-rt").stdout
    assert "Name:         multi-a" in described and "Name:         multi-rt" in described
    mixed = run(api, "get", "isvc/multi-a", "multi-b")
    assert mixed.returncode == 1 and "KIND/NAME" in mixed.stderr
    deleted = run(api, "delete", "isvc/multi-a", "csr/multi-rt", "isvc/multi-b").stdout.splitlines()
    assert deleted == [
        'inferenceservice.serving.kserve.io "multi-a" deleted',
        'inferenceservice.serving.kserve.io "multi-b" deleted',
        'clusterservingruntime.serving.kserve.io "multi-rt" deleted',
    ]


GRAPH = """\
apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata:
  name: {name}
spec:
  nodes:
    root:
      routerType: Sequence
      steps:
        - serviceName: {service}
"""


def test_get_all_lists_the_serving_kinds_as_kubectl_lists_a_category(api):
    namespace = "category-all"
    store(
        api,
        isvc_yaml("every-isvc") + "---\n" + GRAPH.format(name="every-ig", service="every-isvc"),
        namespace,
    )
    store(api, RUNTIME.format(name="every-csr"))  # a runtime is not in `all`
    listed = run(api, "get", "all", "-n", namespace)
    assert listed.returncode == 0, listed.stderr
    tables = listed.stdout.split("\n\n")
    assert [table.splitlines()[1].split()[0] for table in tables] == [
        "inferenceservice.serving.kserve.io/every-isvc",
        "inferencegraph.serving.kserve.io/every-ig",
    ]
    assert tables[0].splitlines()[0].split()[:3] == ["NAME", "URL", "READY"]
    names = run(api, "get", "all", "-n", namespace, "-o", "name").stdout.splitlines()
    assert names == [
        "inferenceservice.serving.kserve.io/every-isvc",
        "inferencegraph.serving.kserve.io/every-ig",
    ]
    document = yaml.safe_load(run(api, "get", "all", "-n", namespace, "-o", "yaml").stdout)
    assert [item["kind"] for item in document["items"]] == ["InferenceService", "InferenceGraph"]
    several = run(api, "get", "csr,isvc", "-n", namespace, "-o", "name").stdout.splitlines()
    assert "clusterservingruntime.serving.kserve.io/every-csr" in several
    assert several[-1] == "inferenceservice.serving.kserve.io/every-isvc"
    empty = run(api, "get", "all", "-n", "category-none")
    assert empty.returncode == 0 and empty.stdout == ""
    assert empty.stderr.strip() == "No resources found in category-none namespace."
    named = run(api, "get", "all", "every-isvc", "-n", namespace)
    assert named.returncode != 0 and "KIND/NAME" in named.stderr
    described = run(api, "describe", "all", "-n", namespace)
    assert described.returncode != 0 and "names several kinds" in described.stderr


def test_apply_warns_about_a_condition_go_reads_in_its_own_way(api):
    graph = """apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata:
  name: doubtful
spec:
  nodes:
    root:
      routerType: Switch
      steps:
      - serviceUrl: http://127.0.0.1:1/v1/models/m:predict
        condition: predictions[0]
"""
    result = run(api, "apply", "-f", "-", stdin=graph)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "inferencegraph.serving.kserve.io/doubtful created\n"
    assert result.stderr == (
        "Warning: <stdin>:11: spec.nodes.root.steps[0].condition: 'predictions[0]' is evaluated as Go's "
        "gjson evaluates it, but looks like a mistake: a '[' in a key must be escaped ('\\[') (an array "
        "index is written '.0') at position 12\n"
    )

    never = run(api, "apply", "-f", "-", stdin=graph.replace("predictions[0]", "'[@this].#(a==~yes)'"))
    assert never.returncode == 1
    assert "has a condition modelplane refuses: '[@this].#(a==~yes)': unknown '~' value" in never.stderr


def test_apply_warns_about_graph_fields_the_router_ignores(api):
    graph = """apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata:
  name: ignoring
spec:
  nodes:
    root:
      routerType: Ensemble
      steps:
      - serviceUrl: http://127.0.0.1:1/v1/models/m:predict
        condition: instances
    unused:
      routerType: Sequence
      steps:
      - serviceUrl: http://127.0.0.1:1/v1/models/m:predict
"""
    result = run(api, "apply", "-f", "-", stdin=graph)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "inferencegraph.serving.kserve.io/ignoring created\n"
    assert result.stderr == (
        "Warning: <stdin>:11: spec.nodes.root.steps[0].condition: ignored in an Ensemble node: an "
        "Ensemble runs every step\n"
        "Warning: <stdin>:12: spec.nodes.unused: no step leads to this node from root: it never runs\n"
    )


@pytest.mark.parametrize("args", [("get", "csr"), ("get", "csr", "-o", "yaml"), ("describe", "csr")])
def test_output_to_a_reader_that_left_ends_quietly(api, args):
    """`modelplane get ... | head`: the reader closes the pipe; no traceback, the shell's SIGPIPE code."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "modelplane", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "MODELPLANE_API": api},
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == 141


def test_logs_of_a_service_with_none_says_where_it_looked(tmp_path):
    result = run(None, "logs", "nothing-here", "--home", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr == (
        f'modelplane logs: no logs for the predictor of inferenceservice "nothing-here" in namespace "default" '
        f"under {tmp_path / 'logs'} (--home, or MODELPLANE_HOME, names the state folder of the modelplane up "
        "it ran in)\n"
    )


def test_logs_tail_and_kind_slash_name_as_kubectl_takes_them(tmp_path):
    predictor = tmp_path / "logs" / "default" / "iris" / "predictor"
    router = tmp_path / "logs" / "default" / "chain" / "router"
    for folder, text in ((predictor, "one\ntwo\nthree\n"), (router, "routed\n")):
        folder.mkdir(parents=True)
        (folder / f"{folder.parent.name}-{folder.name}-00001-0.log").write_text(text)
    home = ("--home", str(tmp_path))
    assert run(None, "logs", "iris", "--tail", "2", *home).stdout == "two\nthree\n"
    assert run(None, "logs", "iris", "--tail=0", *home).stdout == ""
    assert run(None, "logs", "isvc/iris", "--tail=-1", *home).stdout == "one\ntwo\nthree\n"
    assert run(None, "logs", "ig/chain", *home).stdout == "routed\n"
    refused = run(None, "logs", "pod/iris", *home)
    assert refused.returncode == 1
    assert refused.stderr == (
        'modelplane logs: pod/iris: logs are kept for InferenceServices and InferenceGraphs, not "pod"\n'
    )


def test_an_https_url_for_a_plain_http_control_plane_says_so(api):
    url = api.replace("http://", "https://")
    result = run(None, "get", "isvc", "--server", url)
    assert result.returncode == 1
    assert result.stderr == (
        f"modelplane get: TLS with the control plane at {url} failed: WRONG_VERSION_NUMBER "
        "(it answers plain HTTP: use an http:// URL)\n"
    )


def test_a_server_that_is_not_the_control_plane_is_named_as_such():
    """`--server` at the gateway (or anything else that answers HTTP but not the Kubernetes API)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Gateway(BaseHTTPRequestHandler):
        def do_GET(self):
            body = (
                b'{"error":"no InferenceService or InferenceGraph at host 127.0.0.1; known hosts: '
                + b"h, " * 200
            )
            self.send_response(404)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        result = run(None, "get", "isvc", "--server", url)
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"modelplane get: {url}/ answered HTTP 404 with no Kubernetes Status: is it modelplane's control-plane "
        'API (not the gateway)? It said: \'{"error":"no InferenceService'
    )
    assert len(result.stderr) < 300


def test_a_canary_percent_on_a_new_service_is_said_to_wait_for_a_later_change(api, tmp_path):
    canary = ISVC.format(name="first-canary", uri="file:///models/iris").replace(
        "  predictor:\n", "  predictor:\n    canaryTrafficPercent: 10\n"
    )
    path = write(tmp_path, "canary.yaml", canary)
    created = run(api, "apply", "-f", str(path))
    assert created.returncode == 0, created.stderr
    assert f"Warning: {path}:7: spec.predictor.canaryTrafficPercent: accepted but not acted on: a new " in (
        created.stderr
    )
    changed = run(api, "apply", "-f", str(write(tmp_path, "canary.yaml", canary.replace("iris", "iris-2"))))
    assert changed.returncode == 0 and "canaryTrafficPercent" not in changed.stderr


def test_get_output_jsonpath_and_custom_columns_as_kubectl_prints_them(api):
    store(api, isvc_yaml("jp-a") + "---\n" + isvc_yaml("jp-b"), namespace="jsonpath")
    patch_status(api, "jp-a", {"url": "http://jp-a.jsonpath.example.com"}, namespace="jsonpath")

    def get(*args: str) -> subprocess.CompletedProcess:
        return run(api, "get", "isvc", "-n", "jsonpath", *args)

    assert get("jp-a", "-o", "jsonpath={.status.url}").stdout == "http://jp-a.jsonpath.example.com"
    assert get("jp-b", "-o", "jsonpath={.status.url}").stdout == ""  # missing: nothing, as kubectl
    assert get("-o", "jsonpath={.items[*].metadata.name}").stdout == "jp-a jp-b"
    ranged = get(
        "-o",
        'jsonpath={range .items[*]}{.metadata.name}{"\\t"}{.spec.predictor.model.storageUri}{"\\n"}{end}',
    )
    assert ranged.stdout == "jp-a\tfile:///models/iris\njp-b\tfile:///models/iris\n"
    assert get("jp-a", "-o=jsonpath={.spec.predictor.model.modelFormat}").stdout == '{"name":"sklearn"}'
    assert get("-o", "custom-columns=NAME:.metadata.name,URL:.status.url").stdout.splitlines() == [
        "NAME   URL",
        "jp-a   http://jp-a.jsonpath.example.com",
        "jp-b   <none>",
    ]
    assert get("--no-headers", "-o", "custom-columns=NAME:.metadata.name").stdout == "jp-a\njp-b\n"
    assert [line.split()[0] for line in get("--no-headers").stdout.splitlines()] == ["jp-a", "jp-b"]
    broken = get("-o", "jsonpath={.status.url")
    assert broken.returncode == 1
    assert broken.stderr.splitlines()[-1] == (
        "modelplane get: error: argument -o/--output: error parsing jsonpath {.status.url, unclosed action"
    )


def test_options_may_come_between_and_after_names_as_kubectl_takes_them(api):
    store(api, isvc_yaml("mixed"), namespace="mixed")
    shown = run(api, "get", "isvc", "-n", "mixed", "mixed", "-o", "name")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == "inferenceservice.serving.kserve.io/mixed\n"
    assert run(api, "describe", "isvc", "mixed", "-n", "mixed").stdout.startswith("Name:")
    deleted = run(api, "delete", "isvc", "-n", "mixed", "mixed")
    assert deleted.stdout == 'inferenceservice.serving.kserve.io "mixed" deleted\n'
    assert run(api, "get").stderr.splitlines()[-1] == (
        "modelplane get: error: the following arguments are required: KIND"
    )


def test_create_and_replace_as_kubectl_does_them_all_or_nothing(api, tmp_path):
    pair = write(tmp_path, "pair.yaml", isvc_yaml("made-a") + "---\n" + isvc_yaml("made-b"))
    created = run(api, "create", "-f", str(pair), "-n", "made")
    assert created.returncode == 0, created.stderr
    assert created.stdout.splitlines() == [
        "inferenceservice.serving.kserve.io/made-a created",
        "inferenceservice.serving.kserve.io/made-b created",
    ]
    again = run(
        api, "create", "-f", "-", "-n", "made", stdin=isvc_yaml("made-c") + "---\n" + isvc_yaml("made-b")
    )
    assert again.returncode == 1
    assert again.stderr == (
        'modelplane create: <stdin>:10: inferenceservices.serving.kserve.io "made-b" already exists '
        "(nothing was created)\n"
    )
    assert run(api, "get", "isvc", "made-c", "-n", "made").returncode != 0

    changed = isvc_yaml("made-a", "file:///models/iris-v2") + "---\n" + isvc_yaml("made-d")
    missing = run(api, "replace", "-f", "-", "-n", "made", stdin=changed)
    assert missing.returncode == 1
    assert missing.stderr == (
        'modelplane replace: <stdin>:10: inferenceservices.serving.kserve.io "made-d" not found '
        "(nothing was replaced)\n"
    )
    replaced = run(api, "replace", "-f", "-", "-n", "made", stdin=changed.split("---\n")[0])
    assert replaced.stdout == "inferenceservice.serving.kserve.io/made-a replaced\n"
    stored = json.loads(run(api, "get", "isvc", "made-a", "-n", "made", "-o", "json").stdout)
    assert stored["spec"]["predictor"]["model"]["storageUri"] == "file:///models/iris-v2"


def test_apply_reads_a_manifest_from_a_url_as_kubectl_does(api, tmp_path):
    import functools
    import http.server
    import threading

    write(tmp_path, "from-url.yaml", isvc_yaml("from-url"))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        applied = run(api, "apply", "-f", f"{base}/from-url.yaml")
        assert applied.returncode == 0, applied.stderr
        assert applied.stdout == "inferenceservice.serving.kserve.io/from-url created\n"
        missing = run(api, "apply", "-f", f"{base}/missing.yaml")
        assert missing.returncode == 1
        assert missing.stderr == (
            f'modelplane apply: unable to read URL "{base}/missing.yaml", server reported 404 File not found\n'
        )
    finally:
        server.shutdown()
        server.server_close()


def test_get_and_describe_show_what_is_found_then_say_what_is_not(api):
    store(api, isvc_yaml("found"), namespace="partly")
    shown = run(api, "get", "isvc", "missing", "found", "-n", "partly", "-o", "name")
    assert shown.returncode == 1
    assert shown.stdout == "inferenceservice.serving.kserve.io/found\n"
    assert shown.stderr == 'modelplane get: inferenceservices.serving.kserve.io "missing" not found\n'
    alone = run(api, "get", "isvc", "missing", "-n", "partly", "-o", "yaml")
    assert (alone.returncode, alone.stdout) == (1, "")
    ignored = run(api, "get", "isvc", "missing", "found", "-n", "partly", "-o", "name", "--ignore-not-found")
    assert (ignored.returncode, ignored.stdout, ignored.stderr) == (0, shown.stdout, "")
    nothing = run(api, "get", "isvc", "-n", "nowhere", "--ignore-not-found")
    assert (nothing.returncode, nothing.stdout, nothing.stderr) == (0, "", "")
    described = run(api, "describe", "isvc", "found", "missing", "-n", "partly")
    assert described.returncode == 1
    assert described.stdout.startswith("Name:         found\n")
    assert (
        described.stderr == 'modelplane describe: inferenceservices.serving.kserve.io "missing" not found\n'
    )


def test_a_namespace_in_a_bundle_is_passed_over_with_a_warning(api):
    bundle = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bundled\n---\n" + isvc_yaml(
        "bundled"
    ).replace("  name: bundled\n", "  name: bundled\n  namespace: bundled\n")
    applied = run(api, "apply", "-f", "-", stdin=bundle)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout == "inferenceservice.serving.kserve.io/bundled created\n"
    assert applied.stderr == (
        'Warning: <stdin>:1: namespace "bundled" passed over by apply: namespaces are not objects here, '
        "every namespace exists\n"
    )
    deleted = run(api, "delete", "-f", "-", stdin=bundle)
    assert deleted.stdout == 'inferenceservice.serving.kserve.io "bundled" deleted\n'


def test_describe_every_namespace(api):
    store(api, isvc_yaml("described"), namespace="described-1")
    store(api, isvc_yaml("described"), namespace="described-2")
    described = run(api, "describe", "isvc", "-A", "-l", "nothing-else!=here")
    assert described.returncode == 0, described.stderr
    namespaces = [line.split()[1] for line in described.stdout.splitlines() if line.startswith("Namespace:")]
    assert {"described-1", "described-2"} <= set(namespaces)
    by_name = run(api, "describe", "isvc", "described", "-A")
    assert by_name.returncode == 1
    assert (
        by_name.stderr
        == "modelplane describe: a resource cannot be retrieved by name across all namespaces\n"
    )


def test_get_sort_by_and_show_labels_as_kubectl_takes_them(api):
    labelled = isvc_yaml("iris-10").replace(
        "  name: iris-10\n", "  name: iris-10\n  labels:\n    tier: gold\n    app: iris\n"
    )
    assert "tier: gold" in labelled
    store(api, isvc_yaml("iris-2") + "---\n" + labelled + "---\n" + isvc_yaml("a-9"), namespace="sorting")
    patch_status(api, "iris-2", {"url": "http://b.example.com"}, namespace="sorting")
    patch_status(api, "iris-10", {"url": "http://a.example.com"}, namespace="sorting")

    def names(*args: str) -> list[str]:
        shown = run(api, "get", "isvc", "-n", "sorting", "-o", "name", *args)
        assert shown.returncode == 0, shown.stderr
        return [line.rpartition("/")[2] for line in shown.stdout.splitlines()]

    assert names("--sort-by", ".metadata.name") == ["a-9", "iris-2", "iris-10"]  # natural order
    assert names("--sort-by={.status.url}") == ["a-9", "iris-10", "iris-2"]  # without it: first
    listed = run(api, "get", "isvc", "-n", "sorting", "--sort-by", "status.url", "-o", "json")
    assert [item["metadata"]["name"] for item in json.loads(listed.stdout)["items"]] == [
        "a-9",
        "iris-10",
        "iris-2",
    ]
    nowhere = run(api, "get", "isvc", "-n", "sorting", "--sort-by", ".spec.nothing")
    assert nowhere.returncode == 1
    assert nowhere.stderr.strip() == (
        "modelplane get: couldn't find any field with path '.spec.nothing' in the list of objects"
    )

    table = run(api, "get", "isvc", "-n", "sorting", "--show-labels", "--sort-by", ".metadata.name")
    lines = table.stdout.splitlines()
    assert lines[0].split()[0] == "NAME" and lines[0].split()[-1] == "LABELS"
    assert [line.split()[-1] for line in lines[1:]] == ["<none>", "<none>", "app=iris,tier=gold"]
    refused = run(api, "get", "isvc", "-n", "sorting", "--show-labels", "-o", "yaml")
    assert refused.returncode == 1
    assert "--show-labels adds a column to the table" in refused.stderr


def test_create_completes_a_generate_name_which_apply_refuses_as_kubectl_does(api, tmp_path):
    manifest = write(
        tmp_path,
        "gen.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: gen-\ndata:\n  a: b\n",
    )
    for _ in range(2):
        created = run(api, "create", "-f", str(manifest), "-n", "generated")
        assert created.returncode == 0, created.stderr
        assert re.fullmatch(r"configmap/gen-[a-z0-9]{5} created\n", created.stdout), created.stdout
    listed = run(api, "get", "configmaps", "-n", "generated", "-o", "name")
    assert len(listed.stdout.split()) == 2 and all(
        n.startswith("configmap/gen-") for n in listed.stdout.split()
    )
    refused = run(api, "apply", "-f", str(manifest), "-n", "generated")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"modelplane apply: {manifest}:1: from gen-: cannot use generate name with apply "
        "(only create makes a name from it)"
    )


def test_wait_for_each_resource_a_selector_or_all_picks_as_kubectl_does(api):
    gold = isvc_yaml("gold-a").replace("  name: gold-a\n", "  name: gold-a\n  labels: {tier: gold}\n")
    store(api, gold + "---\n" + gold.replace("gold-a", "gold-b") + "---\n" + isvc_yaml("plain"), "waiting")
    ready = {"observedGeneration": 1, "conditions": [{"type": "Ready", "status": "True"}]}
    for name in ("gold-a", "gold-b"):
        patch_status(api, name, ready, namespace="waiting")

    def wait(*args: str) -> subprocess.CompletedProcess:
        return run(api, "wait", "--for=condition=Ready", "isvc", "-n", "waiting", "--timeout=2s", *args)

    selected = wait("-l", "tier=gold")
    assert selected.returncode == 0, selected.stderr
    assert selected.stdout.splitlines() == [
        "inferenceservice.serving.kserve.io/gold-a condition met",
        "inferenceservice.serving.kserve.io/gold-b condition met",
    ]
    every = wait("--all")
    assert every.returncode == 1
    assert "timed out waiting for the condition on inferenceservices/plain" in every.stderr
    assert (wait("-l", "tier=none").returncode, wait("-l", "tier=none").stderr) == (
        1,
        "error: no matching resources found\n",
    )
    named = wait("gold-a", "-l", "tier=gold")
    assert named.returncode == 1
    assert "name cannot be provided when a selector is specified" in named.stderr


def test_get_output_go_template_as_kubectl_prints_it(api, tmp_path):
    store(api, isvc_yaml("gt-a") + "---\n" + isvc_yaml("gt-b"), namespace="gotemplate")

    def get(*args: str) -> subprocess.CompletedProcess:
        return run(api, "get", "isvc", "-n", "gotemplate", *args)

    ranged = get(
        "-o", 'go-template={{range .items}}{{printf "%-6s|" .metadata.name}}{{.status.url}}{{"\\n"}}{{end}}'
    )
    assert ranged.stdout == "gt-a  |<no value>\ngt-b  |<no value>\n"
    one = get(
        "gt-a", "-o", "template={{if eq .metadata.name `gt-a`}}{{.metadata.generation}} {{len .spec}}{{end}}"
    )
    assert one.stdout == "1 1"
    # kubectl 1.32 reads a whole number as an int64, which compares with a template's integers
    typed = get("gt-a", "-o", 'go-template={{printf "%T %d" .metadata.generation .metadata.generation}}')
    assert typed.stdout == "int64 1"
    compared = get(
        "-o", "go-template={{range .items}}{{if ge .metadata.generation 1}}{{.metadata.name}} {{end}}{{end}}"
    )
    assert (compared.returncode, compared.stdout) == (0, "gt-a gt-b "), compared.stderr
    path = write(tmp_path, "names.tmpl", "{{range $i, $s := .items}}{{$i}}:{{$s.metadata.name}}\n{{end}}")
    assert get("-o", f"go-template-file={path}").stdout == "0:gt-a\n1:gt-b\n"
    broken = get("-o", "go-template={{.metadata.name")
    assert broken.returncode == 1
    assert broken.stderr.splitlines()[-1] == (
        "modelplane get: error: argument -o/--output: error parsing template {{.metadata.name, "
        "template: output:1: unclosed action"
    )
    failed = get("gt-a", "-o", "go-template={{.metadata.name.first}}")
    assert (failed.returncode, failed.stdout) == (1, "")
    assert failed.stderr == (
        'modelplane get: error executing template "{{.metadata.name.first}}": template: output:1:11: executing '
        '"output" at <.metadata.name.first>: can\'t evaluate field first in type interface {}\n'
    )
    unread = get("-o", f"go-template-file={tmp_path / 'none.tmpl'}")
    assert unread.returncode == 1 and "error reading --template" in unread.stderr


def test_go_template_numbers_are_typed_as_kubectl_reads_them(capsys):
    from modelplane.cli.output import print_structured

    status = {"a": 1, "b": 1.0, "c": 0.5, "d": 1e300, "e": 12345678901234567890, "f": 2**63 - 1, "g": -0.0}
    template = '{{range $k, $v := .}}{{$k}}={{printf "%T %v" $v $v}};{{end}}'
    print_structured(status, f"go-template={template}")
    # as kubectl 1.32 prints the same status read from a server
    assert capsys.readouterr().out == (
        "a=int64 1;b=int64 1;c=float64 0.5;d=float64 1e+300;e=float64 1.2345678901234567e+19;"
        "f=int64 9223372036854775807;g=int64 0;"
    )


def test_get_field_selector_as_kubectl_takes_it(api):
    store(api, isvc_yaml("fs-a") + "---\n" + isvc_yaml("fs-b"), namespace="fieldsel")

    def names(*args: str) -> str:
        shown = run(api, "get", "isvc", "-o", "name", *args)
        assert shown.returncode == 0, shown.stderr
        return shown.stdout.replace("inferenceservice.serving.kserve.io/", "")

    assert names("-n", "fieldsel", "--field-selector", "metadata.name=fs-a") == "fs-a\n"
    assert names("-n", "fieldsel", "--field-selector", "metadata.name!=fs-a") == "fs-b\n"
    assert names("-A", "--field-selector=metadata.namespace==fieldsel,metadata.name!=fs-b") == "fs-a\n"
    refused = run(api, "get", "isvc", "-n", "fieldsel", "--field-selector", "status.url=x")
    assert (refused.returncode, refused.stderr) == (
        1,
        "modelplane get: field label not supported: status.url\n",
    )
    named = run(api, "get", "isvc", "fs-a", "-n", "fieldsel", "--field-selector", "metadata.name=fs-a")
    assert named.stderr == "modelplane get: name cannot be provided when a selector is specified\n"


def _replica_log(tmp_path, text: str) -> None:
    folder = tmp_path / "logs" / "default" / "iris" / "predictor"
    folder.mkdir(parents=True)
    (folder / "iris-predictor-00001-0.log").write_text(text)


def test_logs_since_and_previous_as_kubectl_takes_them(tmp_path):
    from datetime import UTC, datetime, timedelta

    def at(ago: timedelta) -> str:
        return (datetime.now(UTC) - ago).strftime("%Y-%m-%dT%H:%M:%SZ")

    hour_ago, minute_ago = at(timedelta(hours=1)), at(timedelta(minutes=1))
    first_run = (
        f"[modelplane {hour_ago}] iris-predictor-00001: starting: serve\n"
        "first run\n"
        f"[modelplane {hour_ago}] iris-predictor-00001: exited with code 1\n"
    )
    second_run = f"[modelplane {minute_ago}] iris-predictor-00001: starting: serve\nsecond run\n"
    _replica_log(tmp_path, first_run + second_run)
    home = ("--home", str(tmp_path))
    assert run(None, "logs", "iris", "--since=5m", *home).stdout == second_run
    assert run(None, "logs", "iris", "--since", "2h", *home).stdout == first_run + second_run
    assert run(None, "logs", "iris", f"--since-time={at(timedelta(minutes=30))}", *home).stdout == second_run
    assert run(None, "logs", "iris", "-p", *home).stdout == first_run
    assert run(None, "logs", "iris", "--previous", "--tail=1", *home).stdout == first_run.splitlines(True)[-1]
    both = run(None, "logs", "iris", "--since=5m", "--since-time=2025-01-01T00:00:00Z", *home)
    assert (both.returncode, both.stderr) == (
        1,
        "modelplane logs: at most one of `sinceTime` or `sinceSeconds` may be specified\n",
    )
    bad = run(None, "logs", "iris", "--since=5x", *home)
    assert bad.returncode == 1 and 'time: invalid duration "5x"' in bad.stderr


def test_logs_previous_of_a_replica_that_ran_once_is_kubectls_not_found(tmp_path):
    _replica_log(
        tmp_path, "[modelplane 2025-01-01T00:00:00Z] iris-predictor-00001: starting: serve\nonly run\n"
    )
    refused = run(None, "logs", "iris", "-p", "--home", str(tmp_path))
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == (
        'modelplane logs: previous terminated container "kserve-container" in pod "iris-predictor-00001-0" '
        "not found\n"
    )
