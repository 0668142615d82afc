"""The values a template works on and its error: Python values as Go sees them (a dict is a map, a list a
slice, None a nil interface), plus a struct and Go's invalid value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class GoTemplateError(ValueError):
    """A template that does not parse, or that cannot be executed on the data given."""


class _Missing:
    """Go's invalid reflect.Value: what a missing map key gives, printed `<no value>`."""

    def __repr__(self) -> str:
        return "<no value>"


MISSING: Any = _Missing()


@dataclass
class GoStruct:
    """A Go struct: `type_name` as Go prints it (`v1.ObjectMeta`), and its fields."""

    type_name: str
    fields: dict[str, Any]


def truth(value: Any) -> bool:
    """Go's template truth: false, 0, nil, and an empty string, slice or map are false."""
    if value is MISSING or value is None:
        return False
    if isinstance(value, GoStruct):
        return True
    if isinstance(value, bool | int | float):
        return bool(value)
    return len(value) > 0
