"""app/wire/strict_json.py: I-JSON as the exchange reads it, each refusal naming its place."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.wire.strict_json import MAX_DEPTH, JsonRefused, loads

# (case, JSON text, the pointer refused, words the refusal must hold)
REFUSED = [
    ("a member twice", '{"a": 1, "a": 2}', "/a", "given twice"),
    ("twice, deep in an array", '{"a": [{}, {"b": {"c": 1, "c": 1}}]}', "/a/1/b/c", "twice"),
    ("twice, once as an escape", '{"noms": 1, "\\u006eoms": 2}', "/noms", "twice"),
    ("twice, a name with ~ and /", '{"x": {"a~/b": 1, "a~/b": 2}}', "/x/a~0~1b", "twice"),
    ("twice, the empty name", '{"": 1, "": 2}', "/", "twice"),
    ("a lone high surrogate", '{"a": ["ok", "\\ud800"]}', "/a/1", "lone surrogate"),
    ("a lone low surrogate", '{"a": "x\\udc00y"}', "/a", "lone surrogate"),
    ("a pair reversed", '{"a": "\\ude00\\ud83d"}', "/a", "lone surrogate"),
    ("a surrogate in a name", '{"a": {"\\ud800": 1}}', "/a", "member name"),
    ("a surrogate name, twice", '{"\\ud800": 1, "\\ud800": 2}', "", "member name"),
    ("NaN", '{"a": NaN}', "", "not valid JSON"),
    ("Infinity", "[-Infinity]", "", "not valid JSON"),
    ("bad syntax", '{"a": }', "", "not valid JSON"),
    ("too deep", "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "", f"deeper than {MAX_DEPTH}"),
    ("deeper than the stack", "[" * 100_000 + "]" * 100_000, "", "not valid JSON"),
]


@pytest.mark.parametrize(
    ("text", "pointer", "says"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_what_another_parser_could_read_otherwise_is_refused_where_it_is(text, pointer, says):
    with pytest.raises(JsonRefused, match=says) as refused:
        loads(text)
    assert refused.value.pointer == pointer


def test_bytes_must_be_utf8():
    with pytest.raises(JsonRefused) as refused:
        loads(b'{"a": "\xff"}')
    assert (refused.value.pointer, refused.value.detail) == ("", "is not valid JSON")


@pytest.mark.parametrize(
    "text",
    [
        '{"a": "\\ud83d\\ude00"}',  # a surrogate pair is one character
        '{"a": "\\\\ud800"}',  # an escaped backslash, then text: no surrogate at all
        '{"a": {"b": 1}, "b": {"a": 1}}',  # the same name in different objects
        "[" * MAX_DEPTH + "]" * MAX_DEPTH,
    ],
)
def test_what_is_i_json_is_read_as_python_reads_it(text):
    assert loads(text) == json.loads(text)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@given(JSON)
def test_any_document_without_faults_reads_back_as_it_was_written(document):
    assert loads(json.dumps(document)) == document
    assert loads(json.dumps(document, ensure_ascii=False).encode()) == document
