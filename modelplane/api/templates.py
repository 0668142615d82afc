"""Runtime container templates: `{{.Name}}`, `{{.Namespace}}`, `{{.Labels.x}}`, `{{.Annotations.x}}`,
and ``{{index .Annotations `x/y`}}`` for a key a field name cannot spell.

KServe's controller renders a container by writing it as JSON and executing that text as a Go
`html/template` with the InferenceService's metadata; modelplane does the same with the placeholders
above, and so gives what KServe gives:

- a missing label or annotation renders as nothing (html/template drops the missing value, where
  text/template would print `<no value>`);
- a value is HTML-escaped (`&` as `&amp;`, `+` as `&#43;`, `"` as `&#34;`...), and a backslash in it
  reads as a JSON escape;
- `index` needs its key in backquotes: the double quotes of `{{index .Annotations "x/y"}}` are escaped
  in the JSON, which Go's template parser refuses.
"""

from __future__ import annotations

import json
import re

# A `{{ ... }}` action, with optional trim markers.
_ACTION = re.compile(r"\{\{-?\s*(?P<body>.*?)\s*-?\}\}")
_FIELD = re.compile(r"\.(?P<field>\w+)$")
_MAP_KEY = re.compile(r"\.(?P<map>Labels|Annotations)\.(?P<key>\w+)$")
_INDEX = re.compile(r"index\s+\.(?P<map>\w+)\s+`(?P<key>[^`]*)`$")
_QUOTED_INDEX = re.compile(r'index\s+\.\w+\s+\\"')
_FIELDS = {"Name": "name", "Namespace": "namespace", "GenerateName": "generateName", "UID": "uid"}
_MAPS = {"Labels": "labels", "Annotations": "annotations"}
# html/template's escaping of a value in text.
_HTML_ESCAPES = str.maketrans(
    {"\0": "\ufffd", '"': "&#34;", "&": "&amp;", "'": "&#39;", "+": "&#43;", "<": "&lt;", ">": "&gt;"}
)


class TemplateError(ValueError):
    """A placeholder KServe's controller cannot render: it names no metadata field, or does not parse."""


def render(text: str, metadata: dict) -> str:
    """`text`, a string of a container, with each placeholder replaced from `metadata` (an object's
    `metadata` mapping)."""
    return _render_value(text, metadata)


def render_container(container: dict, metadata: dict) -> dict:
    """A copy of a container with every string in it rendered."""
    return _render_value(container, metadata)


def _render_value(value: object, metadata: dict) -> object:
    rendered = _ACTION.sub(lambda match: _substitute(match, metadata), json.dumps(value))
    try:
        return json.loads(rendered)
    except json.JSONDecodeError as exc:  # a value with a control character or a stray backslash
        raise TemplateError(f"the rendered container is not valid JSON: {exc}") from None


def _substitute(match: re.Match, metadata: dict) -> str:
    body = match.group("body")
    if _QUOTED_INDEX.match(body):
        raise TemplateError(
            f"{_unescaped(match.group(0))}: KServe's controller renders the container as JSON, where "
            "these double quotes are escaped and do not parse; write the key in backquotes (`...`)"
        )
    found = _INDEX.match(body)
    if found:  # Go's `index` gives a missing key's zero value: nothing
        if found.group("map") not in _MAPS:
            raise _unknown(match)
        return _escaped((metadata.get(_MAPS[found.group("map")]) or {}).get(found.group("key")))
    found = _MAP_KEY.match(body)
    if found:
        return _escaped((metadata.get(_MAPS[found.group("map")]) or {}).get(found.group("key")))
    found = _FIELD.match(body)
    if found and found.group("field") in _FIELDS:
        return _escaped(metadata.get(_FIELDS[found.group("field")]))
    if body.startswith("."):
        raise _unknown(match)
    return match.group(0)  # another action (a function, a pipeline): left as written


def _escaped(value: object) -> str:
    return "" if value is None else str(value).translate(_HTML_ESCAPES)


def _unescaped(action: str) -> str:
    """An action as the user wrote it, from the JSON text."""
    try:
        return json.loads(f'"{action}"')
    except json.JSONDecodeError:  # it spans two strings of the container
        return action


def _unknown(match: re.Match) -> TemplateError:
    return TemplateError(
        f"can't evaluate {_unescaped(match.group(0))} with the object's metadata: use .Name, .Namespace, "
        ".Labels.<key>, .Annotations.<key>, or index .Labels `<key>` for a key with other characters"
    )
