"""`deploy/`: what `kubectl apply -k deploy/` installs renders, and the cluster would take every object
of it; the operator runs highly available, may touch every kind of object it makes, and installs the
built-in runtimes as modelplane ships them."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from modelplane.api import builtin_cluster_runtimes, builtin_runtime_names
from modelplane.api.kinds import CLUSTER_SERVING_RUNTIME
from modelplane.control.admission import admit_with_platform_checks
from modelplane.kube.runtimes import runtimes_yaml
from modelplane.kube.settings import DEFAULT_IMAGE, KubeSettings, full_variant_of

from .helpers import REPO, SOURCES, render_file, render_text
from .schemas import problems
from .test_render_schemas import SETTINGS

DEPLOY = REPO / "deploy"
# Where each kind the operator makes lives in the API: (group, resource).
RESOURCES = {
    "Deployment": ("apps", "deployments"),
    "Service": ("", "services"),
    "ConfigMap": ("", "configmaps"),
    "HorizontalPodAutoscaler": ("autoscaling", "horizontalpodautoscalers"),
    "ScaledObject": ("keda.sh", "scaledobjects"),
    "Ingress": ("networking.k8s.io", "ingresses"),
    "HTTPRoute": ("gateway.networking.k8s.io", "httproutes"),
    "Service.serving.knative.dev": ("serving.knative.dev", "services"),
}
MANAGE = {"get", "list", "watch", "create", "update", "patch", "delete"}


@pytest.fixture(scope="module")
def installed() -> list[dict]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    result = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return [o for o in yaml.safe_load_all(result.stdout) if o]


def test_every_installed_object_is_valid(installed):
    found = [problem for obj in installed for problem in problems(obj)]
    assert not found, "\n".join(found)
    kinds = {obj["kind"] for obj in installed}
    assert {"CustomResourceDefinition", "Deployment", "ClusterRole", "ClusterServingRuntime"} <= kinds


def test_the_crds_are_kserves(installed):
    crds = {obj["metadata"]["name"] for obj in installed if obj["kind"] == "CustomResourceDefinition"}
    assert crds == {
        "inferenceservices.serving.kserve.io",
        "inferencegraphs.serving.kserve.io",
        "servingruntimes.serving.kserve.io",
        "clusterservingruntimes.serving.kserve.io",
        "trainedmodels.serving.kserve.io",
    }


def test_the_operator_runs_twice_as_its_service_account(installed):
    operator = next(o for o in installed if o["kind"] == "Deployment")
    assert operator["spec"]["replicas"] == 2
    pod = operator["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "modelplane-operator"
    container = pod["containers"][0]
    assert container["image"] == DEFAULT_IMAGE
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["MODELPLANE_IMAGE"] == container["image"]
    assert any(o["kind"] == "PodDisruptionBudget" for o in installed)
    accounts = [o for o in installed if o["kind"] == "ServiceAccount"]
    assert [a["metadata"]["name"] for a in accounts] == ["modelplane-operator"]


def test_the_operator_may_manage_every_kind_it_makes(installed):
    role = next(o for o in installed if o["kind"] == "ClusterRole")
    allowed: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                allowed.setdefault((group, resource), set()).update(rule["verbs"])
    made = set()
    for settings in SETTINGS.values():
        for source in SOURCES:
            for obj in render_file(source, settings).objects:
                knative = obj["apiVersion"].startswith("serving.knative.dev/")
                made.add("Service.serving.knative.dev" if knative else obj["kind"])
    for kind in made:
        assert allowed.get(RESOURCES[kind], set()) >= MANAGE, kind
    for plural in ("inferenceservices", "inferencegraphs", "trainedmodels"):
        assert {"get", "list", "watch", "update", "patch"} <= allowed[("serving.kserve.io", plural)]
        assert {"update", "patch"} <= allowed[("serving.kserve.io", f"{plural}/status")]
    for plural in ("servingruntimes", "clusterservingruntimes"):
        assert {"get", "list", "watch"} <= allowed[("serving.kserve.io", plural)]
    lease_role = next(o for o in installed if o["kind"] == "Role")
    assert lease_role["rules"][0]["resources"] == ["leases"]
    assert ("coordination.k8s.io", "leases") not in allowed  # only in its own namespace


def test_the_built_in_runtimes_are_installed_with_the_image(installed):
    runtimes = [o for o in installed if o["kind"] == CLUSTER_SERVING_RUNTIME.kind]
    # The multi-model ones are ModelMesh's, which `modelplane up` serves and the operator does not.
    single_model = [
        r["metadata"]["name"] for r in builtin_cluster_runtimes() if not r["spec"].get("multiModel")
    ]
    assert sorted(r["metadata"]["name"] for r in runtimes) == sorted(single_model)
    assert "triton-2.x" in builtin_runtime_names() and "triton-2.x" not in single_model
    images = {r["metadata"]["name"]: r["spec"]["containers"][0]["image"] for r in runtimes}
    assert images["kserve-sklearnserver"] == DEFAULT_IMAGE
    assert images["kserve-torchserve"] == full_variant_of(DEFAULT_IMAGE)
    assert images["modelplane-tensorflowserver"] == full_variant_of(DEFAULT_IMAGE)
    assert images["modelplane-mlflowserver"] == full_variant_of(DEFAULT_IMAGE)
    assert images["kserve-paddleserver"] == full_variant_of(DEFAULT_IMAGE)
    assert images["kserve-huggingfaceserver"] == full_variant_of(DEFAULT_IMAGE)  # transformers and torch
    assert images["kserve-pmmlserver"] == full_variant_of(DEFAULT_IMAGE)  # jpmml-evaluator and a JRE
    for runtime in runtimes:
        admit_with_platform_checks(runtime)


def test_the_runtimes_file_is_up_to_date():
    """deploy/runtimes is made from modelplane/api/runtimes: `python3 scripts/render_deploy_runtimes.py`."""
    written = (DEPLOY / "runtimes" / "builtin-runtimes.yaml").read_text()
    assert written == runtimes_yaml(KubeSettings())


def test_rendered_runtimes_serve_the_examples(installed):
    """With the installed runtimes in place of the built-in ones, an example renders the same."""
    runtimes = yaml.safe_dump_all([o for o in installed if o["kind"] == CLUSTER_SERVING_RUNTIME.kind])
    example = (REPO / "examples" / "sklearn-iris.yaml").read_text()
    assert (
        render_text(runtimes + "---\n" + example).objects
        == render_file(REPO / "examples" / "sklearn-iris.yaml", KubeSettings()).objects
    )


def _rules(role: dict) -> dict[tuple[str, str], set[str]]:
    allowed: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                allowed.setdefault((group, resource), set()).update(rule["verbs"])
    return allowed


def test_the_operator_may_do_what_it_does(installed):
    """What `modelplane.kube.operator` watches, makes, deletes and writes, its Events and its Lease."""
    from modelplane.kube.operator import resources as r
    from modelplane.kube.operator.controller import Controller

    cluster_role = _rules(next(o for o in installed if o["kind"] == "ClusterRole"))
    lease_role = _rules(next(o for o in installed if o["kind"] == "Role"))

    def where(resource: type) -> tuple[str, str]:
        info = resource._api_info
        return info.resource.group, info.plural

    watched = (r.INFERENCE_SERVICES, r.INFERENCE_GRAPHS, r.TRAINED_MODELS, r.SERVING_RUNTIMES,
               r.CLUSTER_SERVING_RUNTIMES, r.PODS, r.DEPLOYMENTS, r.KNATIVE_SERVICES, r.HTTP_ROUTES, r.INGRESSES,
               r.SERVICE_ACCOUNTS)  # fmt: skip
    assert Controller  # the watches listed above are the controller's (controller.py)
    for resource in watched:
        assert {"get", "list", "watch"} <= cluster_role[where(resource)], where(resource)
    for resource in r.MADE:
        assert cluster_role[where(resource)] >= MANAGE, where(resource)
    assert "delete" in cluster_role[where(r.TRAINED_MODELS)]  # a TrainedModel of no service
    for plural in ("inferenceservices", "inferencegraphs", "trainedmodels"):
        assert "update" in cluster_role[("serving.kserve.io", f"{plural}/status")]  # status is replaced
        assert "patch" in cluster_role[("serving.kserve.io", plural)]  # finalizers and labels
    assert "create" in cluster_role[("", "events")]
    # the credential builder's reads (services.py's _accounts), and no more of Secrets than a get
    assert cluster_role[where(r.SECRETS)] == {"get"}
    assert {"get", "create", "update"} <= lease_role[("coordination.k8s.io", "leases")]


def test_the_webhook_reaches_the_operator_pods_with_their_certificate(installed):
    from modelplane.cli.operator import register  # noqa: F401 - the defaults below are the command's
    from modelplane.kube.operator.runner import WebhookSettings
    from modelplane.kube.operator.webhook import VALIDATE_PATH

    operator = next(o for o in installed if o["kind"] == "Deployment")
    pod = operator["spec"]["template"]["spec"]
    container = pod["containers"][0]
    port = next(p for p in container["ports"] if p["name"] == "webhook")
    assert port["containerPort"] == WebhookSettings().port
    mount = next(m for m in container["volumeMounts"] if m["name"] == "webhook-cert")
    assert mount["mountPath"] == str(WebhookSettings().cert_dir)
    volume = next(v for v in pod["volumes"] if v["name"] == "webhook-cert")
    service = next(
        o for o in installed if o["kind"] == "Service" and o["metadata"]["name"] == "modelplane-webhook"
    )
    assert service["spec"]["selector"].items() <= operator["spec"]["template"]["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == "webhook"
    configuration = next(o for o in installed if o["kind"] == "ValidatingWebhookConfiguration")
    webhook = configuration["webhooks"][0]
    reference = webhook["clientConfig"]["service"]
    assert (reference["name"], reference["namespace"]) == (
        service["metadata"]["name"],
        service["metadata"]["namespace"],
    )
    assert reference["path"] == VALIDATE_PATH
    assert set(webhook["rules"][0]["resources"]) == {
        "inferenceservices", "inferencegraphs", "trainedmodels", "servingruntimes", "clusterservingruntimes"
    }  # fmt: skip
    certificate = yaml.safe_load_all((DEPLOY / "cert-manager" / "certificate.yaml").read_text())
    certificate = next(o for o in certificate if o["kind"] == "Certificate")
    assert certificate["spec"]["secretName"] == volume["secret"]["secretName"]
    ns, name = configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].split("/")
    assert (ns, name) == (certificate["metadata"]["namespace"], certificate["metadata"]["name"])
    assert f"{service['metadata']['name']}.{ns}.svc" in certificate["spec"]["dnsNames"]
