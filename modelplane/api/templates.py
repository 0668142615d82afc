"""Runtime container templates, as KServe's controller renders them: the container written as JSON and
that text executed as a Go `html/template` (modelplane.api.go_template), with the InferenceService's
metadata (a `v1.ObjectMeta`: `.Name`, `.Namespace`, `.Labels`, `.Annotations`, ...) as dot. Every
action of Go's templates works: `{{.Name}}`, ``{{index .Annotations `x/y`}}``, ``{{printf `%s-%s` .Name
.Namespace}}``, ``{{if eq .Namespace `prod`}}...{{else}}...{{end}}``, `{{range}}`, `{{with}}`, variables.
It gives what KServe gives:

- a missing label or annotation renders as nothing (html/template drops the missing value, where
  text/template would print `<no value>`);
- a value is HTML-escaped (`&` as `&amp;`, `+` as `&#43;`, `"` as `&#34;`...), and a backslash in it
  reads as a JSON escape;
- a string in an action needs backquotes: the double quotes of `{{index .Annotations "x/y"}}` are
  escaped in the JSON, which Go's template parser refuses.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from modelplane.api.go_template import MISSING, GoStruct, GoTemplateError, Template
from modelplane.api.go_template.fmt import go_value_string

TEMPLATE_NAME = "container-tmpl"  # KServe's name for it, which Go's errors say
# html/template's escaping of a value in text.
_HTML_ESCAPES = str.maketrans(
    {"\0": "\ufffd", '"': "&#34;", "&": "&amp;", "'": "&#39;", "+": "&#43;", "<": "&lt;", ">": "&gt;"}
)


class TemplateError(ValueError):
    """A placeholder KServe's controller cannot render: it does not parse, or names no metadata field."""


def render(text: str, metadata: dict) -> str:
    """`text`, a string of a container, with each placeholder replaced from `metadata` (an object's
    `metadata` mapping)."""
    return _render_value(text, metadata)


def render_container(container: dict, metadata: dict) -> dict:
    """A copy of a container with every string in it rendered."""
    return _render_value(container, metadata)


def _render_value(value: object, metadata: dict) -> Any:
    text = json.dumps(value)
    if "{{" not in text:
        return value if not isinstance(value, dict) else json.loads(text)
    try:
        rendered = Template(TEMPLATE_NAME, text).execute(object_meta(metadata), escape=_html_escaped)
    except GoTemplateError as error:
        raise TemplateError(_explained(str(error))) from None
    try:
        return json.loads(rendered)
    except json.JSONDecodeError as exc:  # a value with a control character or a stray backslash
        raise TemplateError(f"the rendered container is not valid JSON: {exc}") from None


def object_meta(metadata: dict) -> GoStruct:
    """An object's `metadata` as the Go struct KServe's templates see (`v1.ObjectMeta`)."""
    return GoStruct(
        "v1.ObjectMeta",
        {
            "Name": metadata.get("name", ""),
            "GenerateName": metadata.get("generateName", ""),
            "Namespace": metadata.get("namespace", ""),
            "SelfLink": "",
            "UID": metadata.get("uid", ""),
            "ResourceVersion": metadata.get("resourceVersion", ""),
            "Generation": int(metadata.get("generation") or 0),
            "CreationTimestamp": _go_time(metadata.get("creationTimestamp")),
            "DeletionTimestamp": _go_time(metadata.get("deletionTimestamp")) or None,
            "Labels": dict(metadata.get("labels") or {}),
            "Annotations": dict(metadata.get("annotations") or {}),
            "OwnerReferences": list(metadata.get("ownerReferences") or []),
            "Finalizers": list(metadata.get("finalizers") or []),
        },
    )


def _go_time(value: str | None) -> str:
    """An RFC 3339 time as Go's time.Time prints it."""
    if not value:
        return "0001-01-01 00:00:00 +0000 UTC"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return moment.strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def _html_escaped(value: Any) -> str:
    """An action's value as html/template writes it in text: escaped, a missing value as nothing."""
    if value is MISSING or value is None:
        return ""
    return go_value_string(value).translate(_HTML_ESCAPES)


def _explained(message: str) -> str:
    if 'unexpected "\\\\"' in message:
        return (
            f"{message} (KServe's controller renders the container as JSON, where the double quotes of a "
            "string are escaped and do not parse; write the string in backquotes: `...`)"
        )
    return message
