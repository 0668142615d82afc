"""Go's text/template: the templates of `modelplane get -o go-template=...` (kubectl's) and of runtime
containers (KServe's html/template, in `modelplane.api.templates`).

Actions: `{{pipeline}}`, `{{if}}`/`{{else if}}`/`{{else}}`/`{{end}}`, `{{range}}` (with `{{break}}`,
`{{continue}}`), `{{with}}`/`{{else with}}`, variables (`$x := ...`, `$x = ...`, `$`), trim markers
(`{{- ` and ` -}}`), comments (`{{/* */}}`), the builtin functions, and nested templates
(`{{define "T"}}...{{end}}`, `{{template "T" pipeline}}`, `{{block "T" pipeline}}...{{end}}`; one
template calls others at most `MAX_TEMPLATE_DEPTH` deep, where Go allows 100000). Values are Python's:
a dict is a Go map (its keys sorted when ranged over or printed), a list a slice, an int an int, a
float a float64, None a nil interface, and `GoStruct` a struct, whose fields a template may name and
no others. Errors say what Go's say.

As Go's own package is laid out: `lex` reads the text into tokens, `parse` makes the trees of `nodes`,
`execute` runs them with the `functions`, and `fmt` is Go's fmt for the print functions.
"""

from .execute import MAX_OUTPUT, MAX_STEPS, MAX_TEMPLATE_DEPTH
from .functions import BUILTINS, KUBECTL_FUNCTIONS
from .parse import MAX_NESTING
from .template import Template
from .values import MISSING, GoStruct, GoTemplateError

__all__ = [
    "BUILTINS",
    "KUBECTL_FUNCTIONS",
    "MAX_NESTING",
    "MAX_OUTPUT",
    "MAX_STEPS",
    "MAX_TEMPLATE_DEPTH",
    "MISSING",
    "GoStruct",
    "GoTemplateError",
    "Template",
]
