"""`modelplane graph condition 'COND' [FILE]`, run as the real command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PICK_ERROR = {"decision_picker": "ERROR", "key1": {"name": "abc"}}


def condition(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelplane", "graph", "condition", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_match_prints_the_selected_value_and_exits_0() -> None:
    done = condition("[@this].#(decision_picker==ERROR)", stdin=json.dumps(PICK_ERROR))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "match: true",
        'value: {"decision_picker":"ERROR","key1":{"name":"abc"}}',
    ]
    assert done.stderr == ""


def test_no_match_exits_1() -> None:
    done = condition("[@this].#(decision_picker==SUCCESS)", stdin=json.dumps(PICK_ERROR))
    assert done.returncode == 1
    assert done.stdout.splitlines() == ["match: false", "value: (nothing selected)"]


def test_the_document_can_come_from_a_file(tmp_path: Path) -> None:
    document = tmp_path / "response.json"
    document.write_text('{"predictions": [{"label": "dog", "score": 0.9}]}')
    done = condition('predictions.#(label=="dog").score', str(document))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["match: true", "value: 0.9"]


def test_a_null_value_matches() -> None:
    done = condition("a", stdin='{"a": null}')
    assert done.returncode == 0
    assert done.stdout.splitlines() == ["match: true", "value: null"]


def test_a_refused_condition_exits_2_with_one_line_naming_the_position() -> None:
    done = condition("[@this].#(decision_picker==~yes)", stdin="{}")
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert "unknown '~' value (use ~true, ~false, ~null or ~*) at position 28" in lines[0]
    assert "[@this].#(decision_picker==~yes)" in lines[0]


def test_a_doubtful_condition_is_evaluated_as_go_does_with_a_warning() -> None:
    done = condition("[@this].#(decision_picker==ERROR", stdin='{"": 0}')
    assert done.returncode == 0
    assert done.stdout.splitlines() == ["match: true", 'value: {"":0}']
    assert done.stderr == (
        "Warning: evaluated as Go's gjson evaluates it, but probably a mistake: "
        "'(' is never closed at position 10\n"
    )


def test_a_document_go_reads_is_read_though_not_utf_8(tmp_path: Path) -> None:
    document = tmp_path / "latin-1.json"
    document.write_bytes(b'{"name":"caf\xe9","score":1e400}')
    done = condition("[@this].#(score>1e308).name", str(document))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["match: true", 'value: "caf\ufffd"']


@pytest.mark.parametrize(
    "document", ["", "{", "not json", '{"a":1} trailing', '{"a":NaN}', pytest.param("[" * 100_000, id="deep")]
)
def test_bad_json_exits_2_with_one_line(document: str) -> None:
    done = condition("a", stdin=document)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1
    assert "standard input is not valid JSON" in done.stderr


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    done = condition("a", str(tmp_path / "missing.json"))
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    assert "cannot read" in done.stderr
