"""How `modelplane get` prints what it fetched, as kubectl prints it: tables (the kinds' printer
columns, or `-o custom-columns`), and documents (`-o yaml`, `-o json`, `-o jsonpath=TEMPLATE`,
`-o go-template=TEMPLATE`), in the order `--sort-by` asks for."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from datetime import UTC, datetime
from typing import Any

import yaml

from modelplane.api import jsonpath
from modelplane.api.go_template import KUBECTL_FUNCTIONS, GoTemplateError, Template
from modelplane.api.go_template.fmt import GoInt64, go_quote, go_value_string
from modelplane.api.kinds import Kind
from modelplane.cli.main import CommandError
from modelplane.local.api.columns import leads_with_name, printer_columns
from modelplane.local.api.paths import qualified_singular


class Rows:
    """Rows printed in columns, in parts (as `--watch` prints them): later rows keep the widths of the
    first part, whose first row is the header unless `--no-headers`."""

    headers: list[str]

    def __init__(self, *, show_headers: bool = True):
        self.show_headers = show_headers
        self.widths: list[int] | None = None

    def print(self, items: list[dict[str, Any]]) -> None:
        rows = [self.row(item) for item in items]
        if self.widths is None:
            if self.show_headers:
                rows.insert(0, self.headers)
            self.widths = [max((len(row[i]) for row in rows), default=0) for i in range(len(self.headers))]
        # As kubectl's tabwriter sets them: each column but the last 3 wider than its widest cell, and
        # at least 6 wide (a later part's longer cell still gets its 3 spaces).
        widths = [max(width, 3) for width in self.widths[:-1]]
        for row in rows:
            cells = [cell.ljust(width) + "   " for cell, width in zip(row, widths, strict=False)]
            print(("".join(cells) + row[-1]).rstrip())

    def row(self, item: dict[str, Any]) -> list[str]:
        raise NotImplementedError


class Table(Rows):
    """kubectl's table: NAME (after NAMESPACE with -A) and the kind's printer columns."""

    def __init__(
        self,
        kind: Kind,
        *,
        all_namespaces: bool,
        wide: bool,
        qualified: bool = False,
        show_headers: bool = True,
        show_labels: bool = False,
    ):
        super().__init__(show_headers=show_headers)
        self.show_labels = show_labels
        self.columns = [c for c in printer_columns(kind) if wide or c.priority == 0]
        self.leading_name = leads_with_name(kind)
        self.name_prefix = f"{qualified_singular(kind)}/" if qualified else ""
        self.all_namespaces = all_namespaces
        self.headers = (
            (["NAMESPACE"] if all_namespaces else [])
            + (["NAME"] if self.leading_name else [])
            + [c.header for c in self.columns]
            + (["LABELS"] if show_labels else [])
        )

    def row(self, item: dict[str, Any]) -> list[str]:
        metadata = item.get("metadata") or {}
        now = datetime.now(UTC)
        leading = [metadata.get("namespace", "")] if self.all_namespaces else []
        if self.leading_name:
            leading.append(self.name_prefix + metadata.get("name", ""))
        labels = [_labels_cell(metadata.get("labels"))] if self.show_labels else []
        return leading + [c.cell(item, now) for c in self.columns] + labels


def _labels_cell(labels: dict[str, str] | None) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items())) if labels else "<none>"


class CustomColumns(Rows):
    """`-o custom-columns=NAME:.metadata.name,URL:.status.url`: kubectl's table of chosen paths, a
    missing value shown as `<none>`."""

    def __init__(self, output: str, *, show_headers: bool = True):
        super().__init__(show_headers=show_headers)
        self.columns = jsonpath.custom_columns(output.partition("=")[2])
        self.headers = [header for header, _ in self.columns]

    def row(self, item: dict[str, Any]) -> list[str]:
        return [self._cell(item, steps) for _, steps in self.columns]

    @staticmethod
    def _cell(item: dict[str, Any], steps: list) -> str:
        values = jsonpath.evaluate(steps, item)
        # Each value as Go's fmt prints it (a map as map[key:value]), as kubectl's custom columns do.
        return ",".join(go_value_string(value) for value in values) if values else "<none>"


OUTPUT_FORMATS = (
    "yaml, json, wide, name, jsonpath=TEMPLATE, custom-columns=SPEC, go-template=TEMPLATE, "
    "go-template-file=FILE"
)
# kubectl's names for Go templates: the template itself, or a file that holds it.
_GO_TEMPLATES = ("go-template", "template")
_GO_TEMPLATE_FILES = ("go-template-file", "templatefile")


def output_format(value: str) -> str:
    """`-o`'s value, its template checked before anything is asked of the server (a template file
    is read here, and `-o go-template=TEXT` stands for it afterwards)."""
    if value in ("yaml", "json", "wide", "name"):
        return value
    format_name, equals, template = value.partition("=")
    if format_name in _GO_TEMPLATE_FILES and equals and template:
        try:
            with open(template, encoding="utf-8") as file:
                template = file.read()
        except OSError as error:
            raise argparse.ArgumentTypeError(
                f"error reading --template {template}, open {template}: {error.strerror.lower()}"
            ) from None
        format_name, value = "go-template", f"go-template={template}"
    if format_name in _GO_TEMPLATES and equals and template:
        _go_template(template)
        return f"go-template={template}"
    if format_name not in ("jsonpath", "custom-columns"):
        raise argparse.ArgumentTypeError(
            f"unable to match a printer for {value!r}: use one of {OUTPUT_FORMATS}"
        )
    if not equals or not template:
        raise argparse.ArgumentTypeError(f"{format_name} needs a template: -o {format_name}=...")
    try:
        if format_name == "jsonpath":
            jsonpath.parse_template(template_of(value))
        else:
            jsonpath.custom_columns(template)
    except jsonpath.TemplateError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def sort_by(value: str) -> str:
    """`--sort-by`'s JSONPath (`.metadata.name` or `{.metadata.name}`), checked before anything is
    asked of the server."""
    try:
        jsonpath.parse_field_path(value)
    except jsonpath.TemplateError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return value


def sorted_items(items: list[dict[str, Any]], sort_by: str) -> list[dict[str, Any]]:
    """`items` in the order of the value at the path `sort_by`, as kubectl's `--sort-by` orders them:
    numbers by value, text in natural order (`iris-2` before `iris-10`), items without it first."""
    path = jsonpath.parse_field_path(sort_by)
    values = [jsonpath.evaluate(path, item) for item in items]
    if items and not any(values):
        raise ValueError(f"couldn't find any field with path {sort_by!r} in the list of objects")
    keys = [_sort_key(found[0]) if found else (0,) for found in values]
    kinds = {key[0] for key in keys} - {0}
    if len(kinds) > 1:
        raise ValueError(f"the values at {sort_by!r} are of different types and cannot be sorted together")
    order = sorted(range(len(items)), key=keys.__getitem__)
    return [items[i] for i in order]


def _sort_key(value: Any) -> tuple:
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, str):
        return (
            3,
            [(0, int(chunk), "") if chunk.isdigit() else (1, 0, chunk) for chunk in _CHUNKS.findall(value)],
        )
    return (4, json.dumps(value, sort_keys=True))


_CHUNKS = re.compile(r"\d+|\D+")


def template_of(output: str) -> str:
    return output.partition("=")[2]


def is_custom_columns(output: str | None) -> bool:
    return bool(output) and output.startswith("custom-columns=")


def is_table(output: str | None) -> bool:
    return output in (None, "wide") or is_custom_columns(output)


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}


def _go_template(text: str) -> Template:
    try:
        return Template("output", text, KUBECTL_FUNCTIONS)
    except GoTemplateError as error:
        raise argparse.ArgumentTypeError(f"error parsing template {text}, {error}") from None


def _as_go_json(value: Any) -> Any:
    """A document as kubectl 1.32 gives it to a Go template: JSON read as Kubernetes reads it, where a
    number Go's encoding/json writes as a whole one that fits is an int64 (`{{printf "%T %d"
    .metadata.generation}}` is `int64 1`, and `eq .metadata.generation 1` holds) and any other a
    float64 (`0.5`, `1e300`, `12345678901234567890`)."""
    if isinstance(value, dict):
        return {key: _as_go_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_go_json(item) for item in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return _go_json_number(value)
    return value


def _go_json_number(number: float) -> float:
    # kubectl marshals the object it read and reads it again: a whole float64 below 1e21 is written
    # without a fraction (1.0 as 1), and read back as an int64 where it fits
    whole = isinstance(number, int) or (math.isfinite(number) and number.is_integer() and abs(number) < 1e21)
    if whole and _INT64_MIN <= int(number) <= _INT64_MAX:
        return GoInt64(int(number))
    try:
        return float(number)
    except OverflowError:  # an integer beyond float64's range
        return math.copysign(math.inf, number)


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def print_structured(document: Any, output: str) -> None:
    """`document` as yaml, json, `jsonpath=TEMPLATE` or `go-template=TEMPLATE`, without the objects'
    `metadata.managedFields` (as kubectl prints them without `--show-managed-fields`)."""
    document = _without_managed_fields(document)
    if output == "json":
        print(json.dumps(document, indent=4))
    elif output.startswith("jsonpath="):
        text = template_of(output)
        try:
            sys.stdout.write(jsonpath.render_template(jsonpath.parse_template(text), document))
        except jsonpath.ExecutionError as error:
            raise CommandError(
                f"error executing jsonpath {go_quote(text)}: Error executing template: {error}"
            ) from None
    elif output.startswith("go-template="):
        text = template_of(output)
        try:
            sys.stdout.write(_go_template(text).execute(_as_go_json(document)))
        except GoTemplateError as error:
            raise CommandError(f"error executing template {go_quote(text)}: {error}") from None
    else:
        sys.stdout.write(yaml.safe_dump(document, sort_keys=False, default_flow_style=False))


def _without_managed_fields(document: Any) -> Any:
    if not isinstance(document, dict):
        return document
    shown = dict(document)
    metadata = shown.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata:
        shown["metadata"] = {key: value for key, value in metadata.items() if key != "managedFields"}
    if isinstance(shown.get("items"), list):
        shown["items"] = [_without_managed_fields(item) for item in shown["items"]]
    return shown
