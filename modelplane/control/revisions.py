"""Revisions: immutable, numbered snapshots of a component's template.

`<isvc>-<component>-00001` is a component's first revision; a spec change that changes what the
component runs makes the next one. A change that runs the same thing (a label, a runtime no one
uses) makes none.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson


@dataclass(frozen=True)
class Revision:
    """One revision of one component. `template` must not be changed (it is the snapshot)."""

    name: str
    component: str
    number: int
    digest: str
    template: dict

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "component": self.component,
            "number": self.number,
            "digest": self.digest,
            "template": self.template,
        }

    @classmethod
    def from_json(cls, data: Mapping) -> Revision:
        return cls(data["name"], data["component"], int(data["number"]), data["digest"], data["template"])


def revision_name(isvc_name: str, component: str, number: int) -> str:
    return f"{isvc_name}-{component}-{number:05d}"


def template_digest(template: dict) -> str:
    return hashlib.sha256(orjson.dumps(template, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def latest_revisions(
    isvc_name: str, existing: Sequence[Revision], templates: Mapping[str, dict]
) -> tuple[dict[str, Revision], list[Revision]]:
    """The revision each component should run now, and those of them that are new.

    A component keeps its newest revision when the template is the same; otherwise it gets a new
    one, numbered after the newest it ever had.
    """
    latest: dict[str, Revision] = {}
    created: list[Revision] = []
    for component, template in templates.items():
        digest = template_digest(template)
        own = [revision for revision in existing if revision.component == component]
        newest = max(own, key=lambda revision: revision.number, default=None)
        if newest is not None and newest.digest == digest:
            latest[component] = newest
            continue
        number = newest.number + 1 if newest else 1
        revision = Revision(revision_name(isvc_name, component, number), component, number, digest, template)
        latest[component] = revision
        created.append(revision)
    return latest, created
