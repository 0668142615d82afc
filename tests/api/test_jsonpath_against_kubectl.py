"""modelplane's JSONPath (`get -o jsonpath=`) against kubectl's own, on an object kubectl makes offline
(`kubectl create deployment --dry-run=client`): the same template prints the same text, or both refuse."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from modelplane.api.jsonpath import ExecutionError, TemplateError, parse_template, render_template

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH")

DEPLOYMENT = [
    "kubectl",
    "create",
    "deployment",
    "d",
    "--image=r/i1",
    "--image=q/i2",
    "--port=80",
    "--dry-run=client",
]
CONTAINERS = ".spec.template.spec.containers"
TEMPLATES = [
    f"{{{CONTAINERS}[*].name}}",
    f'{{range {CONTAINERS}[*]}}{{.name}}{{"\\t"}}{{.image}}{{"\\n"}}{{end}}',
    f"{{{CONTAINERS}[?(@.ports)].name}}",
    f'{{{CONTAINERS}[?(@.name=="i2")].image}}',
    f"{{{CONTAINERS}[?(@.name!='i2')].image}}",
    "{.metadata.labels.app}",
    f"{{{CONTAINERS}[-1:].name}}",
    f"{{{CONTAINERS}[-1].name}}",
    f"{{{CONTAINERS}[0:2:1].name}}",
    f"{{{CONTAINERS}[1:].name}}",
    f"{{{CONTAINERS}[:1].name}}",
    # (Not `{..name}`: kubectl walks a map's keys in Go's random order, so the names come in any order.)
    "{..containerPort}",
    "{.spec..image}",
    f"{{{CONTAINERS}[*].ports[*].containerPort}}",
    f'{{range {CONTAINERS}[*]}}{{range .ports[*]}}{{.containerPort}}{{","}}{{end}}{{";"}}{{end}}',
    "{$.kind}",
    "{.metadata.labels.*}",
    f"{{{CONTAINERS}[*].ports[*]}}",
    f"{{{CONTAINERS}[0].ports[0].containerPort}}{{'-'}}{{{CONTAINERS}[1].name}}",
    "{range .metadata.labels}{@}{end}",
    f"{{range {CONTAINERS}[*]}}{{@.name}}{{end}}",
    "{.metadata.name}{.metadata.namespace}",
    '{true} {"lit"} {1}',
    "{.metadata}",
    "{.status}",
    "{.nothing}",
    # Unions: the first part from every item, then the second.
    f"{{{CONTAINERS}[*]['name','image']}}",
    f"{{{CONTAINERS}[1,0].name}}",
    f"{{{CONTAINERS}[0:1,1].image}}",
    "{.metadata['name','labels']}",
    f"{{range {CONTAINERS}[*]}}{{['name', 'image']}}{{';'}}{{end}}",
    "{.metadata['nope','name']}",
    f'{{{CONTAINERS}[?(@..image=="r/i1")].name}}',
    f"{{{CONTAINERS}[?(@..containerPort)].name}}",
    # Both refuse.
    f"{{{CONTAINERS}[5].name}}",
    f"{{{CONTAINERS}[0,5].name}}",
    f"{{{CONTAINERS}[*].name[0]}}",
    f"{{{CONTAINERS}[*][0,1]}}",
    f"{{range {CONTAINERS}[*]}}{{.name}}{{end",
    f"{{{CONTAINERS}[?(!@.env)].name}}",
    f'{{{CONTAINERS}[?(@.image=~"i.*")].name}}',
    "{.metadata.name}{end}",
]


def kubectl_prints(template: str) -> str | None:
    """What kubectl prints, or None when it refuses the template."""
    result = subprocess.run(
        [*DEPLOYMENT, "-o", f"jsonpath={template}"], capture_output=True, text=True, timeout=60
    )
    return result.stdout if result.returncode == 0 else None


def modelplane_prints(template: str, data: dict) -> str | None:
    try:
        return render_template(parse_template(template), data)
    except (TemplateError, ExecutionError):
        return None


def test_templates_print_what_kubectl_prints():
    data = json.loads(
        subprocess.run([*DEPLOYMENT, "-o", "json"], capture_output=True, text=True, check=True).stdout
    )
    differences = []
    for template in TEMPLATES:
        expected, printed = kubectl_prints(template), modelplane_prints(template, data)
        if printed != expected:
            differences.append(f"{template}\n  kubectl:    {expected!r}\n  modelplane: {printed!r}")
    assert not differences, "\n".join(differences)
