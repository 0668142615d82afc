"""How `modelplane get` prints what it fetched, as kubectl prints it: tables (the kinds' printer
columns, or `-o custom-columns`), and documents (`-o yaml`, `-o json`, `-o jsonpath=TEMPLATE`)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

import yaml

from modelplane.api import jsonpath
from modelplane.api.kinds import Kind
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
        for row in rows:
            print("   ".join(cell.ljust(w) for cell, w in zip(row, self.widths, strict=True)).rstrip())

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
    ):
        super().__init__(show_headers=show_headers)
        self.columns = [c for c in printer_columns(kind) if wide or c.priority == 0]
        self.leading_name = leads_with_name(kind)
        self.name_prefix = f"{qualified_singular(kind)}/" if qualified else ""
        self.all_namespaces = all_namespaces
        self.headers = (
            (["NAMESPACE"] if all_namespaces else [])
            + (["NAME"] if self.leading_name else [])
            + [c.header for c in self.columns]
        )

    def row(self, item: dict[str, Any]) -> list[str]:
        metadata = item.get("metadata") or {}
        now = datetime.now(UTC)
        leading = [metadata.get("namespace", "")] if self.all_namespaces else []
        if self.leading_name:
            leading.append(self.name_prefix + metadata.get("name", ""))
        return leading + [c.cell(item, now) for c in self.columns]


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
        return ",".join(jsonpath.format_value(value) for value in values) if values else "<none>"


OUTPUT_FORMATS = "yaml, json, wide, name, jsonpath=TEMPLATE, custom-columns=SPEC"


def output_format(value: str) -> str:
    """`-o`'s value, its template checked before anything is asked of the server."""
    if value in ("yaml", "json", "wide", "name"):
        return value
    format_name, equals, template = value.partition("=")
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


def template_of(output: str) -> str:
    return output.partition("=")[2]


def is_custom_columns(output: str | None) -> bool:
    return bool(output) and output.startswith("custom-columns=")


def is_table(output: str | None) -> bool:
    return output in (None, "wide") or is_custom_columns(output)


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}


def print_structured(document: Any, output: str) -> None:
    """`document` as yaml, json or `jsonpath=TEMPLATE`."""
    if output == "json":
        print(json.dumps(document, indent=4))
    elif output.startswith("jsonpath="):
        sys.stdout.write(jsonpath.render_template(jsonpath.parse_template(template_of(output)), document))
    else:
        sys.stdout.write(yaml.safe_dump(document, sort_keys=False, default_flow_style=False))
