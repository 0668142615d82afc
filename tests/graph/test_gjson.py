"""The GJSON condition evaluator against Go tidwall/gjson v1.18 (KServe's router).

Every expected answer in these tables is what Go gjson v1.18.0 returns for `GetBytes(doc, path)`: whether
the result exists, and its value. They were checked by running Go gjson on the same documents.
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

import orjson
import pytest

from modelplane.graph.gjson import PathSyntaxError, compile_path, matches, parse_document
from modelplane.graph.gjson.document import DuplicateKeys, _key_count, _parsed_key_count

NOTHING = object()  # the path selects nothing: Exists() is false


class Case(NamedTuple):
    doc: Any
    path: str
    expected: Any  # the selected value, or NOTHING


def case_id(case: Case) -> str:
    return case.path


def check(case: Case) -> None:
    result = compile_path(case.path).get(case.doc)
    if case.expected is NOTHING:
        assert not result.exists, f"selected {result.raw}"
        assert result.value is None
        assert result.raw == ""
        assert not matches(case.doc, case.path)
    else:
        assert result.exists
        # JSON text tells true from 1 and 1 from 1.0, which == on Python values does not.
        assert orjson.dumps(result.value) == orjson.dumps(case.expected)
        assert matches(case.doc, case.path)


# Documents from the reference, KServe's e2e tests and the GJSON syntax guide.
PICK_ERROR = {"decision_picker": "ERROR", "key1": {"name": "abc"}}
PICK_SUCCESS = {"decision_picker": "SUCCESS", "key1": {"name": "abc"}}
README_INPUT = {
    "source": "client1",
    "instances": [
        {"name": "blue", "intval": 0, "strval": "kserve"},
        {"name": "red", "intval": 20, "strval": "red-server-1"},
    ],
}
GUIDE = {
    "name": {"first": "Tom", "last": "Anderson"},
    "age": 37,
    "children": ["Sara", "Alex", "Jack"],
    "fav.movie": "Deer Hunter",
    "friends": [
        {"first": "Dale", "last": "Murphy", "age": 44, "nets": ["ig", "fb", "tw"]},
        {"first": "Roger", "last": "Craig", "age": 68, "nets": ["fb", "tw"]},
        {"first": "Jane", "last": "Murphy", "age": 47, "nets": ["ig", "tw"]},
    ],
}
VALS = {
    "vals": [
        {"a": 1, "b": "data"},
        {"a": 2, "b": True},
        {"a": 3, "b": False},
        {"a": 4, "b": "0"},
        {"a": 5, "b": 0},
        {"a": 6, "b": "1"},
        {"a": 7, "b": 1},
        {"a": 8, "b": "true"},
        {"a": 9, "b": False},
        {"a": 10, "b": None},
        {"a": 11},
    ]
}
MIXED = [1, "2", True, False, None, [3], {"a": 4}, 2.5, -1, "abc", "true"]

# Reference §6: every row of the Go-vs-gjson-py table (Go's answer), plus the seed and KServe's tests.
REFERENCE_TABLE = [
    Case(PICK_ERROR, "[@this].#(decision_picker==ERROR)", PICK_ERROR),
    Case(PICK_SUCCESS, "[@this].#(decision_picker==ERROR)", NOTHING),
    Case({"decision_picker": "ERROR"}, '[@this].#(decision_picker=="ERROR")', {"decision_picker": "ERROR"}),
    Case(PICK_ERROR, '[@this].#(key1.name=="abc")', PICK_ERROR),
    Case({"predictions": ["dog", "cat"]}, '[@this].#(predictions.0=="dog")', {"predictions": ["dog", "cat"]}),
    Case({"predictions": ["cat"]}, '[@this].#(predictions.0=="dog")', NOTHING),
    Case({"instances": [{"intval": 3}, {"intval": 7}]}, "instances.#(intval>=5)", {"intval": 7}),
    Case({"instances": [{"intval": 1}]}, "instances.#(intval>=5)", NOTHING),
    Case({"instances": [{"intval": 1}]}, "instances.#(intval>=5)#", []),
    Case({"instances": [{"intval": "7"}]}, "instances.#(intval>=5)", {"intval": "7"}),
    Case({"instances": [{"modelId": "2"}]}, 'instances.#(modelId=="2")', {"modelId": "2"}),
    Case({"instances": [{"modelId": "2"}]}, "instances.#(modelId==2)", {"modelId": "2"}),
    Case({"instances": [{"modelId": "2"}]}, 'instances.#(modelId=="1")', NOTHING),
    Case({"predictions": [{"label": "dog"}]}, 'predictions.#(label=="dog")', {"label": "dog"}),
    Case({"predictions": [{"label": "cat"}]}, 'predictions.#(label=="dog")', NOTHING),
    Case(
        {"predictions": [{"label": "dog", "score": [0.8, 0.2]}]},
        "predictions.#(score.0>0.5)",
        {"label": "dog", "score": [0.8, 0.2]},
    ),
    Case(README_INPUT, "[@this].#(source==client)", NOTHING),
    Case(README_INPUT, "[@this].#(source==client1)", README_INPUT),
    Case(README_INPUT, "instances.#(intval>10)", README_INPUT["instances"][1]),
    Case(README_INPUT, "instances.#(intval>30)", NOTHING),
    Case(README_INPUT, "instances.#(strval%*red-server*)", README_INPUT["instances"][1]),
    Case(README_INPUT, 'instances.#(strval%"*red-server*")', README_INPUT["instances"][1]),
    Case({"p": ["axb"]}, 'p.#(%"a.b")', NOTHING),
    Case({"p": ["a.b"]}, 'p.#(%"a.b")', "a.b"),
    Case({"predictions": ["dog"]}, "predictions.#(>0.9)", "dog"),
    Case({"a": None}, "a", None),
    Case([{"x": 1}, {"x": 5}], "#(x>3)", {"x": 5}),
    Case({"instances": [{"nested": [{"x": 2}]}]}, "instances.#(nested.#(x==2))", {"nested": [{"x": 2}]}),
    Case({"instances": [{"flag": True}, {"flag": False}]}, "instances.#(flag==true)", {"flag": True}),
]

# The GJSON syntax guide's examples: paths, wildcards, escapes, arrays, queries, dot vs pipe.
SYNTAX_GUIDE = [
    Case(GUIDE, "name.last", "Anderson"),
    Case(GUIDE, "age", 37),
    Case(GUIDE, "children", ["Sara", "Alex", "Jack"]),
    Case(GUIDE, "children.0", "Sara"),
    Case(GUIDE, "children.1", "Alex"),
    Case(GUIDE, "children.3", NOTHING),
    Case(GUIDE, "friends.1.first", "Roger"),
    Case(GUIDE, "child*.2", "Jack"),
    Case(GUIDE, "c?ildren.0", "Sara"),
    Case(GUIDE, "*.first", "Tom"),
    Case(GUIDE, "name.f??st", "Tom"),
    Case(GUIDE, r"fav\.movie", "Deer Hunter"),
    Case(GUIDE, "fav.movie", NOTHING),
    Case(GUIDE, "friends.#", 3),
    Case(GUIDE, "friends.#.age", [44, 68, 47]),
    Case(GUIDE, "friends.#.nets.#", [3, 2, 2]),
    Case(GUIDE, "name.#", NOTHING),
    Case(GUIDE, 'friends.#(last=="Murphy").first', "Dale"),
    Case(GUIDE, 'friends.#(last=="Murphy")#.first', ["Dale", "Jane"]),
    Case(GUIDE, "friends.#(age>45)#.last", ["Craig", "Murphy"]),
    Case(GUIDE, 'friends.#(first%"D*").last', "Murphy"),
    Case(GUIDE, 'friends.#(first!%"D*").last', "Craig"),
    Case(GUIDE, 'children.#(!%"*a*")', "Alex"),
    Case(GUIDE, 'children.#(%"*a*")#', ["Sara", "Jack"]),
    Case(GUIDE, 'friends.#(nets.#(=="fb"))#.first', ["Dale", "Roger"]),
    Case(GUIDE, 'friends.#[last=="Murphy"].first', "Dale"),
    Case(GUIDE, 'friends.#( last == "Murphy" ).first', "Dale"),
    Case(GUIDE, "friends.#(nets.#>2)#.first", ["Dale"]),
    Case(GUIDE, "friends.#(missing)", NOTHING),
    Case(GUIDE, "friends.#(missing)#", []),
    Case(GUIDE, "friends.0.first", "Dale"),
    Case(GUIDE, "friends|0.first", "Dale"),
    Case(GUIDE, "friends.0|first", "Dale"),
    Case(GUIDE, "friends|0|first", "Dale"),
    Case(GUIDE, "friends|#", 3),
    Case(GUIDE, 'friends.#(last="Murphy")#|first', NOTHING),
    Case(GUIDE, 'friends.#(last="Murphy")#.0', []),
    Case(GUIDE, 'friends.#(last="Murphy")#|0', GUIDE["friends"][0]),
    Case(GUIDE, 'friends.#(last="Murphy")#.#', []),
    Case(GUIDE, 'friends.#(last="Murphy")#|#', 2),
    Case(GUIDE, "friends.#(age>40)#.first|0", "Dale"),
    Case(GUIDE, "friends.#.first|1", "Roger"),
    # Go applies a pipe after `#(...)#.path` only once something matched.
    Case(GUIDE, "friends.#(age>100)#.first|#", []),
]

# The tilde operators, on the guide's own table.
TILDE = [
    Case(VALS, "vals.#(b==~true)#.a", [2, 6, 7, 8]),
    Case(VALS, "vals.#(b==~false)#.a", [3, 4, 5, 9, 10, 11]),
    Case(VALS, "vals.#(b==~null)#.a", [10, 11]),
    Case(VALS, "vals.#(b==~*)#.a", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
    Case(VALS, "vals.#(b!=~*)#.a", [11]),
]

# Each operator on each kind of value. Go compares by the kind of the *element*, so one query compares
# strings as text, numbers as numbers and booleans as "true"/"false", all against the same right-hand side.
OPERATORS = [
    # strings compare as text, even with a number on the right; numbers compare with the number the
    # right-hand side reads as (0 for text); true and false with the text "true"/"false"
    Case(MIXED, '#(=="2")', "2"),
    Case(MIXED, "#(==2)", "2"),
    Case(MIXED, '#(<"b")#', ["2", -1, "abc"]),
    Case(MIXED, '#(>="abc")#', [1, True, 2.5, "abc", "true"]),
    Case(MIXED, '#(<="2")#', [1, "2", False, -1]),
    Case(MIXED, '#(>"a")#', [1, 2.5, "abc", "true"]),
    Case(MIXED, '#(!="2")#', [1, True, False, 2.5, -1, "abc", "true"]),
    Case(MIXED, '#(%"a*")#', ["abc"]),
    Case(MIXED, '#(!%"a*")#', ["2", "true"]),
    Case({"s": ["10", "9"]}, "s.#(>5)#", ["9"]),
    # numbers compare as floats; a right-hand side that is not a number reads as 0
    Case(MIXED, "#(>1)#", ["2", 2.5, "abc", "true"]),
    Case(MIXED, "#(>=1)#", [1, "2", True, 2.5, "abc", "true"]),
    Case(MIXED, "#(<1)#", [-1]),
    Case(MIXED, "#(<=-1)#", [False, -1]),
    Case(MIXED, "#(!=1)#", ["2", True, False, 2.5, -1, "abc", "true"]),
    Case(MIXED, "#(==2.5)#", [2.5]),
    Case(MIXED, '#(=="2.5")#', [2.5]),
    Case(MIXED, "#(>abc)#", [1, 2.5, "true"]),
    Case(GUIDE, "friends.#(age==4.4e1).first", "Dale"),
    Case(GUIDE, "friends.#(age<inf)#.first", ["Dale", "Roger", "Jane"]),
    Case({"n": [10, 16, 0.5]}, "n.#(==1_0)#", [10]),  # Go's float syntax, underscores and hex included
    Case({"n": [10, 16, 0.5]}, "n.#(==0x1p4)#", [16]),
    Case({"n": [10, 16, 0.5]}, "n.#(==.5)#", [0.5]),
    Case({"n": [10, 16, 0.5]}, "n.#(==1__0)#", []),
    Case(MIXED, '#(%"*")#', ["2", "abc", "true"]),
    # true and false compare with the text "true" / "false"; true sorts above false
    Case(MIXED, "#(==true)#", [True, "true"]),
    Case(MIXED, '#(=="true")#', [True, "true"]),
    Case(MIXED, "#(==false)#", [False]),
    Case(MIXED, "#(!=true)#", [1, "2", False, 2.5, -1, "abc"]),
    Case({"b": [True, False]}, "b.#(>false)#", [True]),
    Case({"b": [True, False]}, "b.#(<true)#", [False]),
    Case({"b": [True, False]}, "b.#(>=x)#", [True]),
    Case({"b": [True, False]}, "b.#(<=x)#", [False]),
    # null, objects and arrays only pass a query without an operator
    Case({"v": [None, {"a": 1}, [1]]}, "v.#(==null)#", []),
    Case(
        {"v": [{"a": None}, {"a": {"b": 1}}, {"a": [1]}, {"b": 2}]},
        "v.#(a)#",
        [{"a": None}, {"a": {"b": 1}}, {"a": [1]}],
    ),
    Case({"v": [{"a": None}]}, "v.#(a==null)#", []),
    # quoted right-hand sides may hold escapes and spaces; unquoted ones are taken as written
    Case({"a": [{"s": 'say "hi"'}]}, r'a.#(s=="say \"hi\"")', {"s": 'say "hi"'}),
    Case({"a": [{"s": "é"}]}, r'a.#(s=="\u00e9")', {"s": "é"}),
    Case({"a": [{"s": "two words"}]}, "a.#(s==two words)", {"s": "two words"}),
    Case({"a": [{"s": "'x'"}]}, "a.#(s=='x')", {"s": "'x'"}),
]

# What exists: KServe runs a step when the condition selects anything at all.
EXISTS = [
    Case({"a": None}, "a", None),
    Case({"a": False}, "a", False),
    Case({"a": ""}, "a", ""),
    Case({"a": 0}, "a", 0),
    Case({"a": []}, "a", []),
    Case({"a": {}}, "a", {}),
    Case({"a": 1}, "b", NOTHING),
    Case({"a": 1}, "a.b", NOTHING),
    Case({"a": [1]}, "a.1", NOTHING),
    Case({"a": []}, "a.#", 0),
    Case({"a": []}, "a.#(x==1)#", []),
    Case({"a": []}, "a.#(x==1)", NOTHING),
    Case({"a": 1}, "[missing]", []),
    Case({"a": 1}, "{missing}", {}),
    Case({"a": 1}, "[@this].#(a==2)", NOTHING),
    Case("text", "a", NOTHING),
    Case("text", "@this", "text"),
    Case(None, "@this", None),
    Case([], "#", 0),
    Case({"a": 1}, "#", NOTHING),
    Case({"#": 1}, "#", 1),
]

# Modifiers, multipaths and literals.
MODIFIERS = [
    Case(GUIDE, "@this.age", 37),
    Case(GUIDE, "[@this].0.age", 37),
    Case(GUIDE, "children.@reverse", ["Jack", "Alex", "Sara"]),
    Case(GUIDE, "children.@reverse.0", "Jack"),
    Case(GUIDE, "children|@reverse|0", "Jack"),
    Case(GUIDE, "name.@keys", ["first", "last"]),
    Case(GUIDE, "name.@values", ["Tom", "Anderson"]),
    Case(GUIDE, "friends.#.nets|@flatten", ["ig", "fb", "tw", "fb", "tw", "ig", "tw"]),
    Case({"a": [1, [2, [3]]]}, 'a.@flatten:{"deep":true}', [1, 2, 3]),
    Case({"a": [{"x": 1}, {"y": 2}, {"x": 3}]}, "a.@join", {"x": 3, "y": 2}),
    Case({"s": '{"x":1}'}, "s.@fromstr.x", 1),
    Case({"x": 1}, "@tostr", '{"x":1}'),
    Case(GUIDE, "@dig:first", ["Tom", "Dale", "Roger", "Jane"]),
    Case({"@type": "Person"}, "@type", "Person"),
    Case(
        GUIDE,
        '{name.first,age,"the_murphys":friends.#(last="Murphy")#.first}',
        {"first": "Tom", "age": 37, "the_murphys": ["Dale", "Jane"]},
    ),
    Case(
        GUIDE,
        '{name.first,age,"company":!"Happysoft","employed":!true}',
        {"first": "Tom", "age": 37, "company": "Happysoft", "employed": True},
    ),
    Case(GUIDE, "[name.first,age,missing]", ["Tom", 37]),
    Case(GUIDE, "{friends.#}", {"_": 3}),
    Case(GUIDE, "[name.first,age].1", 37),
    Case(GUIDE, "friends.0.[first,age]", ["Dale", 44]),
    Case({}, "!true", True),
    Case({}, "!null", None),
    Case({}, '!{"a":[1,2]}.a.1', 2),
    Case({"a": 1}, "..0.a", 1),
]


@pytest.mark.parametrize("case", REFERENCE_TABLE, ids=case_id)
def test_reference_table_and_kserve_conditions(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("case", SYNTAX_GUIDE, ids=case_id)
def test_paths_indexes_queries_and_pipes(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("case", TILDE, ids=case_id)
def test_tilde_operators(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("case", OPERATORS, ids=case_id)
def test_operators_follow_gos_type_rules(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("case", EXISTS, ids=case_id)
def test_exists(case: Case) -> None:
    check(case)


@pytest.mark.parametrize("case", MODIFIERS, ids=case_id)
def test_modifiers_multipaths_and_literals(case: Case) -> None:
    check(case)


# Conditions modelplane refuses (Go reads them without complaint, and they never or always match),
# with the problem and its position named.
# Paths that are probably mistakes, which Go's gjson evaluates all the same: (path, the problem named, its
# position, a document, what Go selects there, a document where Go selects nothing). The results follow
# gjson.go: parseObjectPath, parseArrayPath, parseQuery, parseSubSelectors and Get.
WARNED = [
    # An empty path or component is the key "".
    ("", "the path is empty", 1, {"": 3}, 3, {"a": 1}),
    (".predictions", "a path component is empty", 1, {"": {"predictions": 1}}, 1, {"predictions": 1}),
    ("a..b", "a path component is empty", 3, {"a": {"": {"b": 2}}}, 2, {"a": {"b": 2}}),
    ("a.", "nothing follows '.'", 3, {"a": {"": 1}}, 1, {"a": 1}),
    ("a|", "nothing follows '|'", 3, {"a": {"": 1}}, 1, {"a": {"b": 1}}),
    # A query whose brackets never close selects, like `#()`, an element that is a string, a number,
    # a boolean or an object with the key "".
    ("[@this].#(decision_picker==ERROR", "'(' is never closed", 10,
     {"": 0, "decision_picker": "x"}, {"": 0, "decision_picker": "x"}, {"decision_picker": "ERROR"}),
    ('#(a=="dog)', "'\"' is never closed", 6, ["x"], "x", [{"a": "dog"}]),
    ("instances.#()", "the query is empty", 13, {"instances": [1]}, 1, {"instances": [{"a": 1}]}),
    # Text after a multipath that is not `.` or `|`: Go drops the multipath and reads the rest.
    ("[@this]#(decision_picker==ERROR)", "expected '.' or '|' after ']'", 8,
     [{"decision_picker": "ERROR"}], {"decision_picker": "ERROR"}, {"decision_picker": "ERROR"}),
    # Brackets and quotes in a key are part of the key; a key is never an index.
    ("predictions[0]", "a '[' in a key must be escaped", 12, {"predictions[0]": 5}, 5, {"predictions": [5]}),
    ("predictions.0)", "')' closes nothing", 14, {"predictions": {"0)": 1}}, 1, {"predictions": [5]}),
    ('a"b', "'\"' is never closed", 2, {'a"b': 1}, 1, {"a": 1}),
    ('a"b"c', "a '\"' in a key must be escaped", 2, {'a"b"c': 1}, 1, {"abc": 1}),
    ("a\\", "'\\' at the end escapes nothing", 2, {"a": 1}, 1, {"a\\": 1}),
    # A query: `!` alone is no operator (the query asks whether `a` exists); a quoted value followed by
    # more text is compared as it is, quotes and all; text after the query is ignored.
    ("instances.#(a!b)", "unknown operator '!'", 14, {"instances": [{"a": 1}]}, {"a": 1}, {"instances": [{"b": 1}]}),
    ('instances.#(a=="x"y)', "unexpected text after the quoted value", 19,
     {"instances": [{"a": '"x"y'}]}, {"a": '"x"y'}, {"instances": [{"a": "x"}]}),
    ("instances.#(a==1)x", "expected '.', '|' or '#' after the query", 18,
     {"instances": [{"a": 1}]}, {"a": 1}, {"instances": [{"a": 2}]}),
    # An unknown `~` value never matches, but `#(...)#` and a multipath select something all the same.
    ("instances.#(a==~yes)#", "unknown '~' value", 16, {"instances": [{"a": 1}]}, [], {"instances": 1}),
    ("[instances.#(a==~yes)]", "unknown '~' value", 17, {}, [], None),
    ("[a,]", "a multipath member is empty", 4, {}, [], None),
    # A modifier argument that is not JSON: Go's modifier reads no option from it.
    ("@flatten:{deep}", "the modifier argument is not valid JSON", 10, [[1, [2]]], [1, [2]], None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "problem", "position", "document", "selected", "unmatched"),
    WARNED,
    ids=[row[0] or "<empty>" for row in WARNED],
)
def test_doubtful_conditions_are_evaluated_as_go_does_with_a_warning(
    path: str, problem: str, position: int, document: Any, selected: Any, unmatched: Any
) -> None:
    compiled = compile_path(path)
    assert compiled.warning is not None
    assert problem in compiled.warning
    assert compiled.warning.endswith(f"at position {position}")
    result = compiled.get(document)
    assert result.exists
    assert result.value == selected
    if unmatched is not None:
        assert not compiled.get(unmatched).exists


# Paths Go can never match, or that modelplane cannot evaluate: refused.
REFUSED = [
    ("instances.#(a==~yes)", "unknown '~' value", 16),
    ("a.#(b.#(c==~x))", "unknown '~' value", 12),
    ("[@this].#(a==~x).b", "unknown '~' value", 14),
    ("!{a}", "the literal is not valid JSON", 2),
    ("a." * 2049, "the path is longer than 4096 characters", 4097),
]


@pytest.mark.parametrize(("path", "problem", "position"), REFUSED, ids=[row[0][:20] for row in REFUSED])
def test_refused_conditions_name_the_problem_and_position(path: str, problem: str, position: int) -> None:
    with pytest.raises(PathSyntaxError) as caught:
        compile_path(path)
    assert problem in str(caught.value)
    assert f"at position {position}" in str(caught.value)
    assert caught.value.position == position - 1
    assert caught.value.refused
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "path",
    [
        r"a\[0\]",
        r"a\(b",
        r"a\"b",
        'friends.#(nets.#(=="fb"))#.first',
        "@type",
        "#",
        "..0",
        "a.*.b",
        "a|@this",
    ],
)
def test_unusual_but_meaningful_paths_are_accepted_without_a_warning(path: str) -> None:
    assert compile_path(path).warning is None


def test_escaped_key_characters() -> None:
    doc = {"a[0]": 1, "a(b": 2, 'a"b': 3, "a.b": 4, "a*": 5, "a|b": 6}
    assert compile_path(r"a\[0\]").get(doc).value == 1
    assert compile_path(r"a\(b").get(doc).value == 2
    assert compile_path(r"a\"b").get(doc).value == 3
    assert compile_path(r"a\.b").get(doc).value == 4
    assert compile_path(r"a\|b").get(doc).value == 6


def test_result_raw_is_compact_json() -> None:
    result = compile_path("friends.#(age>45)#").get(GUIDE)
    assert result.raw == (
        '[{"first":"Roger","last":"Craig","age":68,"nets":["fb","tw"]},'
        '{"first":"Jane","last":"Murphy","age":47,"nets":["ig","tw"]}]'
    )
    assert compile_path("name.first").get(GUIDE).raw == '"Tom"'
    assert compile_path("missing").get(GUIDE).raw == ""


def test_literals_json_has_no_spelling_for() -> None:
    result = compile_path("!nan").get({})
    assert result.exists and math.isnan(result.value)
    assert compile_path("!inf").get({}).raw == "Inf"


def test_a_compiled_path_serves_many_documents() -> None:
    path = compile_path("[@this].#(decision_picker==ERROR)")
    assert [path.get(doc).exists for doc in (PICK_ERROR, PICK_SUCCESS, {}, [], "x", None)] == [
        True,
        False,
        False,
        False,
        False,
        False,
    ]


def test_matches_raises_for_a_refused_condition() -> None:
    with pytest.raises(PathSyntaxError):
        matches({}, "a.#(b==~maybe)")


def test_deeply_nested_paths_are_refused_not_crashing() -> None:
    with pytest.raises(PathSyntaxError):
        compile_path("a." * 3000 + "a")


def test_wildcards_cannot_be_made_slow_by_the_document() -> None:
    doc = {"s": ["a" * 200_000]}
    assert not compile_path('s.#(%"*a*a*a*a*a*a*b")').get(doc).exists
    assert compile_path('s.#(%"*a*a*a*a*a*a*")').get(doc).exists


def test_reprs_name_the_selection() -> None:
    assert repr(compile_path("a").get({"a": 1})) == "Result(1)"
    assert repr(compile_path("b").get({"a": 1})) == "Result(<nothing>)"
    assert repr(compile_path("a")) == "CompiledPath('a')"


# Documents with a key twice, as Go's gjson reads their text: (document, path, what Go selects, or None
# when it selects nothing). A key selects the first member of its name; a path that goes on past the key
# tries each member of that name in turn (parseObject goes on scanning when the rest does not match).
DUPLICATE_KEYS = [
    (b'{"a":1,"a":2}', "a", 1),
    (b'{"a" : 1 , "a" : 2}', "a", 1),
    (b'{"a":{"x":1},"a":{"b":2}}', "a", {"x": 1}),
    (b'{"a":{"x":1},"a":{"b":2}}', "a.b", 2),
    (b'{"a":{"x":1},"a":{"b":2}}', "a.x", 1),
    (b'{"a":5,"a":{"b":2}}', "a.b", 2),
    (b'{"ab":1,"a\\u0062":2}', "ab", 1),  # names are compared after unescaping
    (b'{"a\\u0062":1,"ab":2}', "ab", 1),
    (b'{"ab":1,"ab":2}', "a*", 1),
    (b'{"a":[1],"a":[{"b":1}]}', "a.0.b", 1),
    (b'{"a":[1],"a":[{"b":1}]}', "a.#(b==1)", {"b": 1}),
    (b'{"a":[1],"a":[{"b":1}]}', "a.#(b==1)#", []),  # the first `a` already gave `[]`
    (b'[{"k":1,"k":2}]', "#(k==2)", None),
    (b'[{"k":1,"k":2}]', "#(k==1).k", 1),
    (b'{"o":{"k":1,"k":2}}', "o|k", 1),
]


@pytest.mark.parametrize(("raw", "path", "selected"), DUPLICATE_KEYS)
def test_duplicate_keys_resolve_as_go_resolves_them(raw: bytes, path: str, selected: Any) -> None:
    result = compile_path(path).get(parse_document(raw))
    assert result.exists is (selected is not None)
    if selected is not None:
        assert result.value == selected


def test_a_document_without_duplicate_keys_is_parsed_as_it_is() -> None:
    raw = b'{"a":"x\\":y","b":{"a":1},"c":[{"a":1},{"a":2}]}'
    document = parse_document(raw)
    assert document == orjson.loads(raw)
    assert type(document) is dict and type(document["b"]) is dict
    with pytest.raises(ValueError):
        parse_document(b"{oops")


# Strings whose escapes end next to a quote or a colon: the scan for keys must see where each ends.
ESCAPED_STRINGS = [
    rb'{"k\"":1,"k\"":2}',
    rb'{"a":"\\","b":"\\\":"}',
    rb'{"s":"x\\\"","t":"\\\\"}',
    rb'["a\":","b\\",":"]',
    rb'{"\u0022":1,"\"":2}',
    rb'{"a":"b\\" , "c" :"d\/\n\t\u00e9\\"}',
    rb'{"":"\"\"\"","x\\":{"\\":[{"y":"\\\\\"\\"}]}}',
    rb'{"caf\u00e9":"\\\"\u005c\"","caf\u00e9":0}',
]


@pytest.mark.parametrize("raw", ESCAPED_STRINGS)
def test_keys_are_found_past_escapes(raw: bytes) -> None:
    keys = []
    members = json.loads(raw, object_pairs_hook=lambda pairs: keys.extend(pairs) or dict(pairs))
    assert _key_count(raw) == len(keys)
    twice = _parsed_key_count(members) != len(keys)
    document = parse_document(raw)
    assert isinstance(document, DuplicateKeys) is twice
    if not twice:
        assert document == orjson.loads(raw)


def test_a_deeply_nested_document_is_read_and_matched() -> None:
    """orjson reads 1,024 levels; the check for duplicate keys must not stop at fewer."""
    raw = b'{"x":' + b"[" * 600 + b"1" + b"]" * 600 + b',"k":"v"}'
    document = parse_document(raw)
    assert compile_path("k").get(document).value == "v"
    assert matches(document, "k")


def test_a_document_orjson_refuses_is_read_as_go_reads_it() -> None:
    """Go's gjson checks syntax only: bytes that are not UTF-8 and lone surrogate escapes read as U+FFFD
    (Go compares such bytes as they are), a number beyond float64 as infinity."""
    assert parse_document(b'{"name":"caf\xe9","s":"\\udc00"}') == {"name": "caf\ufffd", "s": "\ufffd"}
    assert parse_document(b'{"n":1e400,"m":-1e999,"i":' + b"9" * 5000 + b"}") == {
        "n": math.inf,
        "m": -math.inf,
        "i": math.inf,
    }
    document = parse_document(b'{"a":"\xff","a":2}')
    assert isinstance(document, DuplicateKeys) and compile_path("a").get(document).value == "\ufffd"
    for refused in (b'{"n":NaN}', b"Infinity", b'{"a":"\xe9"', b'\xef\xbb\xbf{"a":1}'):
        with pytest.raises(ValueError):
            parse_document(refused)
