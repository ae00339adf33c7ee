"""RFC 8785 canonical JSON (app/wire/canonical.py), with the RFC's own examples."""

from __future__ import annotations

import json
import re
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.wire.canonical import _plain, _write, canonical_json

PROPERTY = settings(max_examples=150, deadline=None)


def test_the_rfcs_example_of_section_3_2_2() -> None:
    value = json.loads(
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    assert (
        canonical_json(value)
        == (
            '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
            '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
        ).encode()
    )


def test_the_rfcs_sorting_example_of_section_3_2_3() -> None:
    value = json.loads(
        '{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", "\\ufb33": "Hebrew Letter Dalet With'
        ' Dagesh", "1": "One", "\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control",'
        ' "\\u00f6": "Latin Small Letter O With Diaeresis"}'
    )
    assert (
        canonical_json(value)
        == (
            '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
            '"ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign",'
            '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
        ).encode()
    )


def test_names_sort_by_utf16_code_units_not_code_points() -> None:
    # U+1F600 is the surrogate pair D83D DE00, which sorts before U+FB33 in UTF-16,
    # though its code point is the larger.
    assert canonical_json({"\ufb33": 1, "\U0001f600": 2}) == '{"\U0001f600":2,"\ufb33":1}'.encode()


# RFC 8785 Appendix B: IEEE 754 bit patterns and what ECMAScript writes for them.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def from_bits(bits: str) -> float:
    return struct.unpack(">d", bytes.fromhex(bits))[0]


@pytest.mark.parametrize(("bits", "written"), APPENDIX_B)
def test_numbers_of_appendix_b(bits: str, written: str) -> None:
    assert canonical_json(from_bits(bits)) == written.encode()


@pytest.mark.parametrize(
    ("number", "written"),
    [
        (1.0, "1"),
        (-1.5, "-1.5"),
        (100.0, "100"),
        (1e20, "100000000000000000000"),
        (1.5e21, "1.5e+21"),
        (1e-7, "1e-7"),
        (1.25e-7, "1.25e-7"),
        (0.1, "0.1"),
        (123.456, "123.456"),
        (0, "0"),
        (-7, "-7"),
        (2**53, "9007199254740992"),
        (-(2**53), "-9007199254740992"),
    ],
)
def test_number_layout(number: float, written: str) -> None:
    assert canonical_json(number) == written.encode()


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("\x00\x1f", '"\\u0000\\u001f"'),
        ("\b\t\n\f\r", '"\\b\\t\\n\\f\\r"'),
        ('"\\/', '"\\"\\\\/"'),
        ("\x7f\u2028\u2029", '"\x7f\u2028\u2029"'),
        ("é😀", '"é😀"'),
    ],
)
def test_string_escapes_are_json_stringifys(text: str, written: str) -> None:
    assert canonical_json(text) == written.encode()
    # A float (or a name beyond ASCII) anywhere in a value takes the long way: the same escapes.
    assert canonical_json([text, 0.5]) == f"[{written},0.5]".encode()
    assert canonical_json({"é": text}) == f'{{"é":{written}}}'.encode()


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        2**53 + 1,
        -(2**53) - 1,
        "\ud800",
        {"\udc00": 1},
        [1, {"a": "x\udfffy"}],
    ],
    ids=["nan", "inf", "-inf", "2**53+1", "-2**53-1", "lone surrogate", "in a name", "nested"],
)
def test_values_json_cannot_carry_exactly_are_refused(value: Any) -> None:
    with pytest.raises(ValueError):
        canonical_json(value)


LONE = "a string holds a lone surrogate, which JSON text cannot carry (I-JSON)"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "nan has no JSON form"),
        ([float("-inf")], "-inf has no JSON form"),
        (2**53 + 1, "9007199254740993 is beyond 2**53: no IEEE 754 double holds it exactly"),
        (
            {"a": -(2**53) - 1},
            "-9007199254740993 is beyond 2**53: no IEEE 754 double holds it exactly",
        ),
        ("\ud800", LONE),
        ({"\udc00": 1}, LONE),
        ([0.5, "x\udfffy"], LONE),
    ],
    ids=["nan", "-inf", "2**53+1", "-2**53-1", "lone surrogate", "in a name", "after a float"],
)
def test_a_refusal_says_why(value: Any, message: str) -> None:
    # The log refuses to record such a value, and this is the reason it gives.
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        canonical_json(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({1: "a"}, "JSON object member names are strings, not int"),
        ({"a": {None: 1}}, "JSON object member names are strings, not NoneType"),
        (b"bytes", "bytes is not a JSON value"),
        ({1, 2}, "set is not a JSON value"),
        ([0.5, object()], "object is not a JSON value"),
    ],
    ids=["int", "None", "b", "s", "o"],
)
def test_what_is_not_json_is_refused(value: Any, message: str) -> None:
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        canonical_json(value)


def test_floats_inside_objects_and_arrays_are_written_as_numbers() -> None:
    # Where Python's repr and ECMAScript differ: integral floats, -0, and the exponent ranges.
    value = {"a": 1.0, "b": [-0.0, 1e-7, 1e21, 1e16, 0.00001], "c": {"d": 2.5}}
    assert (
        canonical_json(value)
        == b'{"a":1,"b":[0,1e-7,1e+21,10000000000000000,0.00001],"c":{"d":2.5}}'
    )


class Count(int):
    pass


# What takes the quick way (json.dumps, which writes these exactly as RFC 8785 does) and what
# must not: the log hashes every entry, and its entries are plain.
PLAIN = [
    "text",
    True,
    None,
    0,
    2**53,
    -(2**53),
    {"a": "x", "b": [1, "y", None], "c": {"d": False}},
    ["x", 1, ("y", {"e": 2})],
    {},
    [],
]
NOT_PLAIN = [
    1.5,
    2**53 + 1,
    -(2**53) - 1,
    {"é": 1},
    {1: "a"},
    {"a": 1.5},
    {"a": [1, 0.5]},
    ["x", 0.5],
    [{"é": 1}],
    b"bytes",
    Count(3),  # exact types only: a subclass may write itself its own way
]


@pytest.mark.parametrize("value", PLAIN)
def test_plain_values_take_the_quick_way(value: Any) -> None:
    assert _plain(value) is True


@pytest.mark.parametrize("value", NOT_PLAIN)
def test_others_take_the_long_way(value: Any) -> None:
    assert _plain(value) is False


def test_nesting_and_literals() -> None:
    assert canonical_json({"b": [True, None, {"d": [], "c": {}}], "a": False}) == (
        b'{"a":false,"b":[true,null,{"c":{},"d":[]}]}'
    )
    assert canonical_json(("tuple", 1)) == b'["tuple",1]'


# ---- properties -----------------------------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@PROPERTY
@given(values)
def test_the_canonical_form_reads_back_as_the_value(value: Any) -> None:
    # JCS numbers are IEEE 754 doubles, so read them back as doubles (json.loads would make
    # an integral one a Python int, and 2.0**68 is not the int 295147905179352830000).
    assert json.loads(canonical_json(value), parse_int=float) == value


@PROPERTY
@given(st.dictionaries(st.text(), values, max_size=6), st.randoms())
def test_member_order_does_not_matter(value: dict[str, Any], random: Any) -> None:
    members = list(value.items())
    random.shuffle(members)
    assert canonical_json(dict(members)) == canonical_json(value)


@PROPERTY
@given(values)
def test_the_canonical_form_is_a_fixed_point(value: Any) -> None:
    once = canonical_json(value)
    assert canonical_json(json.loads(once, parse_int=float)) == once


ascii_names = st.text(st.characters(codec="ascii"), max_size=8)
entries = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ascii_names, inner, max_size=4),
    max_leaves=20,
)


@PROPERTY
@given(entries)
def test_without_floats_or_non_ascii_names_it_is_plain_json_dumps(value: Any) -> None:
    # What the README tells auditors: for the log's entries, json.dumps gives the same bytes.
    dumped = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(value) == dumped.encode()


@PROPERTY
@given(values)
def test_the_quick_way_writes_what_the_long_way_does(value: Any) -> None:
    # canonical_json hands plain values to json.dumps; every value must come out the same.
    parts: list[str] = []
    _write(value, parts.append)
    assert canonical_json(value) == "".join(parts).encode()
