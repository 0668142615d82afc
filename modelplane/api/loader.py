"""Reading resources from YAML (or JSON) text, files and folders.

Every problem names the file and line it comes from, e.g. `examples/x.yaml:12: ...`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import paths
from .errors import FieldError, LoadError

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
# YAML aliases may repeat parts of a document; these bound what they may add when expanded (nodes
# plus the characters of the scalars repeated), so a few hundred bytes cannot become gigabytes.
MAX_ALIAS_EXPANSION = 1_000_000
MAX_DEPTH = 200
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(yaml.SafeLoader):
    """A safe loader that keeps timestamps as strings (as the Kubernetes API does) and rejects duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self._key(key_node, deep)
            if key in first_seen:
                raise LoadError(
                    f'key "{key}" already set in this mapping (first at line {first_seen[key]})',
                    line=key_node.start_mark.line + 1,
                )
            first_seen[key] = key_node.start_mark.line + 1
        self.flatten_mapping(node)
        # Later pairs win, so keys written out override those merged in with `<<:`.
        return {self._key(k, deep): self.construct_object(v, deep=deep) for k, v in node.value}

    def _key(self, key_node: yaml.Node, deep: bool) -> str:
        key = self.construct_object(key_node, deep=deep)
        if not isinstance(key, str | int | float | bool):
            raise LoadError("a mapping key must be a string", line=key_node.start_mark.line + 1)
        # JSON and the Kubernetes API only know string keys.
        return _key_string(key)

    def construct_yaml_str(self, node: yaml.ScalarNode) -> str:
        return _without_surrogates(super().construct_yaml_str(node))


_Loader.add_constructor("tag:yaml.org,2002:str", _Loader.construct_yaml_str)

_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _without_surrogates(text: str) -> str:
    """A string as JSON reads its escapes: YAML's `\\ud83d\\ude00` is a surrogate pair, one character
    to JSON (and to Kubernetes), and a lone surrogate is U+FFFD, as Go's JSON decoder makes it; Python
    would keep them as surrogates, which no UTF-8 writer takes."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def _key_string(key: object) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


@dataclass
class Document:
    """One resource read from text: the resource itself and where it came from."""

    resource: dict
    source: str
    line: int
    _node: yaml.Node | None = field(default=None, repr=False, compare=False)

    def line_of(self, path: str) -> int:
        """The line of the field at `path`, or of its nearest ancestor present in the text."""
        node, line = self._node, self.line
        for token in paths.split(path):
            child = _child(node, token)
            if child is None:
                break
            node, line = child
        return line

    def where(self, error: FieldError | None = None) -> str:
        """`file:line` of the document, or of the field an error is about."""
        line = self.line_of(error.path) if error is not None else self.line
        return f"{self.source}:{line}"

    def describe(self, error: FieldError) -> str:
        """An error as `file:line: path: message`."""
        return f"{self.where(error)}: {error}"


def _child(node: yaml.Node | None, token: str) -> tuple[yaml.Node, int] | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if str(key_node.value) == token:
                return value_node, key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode) and token.isdigit() and int(token) < len(node.value):
        item = node.value[int(token)]
        return item, item.start_mark.line + 1
    return None


def nested_deeper_than(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether a parsed JSON value nests objects and lists more than `limit` levels deep (counted
    without recursion, so that a deep value cannot exhaust the stack of whatever reads it next)."""
    level = [value]
    for _ in range(limit):
        level = [
            child
            for item in level
            if isinstance(item, (dict, list))
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, (dict, list))
        ]
        if not level:
            return False
    return True


def load_text(text: str, source: str = "<input>", *, require_metadata: bool = True) -> list[Document]:
    """Every resource in a YAML or JSON text (several documents, and `kind: List`, allowed); each
    with a name unless `require_metadata` is false (the API checks a body's metadata itself)."""
    loader = _Loader(text)
    documents: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            _check_size(node)
            data = loader.construct_document(node)
            if data is None:
                continue
            documents.extend(_documents(data, node, source, require_metadata))
    except LoadError as e:
        raise LoadError(e.reason, source=source, line=e.line) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        hint = _unquoted_brace_hint(text, mark.line) if mark is not None else ""
        raise LoadError(_yaml_problem(e) + hint, source=source, line=line) from None
    except yaml.YAMLError as e:
        raise LoadError(str(e), source=source) from None
    except RecursionError:
        raise LoadError(f"nested more than {MAX_DEPTH} levels deep", source=source) from None
    finally:
        loader.dispose()
    return documents


def load_file(path: str | Path) -> list[Document]:
    """Every resource in one file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LoadError("no such file or directory", source=str(path)) from None
    except UnicodeDecodeError:
        raise LoadError("not a UTF-8 text file", source=str(path)) from None
    except OSError as e:
        raise LoadError(e.strerror or str(e), source=str(path)) from None
    return load_text(text, source=str(path))


def load_path(path: str | Path, *, recursive: bool = False) -> list[Document]:
    """Every resource in a file, or in the .yaml/.yml/.json files of a folder, in name order."""
    path = Path(path)
    if not path.is_dir():
        return load_file(path)
    pattern = "**/*" if recursive else "*"
    files = sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix in MANIFEST_SUFFIXES)
    return [doc for file in files for doc in load_file(file)]


def _check_size(root: yaml.Node) -> None:
    """Refuses a document nested too deeply, whose aliases form a loop, or whose aliases would
    expand it by more than MAX_ALIAS_EXPANSION."""
    weights: dict[int, int] = {}  # a node's weight with aliases expanded, once known
    distinct = 0  # every node counted once
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            weights[key] = 1 + sum(weights[id(child)] for child in _children(node))
            continue
        if key in weights:
            continue
        if key in on_path:
            raise LoadError("a YAML alias refers to a node that contains it", line=node.start_mark.line + 1)
        if depth > MAX_DEPTH:
            raise LoadError(f"nested more than {MAX_DEPTH} levels deep", line=node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode):
            weights[key] = 1 + len(node.value)
            distinct += weights[key]
            continue
        distinct += 1
        on_path.add(key)
        stack.append((node, depth, True))
        stack.extend((child, depth + 1, False) for child in _children(node))
    if weights[id(root)] - distinct > MAX_ALIAS_EXPANSION:
        raise LoadError(
            f"YAML aliases would expand this document by {weights[id(root)] - distinct:,} nodes and "
            f"characters (at most {MAX_ALIAS_EXPANSION:,}); write the repeated parts out",
            line=root.start_mark.line + 1,
        )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _documents(data: object, node: yaml.Node, source: str, require_metadata: bool) -> list[Document]:
    line = node.start_mark.line + 1
    if not isinstance(data, dict):
        raise LoadError(f"a resource must be a mapping, not {_type_name(data)}", line=line)
    if data.get("kind") == "List" and isinstance(data.get("items"), list):
        found = _child(node, "items")
        items_node = found[0] if found else None
        out = []
        for index, item in enumerate(data["items"]):
            found = _child(items_node, str(index))
            out.extend(_documents(item, found[0] if found else node, source, require_metadata))
        return out
    _require_identity(data, node, line, require_metadata)
    return [Document(resource=data, source=source, line=line, _node=node)]


def _require_identity(data: dict, node: yaml.Node, line: int, require_metadata: bool) -> None:
    for key in ("apiVersion", "kind"):
        value = data.get(key)
        if not isinstance(value, str) or not value:
            raise LoadError(f"resource has no {key}", line=_line_of(node, key, line))
    if not require_metadata:
        return
    metadata = data.get("metadata")
    if not isinstance(metadata, dict):
        raise LoadError(f"{data['kind']} has no metadata", line=_line_of(node, "metadata", line))
    if not any(isinstance(metadata.get(key), str) and metadata[key] for key in ("name", "generateName")):
        raise LoadError(f"{data['kind']} has no metadata.name", line=_line_of(node, "metadata", line))


def _line_of(node: yaml.Node, key: str, default: int) -> int:
    found = _child(node, key)
    return found[1] if found else default


def _type_name(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"


# A value that opens with a brace or a bracket and goes on after its close (`image: {username}/server`,
# a placeholder in a template): YAML reads a flow mapping or list, and then cannot read the rest.
_UNQUOTED_BRACE = re.compile(
    r"^\s*(?:-\s+)?(?:[^\s#'\"{}\[\]][^#:]*:\s+)?([{\[][^{}\[\]]*[}\]][^\s,#}\]].*?)\s*$"
)


def _unquoted_brace_hint(text: str, index: int) -> str:
    """A hint for a YAML error on a line whose value starts with `{` or `[` and goes on after its close."""
    lines = text.splitlines()
    match = _UNQUOTED_BRACE.match(lines[index]) if 0 <= index < len(lines) else None
    if match is None:
        return ""
    value = match.group(1)
    what = "mapping" if value[0] == "{" else "list"
    quoted = "'" + value.replace("'", "''") + "'"
    return f'; a value that starts with "{value[0]}" is a YAML {what}: quote it, as in {quoted}'


def _yaml_problem(error: yaml.MarkedYAMLError) -> str:
    problem = error.problem or "invalid YAML"
    if error.context:
        return f"{problem} ({error.context})"
    return problem
