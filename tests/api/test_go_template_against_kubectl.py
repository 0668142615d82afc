"""modelplane's Go templates against kubectl's own: random templates that parse more often than not,
each printed by `kubectl create configmap --dry-run=client -o go-template` and by modelplane over the
same object. The output, or the error, must be the same, word for word. Two kinds: pipelines of
literals, fields, variables, functions and parenthesized pipelines in actions, `if`, `range` and
`with`; and printf's verbs and flags, numbers of every syntax, variables, `else if`, `define`,
`template`, `block`, `break` and `continue`."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess

import pytest

from modelplane.api.go_template import KUBECTL_FUNCTIONS, GoTemplateError, Template

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not on PATH")

CONFIG_MAP = [
    "kubectl",
    "create",
    "configmap",
    "foo",
    "--from-literal=a=b",
    "--from-literal=c=d",
    "--dry-run=client",
]
FUNCTIONS = ["base64decode", "exists", "len", "index", "printf", "print", "println", "not", "and", "or", "eq",
             "ne", "lt", "slice", "html", "js", "urlquery"]  # fmt: skip
LITERALS = ["1", "-2", "0", "1.5", "'a'", '"s"', "`r`", "true", "nil", "0x10", '"YQ=="', '"%v-%d"']
FIELDS = [".", ".data", ".metadata.name", ".data.a", ".missing", ".metadata.missing.x", ".kind",
          ".metadata.creationTimestamp"]  # fmt: skip
VARIABLES = ["$", "$.data", "$.metadata.name"]
TEMPLATES = 150


class RandomPipelines:
    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def template(self) -> str:
        actions = []
        for _ in range(self.random.choice([1, 2])):
            pipeline, kind = self.pipeline(), self.random.random()
            if kind < 0.6:
                actions.append("{{" + pipeline + "}}")
            elif kind < 0.75:
                actions.append("{{if " + pipeline + "}}y{{else}}n{{end}}")
            elif kind < 0.9:
                actions.append("{{range " + pipeline + "}}[{{.}}]{{end}}")
            else:
                actions.append("{{with " + pipeline + "}}<{{.}}>{{end}}")
        return ",".join(actions)

    def pipeline(self, depth: int = 0) -> str:
        return " | ".join(self.command(depth) for _ in range(self.random.choice([1, 1, 2])))

    def command(self, depth: int) -> str:
        return " ".join(self.operand(depth) for _ in range(self.random.choice([1, 1, 2, 3])))

    def operand(self, depth: int) -> str:
        kind = self.random.random()
        if kind < 0.15:
            return self.random.choice(LITERALS)
        if kind < 0.35:
            return self.random.choice(FIELDS)
        if kind < 0.45:
            return self.random.choice(VARIABLES)
        if kind < 0.6 and depth < 3:
            return f"({self.pipeline(depth + 1)}){self.random.choice(['', '', '.a', '.name'])}"
        return self.random.choice(FUNCTIONS)


# %p is left out: Go prints an address.
VERBS = [
    "%v",
    "%d",
    "%s",
    "%q",
    "%x",
    "%X",
    "%5d",
    "%-5s|",
    "%.2f",
    "%e",
    "%g",
    "%t",
    "%c",
    "%U",
    "%o",
    "%b",
    "%#v",
    "%+v",
    "%T",
    "%08.3f",
    "%%",
    "%!",
    "%[2]v",
    "%*d",
    "%.*f",
    "% x",
    "%#x",
    "%+d",
    "%10.4v",
]
VALUES = ["1", "-2", "0", "1.5", "'a'", '"s"', "`r`", "true", "false", "nil", "0x10", "1e3", "-0.0", ".data",
          ".metadata", ".data.a", ".data.n", ".missing", ".metadata.creationTimestamp", "$", "(len .data)",
          '(index .data "a")', '(slice "abcdef" 1 3)', "(eq 1 1)", "(lt 1 2)", "(print 1 2)", "0b101", "0o17",
          "1_000", "'\\n'", '"\\u00e9"', "-9223372036854775808", "9223372036854775807", "18446744073709551615",
          "18446744073709551616", "0999", "1e400"]  # fmt: skip


class RandomFormatting:
    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def template(self) -> str:
        return "".join(self.action() for _ in range(self.random.choice([1, 2])))

    def value(self) -> str:
        return self.random.choice(VALUES)

    def action(self) -> str:
        kind, value = self.random.random(), self.value()
        if kind < 0.35:
            verbs = "".join(self.random.choice(VERBS) for _ in range(self.random.choice([1, 2, 3])))
            values = " ".join(self.value() for _ in range(self.random.choice([0, 1, 2, 3])))
            return f'{{{{printf "{verbs}" {values}}}}}'
        if kind < 0.45:
            comparison = self.random.choice(["eq", "ne", "lt", "le", "gt", "ge"])
            return f"{{{{{comparison} {value} {self.value()}}}}}"
        if kind < 0.55:
            return f"{{{{$x := {value}}}}}{{{{$x}}}}{{{{$x = {self.value()}}}}}{{{{$x}}}}"
        if kind < 0.65:
            return f"{{{{range $i, $e := {value}}}}}{{{{$i}}}}={{{{$e}}}};{{{{else}}}}none{{{{end}}}}"
        if kind < 0.72:
            return f"{{{{if {value}}}}}a{{{{else if {self.value()}}}}}b{{{{else}}}}c{{{{end}}}}"
        if kind < 0.78:
            return f"{{{{with $y := {value}}}}}{{{{$y}}}}{{{{else}}}}w{{{{end}}}}"
        if kind < 0.84:
            return f'{{{{define "t"}}}}[{{{{.}}}}]{{{{end}}}}{{{{template "t" {value}}}}}'
        if kind < 0.88:
            return f'{{{{block "b" {value}}}}}<{{{{.}}}}>{{{{end}}}}'
        if kind < 0.92:
            return f"{{{{- {value} -}}}} x {{{{/* c */}}}} y"
        if kind < 0.96:
            return f"{{{{range {value}}}}}{{{{if .}}}}{{{{break}}}}{{{{end}}}}{{{{continue}}}}{{{{end}}}}"
        return f"{{{{{value}}}}}"


def kubectl_prints(text: str) -> str:
    result = subprocess.run(
        [*CONFIG_MAP, "-o", f"go-template={text}"], capture_output=True, text=True, timeout=60
    )
    if result.returncode == 0:
        return result.stdout
    error = result.stderr.removesuffix("\n").split(". Printing more information")[0]
    error = error.removeprefix(f"error: error parsing template {text}, ")
    return re.sub(r'^error: error executing template "(?:[^"\\]|\\.)*": ', "", error)


def modelplane_prints(text: str, data: dict) -> str:
    try:
        return Template("output", text, KUBECTL_FUNCTIONS).execute(data)
    except GoTemplateError as error:
        return str(error)


@pytest.mark.parametrize("kind", [RandomPipelines, RandomFormatting])
def test_random_templates_print_what_kubectl_prints(kind):
    data = json.loads(
        subprocess.run([*CONFIG_MAP, "-o", "json"], capture_output=True, text=True, check=True).stdout
    )
    templates = kind(seed=20261207)
    differences = []
    for _ in range(TEMPLATES):
        text = templates.template()
        expected, printed = kubectl_prints(text), modelplane_prints(text, data)
        if printed != expected:
            differences.append(f"{text}\n  kubectl:    {expected!r}\n  modelplane: {printed!r}")
    assert not differences, "\n".join(differences)
