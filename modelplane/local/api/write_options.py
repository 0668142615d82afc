"""What a create, replace, patch or delete asks of the write, as Kubernetes reads it:

- `dryRun=All`: check and answer the write, and store nothing (`kubectl apply --dry-run=server`);
  a delete may say it in its body instead (`DeleteOptions`, as `kubectl delete` sends it), with
  `preconditions` the object must meet;
- `fieldValidation=Ignore|Warn|Strict`: what to do about fields the kind's schema does not declare.
  `Strict` refuses the write with 400, naming each field (`kubectl apply`, whose default
  `--validate=strict` sends it); `Warn`, the default, accepts it and names each field in a
  `Warning` response header, which kubectl prints; `Ignore` (`--validate=false`) says nothing.

Accepted unknown fields are dropped by the store, as Kubernetes prunes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from modelplane.api.kinds import Kind
from modelplane.api.schema import UnknownField, prune_nulls, unknown_field_details
from modelplane.local.api.errors import BadRequest

IGNORE, WARN, STRICT = "Ignore", "Warn", "Strict"
_FIELD_VALIDATIONS = (IGNORE, WARN, STRICT)


@dataclass(frozen=True)
class WriteOptions:
    dry_run: bool = False
    field_validation: str = WARN

    @classmethod
    def from_query(cls, query: dict[str, str]) -> WriteOptions:
        """The options of a request's query; BadRequest for a value Kubernetes would refuse."""
        dry_run = query.get("dryRun", "")
        if dry_run not in ("", "All"):
            raise BadRequest(f'dryRun: Unsupported value: "{dry_run}": supported values: "All"')
        validation = query.get("fieldValidation") or WARN
        if validation not in _FIELD_VALIDATIONS:
            raise BadRequest(
                f'fieldValidation: Unsupported value: "{validation}": supported values: '
                + ", ".join(f'"{v}"' for v in _FIELD_VALIDATIONS)
            )
        return cls(dry_run == "All", validation)

    def unknown_field_warnings(self, written: dict[str, Any], kind: Kind) -> list[str]:
        """The warnings about the fields of `written` (an object, or a merge patch of one) that the
        schema does not declare; under `Strict`, BadRequest naming them instead."""
        return self.new_unknown_field_warnings(None, written, kind)

    def new_unknown_field_warnings(
        self, before: dict[str, Any] | None, after: dict[str, Any], kind: Kind
    ) -> list[str]:
        """The same for the fields `after` has, undeclared, that `before` (an object as stored, or
        None) did not have: what a JSON patch added."""
        if self.field_validation == IGNORE:
            return []
        found = [_words(field) for field in unknown_field_details(prune_nulls(after), kind)]
        if before is not None:
            had = {_words(field) for field in unknown_field_details(prune_nulls(before), kind)}
            found = [warning for warning in found if warning not in had]
        if found and self.field_validation == STRICT:
            raise BadRequest(
                f'{kind.kind} in version "{kind.version}" cannot be handled as a {kind.kind}: '
                f"strict decoding error: {', '.join(found)}"
            )
        return found


@dataclass(frozen=True)
class DeleteOptions:
    """A delete's options: from its query, and from the `DeleteOptions` body kubectl sends.

    `propagationPolicy: Orphan` keeps the object's dependents; `Background` (the default) and
    `Foreground` delete them with it, before the answer. `gracePeriodSeconds` changes nothing: there
    are no finalizers, and the object goes at once."""

    dry_run: bool = False
    preconditions: dict[str, str] | None = None
    orphan_dependents: bool = False

    @classmethod
    def read(cls, query: dict[str, str], body: bytes) -> DeleteOptions:
        dry_run = WriteOptions.from_query(query).dry_run
        if not body.strip():
            return cls(dry_run)
        try:
            options = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"the body of a delete must be DeleteOptions in JSON: {exc}") from None
        if not isinstance(options, dict):
            raise BadRequest("the body of a delete must be a DeleteOptions object")
        body_dry_run = options.get("dryRun") or []
        if body_dry_run not in ([], ["All"]):
            raise BadRequest(
                f'dryRun: Unsupported value: {orjson.dumps(body_dry_run).decode()}: supported values: "All"'
            )
        policy = options.get("propagationPolicy")
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise BadRequest(
                f'propagationPolicy: Unsupported value: "{policy}": supported values: "Orphan", "Background", "Foreground"'
            )
        preconditions = options.get("preconditions") or {}
        if not isinstance(preconditions, dict) or set(preconditions) - {"uid", "resourceVersion"}:
            raise BadRequest('preconditions: only "uid" and "resourceVersion" may be given')
        return cls(dry_run or body_dry_run == ["All"], preconditions or None, policy == "Orphan")


def _words(field: UnknownField) -> str:
    hint = f' (did you mean "{field.did_you_mean}"?)' if field.did_you_mean else ""
    return f'unknown field "{field.path}"{hint}'
