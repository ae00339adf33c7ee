"""The log's Merkle tree (app/audit/merkle.py) against RFC 9162 section 2.1.

The expected hashes and proofs here are written out by hand from the RFC's definitions with
hashlib, never computed by the code under test; the figure in RFC 6962 section 2.1.3 gives the
names a..l used below.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.audit.merkle import (
    EMPTY_ROOT,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    perfect_subtree_hash,
    root_hash,
    subtree_hash_from_nodes,
    subtree_hasher,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

PROPERTY = settings(max_examples=60, deadline=None)


def H(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def N(left: bytes, right: bytes) -> bytes:
    return H(b"\x01" + left + right)


# Leaf i holds the single byte i. Names follow RFC 6962's figure for the 7-leaf tree.
L = [H(b"\x00" + bytes([i])) for i in range(9)]
a, b, c, d, e, f, j = L[0], L[1], L[2], L[3], L[4], L[5], L[6]
g, h, i_ = N(a, b), N(c, d), N(e, f)
k = N(g, h)
l_ = N(i_, j)
N67 = N(L[6], L[7])
N0_8 = N(k, N(i_, N67))

ROOTS = [
    H(b""),
    a,
    N(a, b),
    N(g, c),
    k,
    N(k, e),
    N(k, i_),
    N(k, l_),
    N0_8,
    N(N0_8, L[8]),
]


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert leaf_hash(b"\x05") == H(b"\x00\x05")
    assert node_hash(a, b) == H(b"\x01" + a + b)
    assert leaf_hash(b"") == H(b"\x00") != EMPTY_ROOT == H(b"")


@pytest.mark.parametrize("size", range(10))
def test_roots_of_sizes_0_to_9(size: int) -> None:
    assert root_hash(L[:size]) == ROOTS[size]
    assert tree_root(size, subtree_hasher(L)) == ROOTS[size]


def test_no_root_of_a_negative_size() -> None:
    with pytest.raises(ValueError, match=exactly("a tree size is not negative")):
        tree_root(-1, subtree_hasher(L))


@pytest.mark.parametrize(("start", "end"), [(0, 10), (3, 3), (-1, 2)])
def test_no_subtree_outside_the_leaves(start: int, end: int) -> None:
    with pytest.raises(
        ValueError, match=exactly(f"[{start}, {end}) is not a range of a 9-leaf tree")
    ):
        subtree_hasher(L)(start, end)


# The reference test vectors of RFC 6962's reference implementation (certificate-transparency).
CT_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


@pytest.mark.parametrize("size", range(1, 9))
def test_the_reference_implementations_roots(size: int) -> None:
    assert root_hash([leaf_hash(x) for x in CT_LEAVES[:size]]).hex() == CT_ROOTS[size - 1]


INCLUSION = [
    # (index, tree size, audit path): RFC 6962 section 2.1.3's own examples first
    (0, 7, [b, h, l_]),
    (3, 7, [c, g, l_]),
    (4, 7, [f, j, k]),
    (6, 7, [i_, k]),
    (0, 1, []),
    (0, 2, [b]),
    (1, 2, [a]),
    (2, 3, [g]),
    (1, 3, [a, c]),
    (2, 4, [d, g]),
    (4, 5, [k]),
    (0, 6, [b, h, i_]),
    (5, 6, [e, k]),
    (7, 8, [L[6], i_, k]),
    (8, 9, [N0_8]),
    (3, 9, [c, g, N(i_, N67), L[8]]),
]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_proofs_by_hand(index: int, size: int, path: list[bytes]) -> None:
    assert inclusion_proof(index, size, subtree_hasher(L)) == path
    verify_inclusion(L[index], index, size, proof=path, root=ROOTS[size])


CONSISTENCY = [
    # (first, second, proof): RFC 6962 section 2.1.3's examples first
    (3, 7, [c, d, g, l_]),
    (4, 7, [l_]),
    (6, 7, [i_, j, k]),
    (1, 2, [b]),
    (1, 3, [b, c]),
    (2, 3, [c]),
    (2, 5, [h, e]),
    (3, 4, [c, d, g]),
    (5, 8, [e, f, N67, k]),
    (8, 9, [L[8]]),
    (7, 9, [j, L[7], i_, k, L[8]]),
    # nothing to prove: the empty tree is a prefix of all, a tree of itself
    (0, 5, []),
    (0, 0, []),
    (5, 5, []),
]


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY)
def test_consistency_proofs_by_hand(first: int, second: int, proof: list[bytes]) -> None:
    assert consistency_proof(first, second, subtree_hasher(L)) == proof
    verify_consistency(
        first, second, first_root=ROOTS[first], second_root=ROOTS[second], proof=proof
    )


# ---- refusals -------------------------------------------------------------------------------

OTHER = [H(b"\x00other" + bytes([i])) for i in range(9)]


def flip(value: bytes) -> bytes:
    return bytes([value[0] ^ 1]) + value[1:]


# What each refusal says: ProofError names why a proof does not hold (the log's auditors and
# `exchange audit verify` pass it on), so the message is checked whole.
NOT_THE_ROOT = "the inclusion proof does not lead to the root"
TOO_SHORT = "the inclusion proof is shorter than the path to the root"
TOO_LONG = "the inclusion proof is longer than the path to the root"
NOT_A_HASH = "a hash is 32 bytes"


def not_in(index: int, size: int) -> str:
    return f"leaf index {index} is not in a tree of size {size}"


def inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> Callable[[], None]:
    """A refusal to expect: verifying this proof."""
    return lambda: verify_inclusion(leaf, index, size, proof=proof, root=root)


def consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> Callable[[], None]:
    """A refusal to expect: verifying this proof."""
    return lambda: verify_consistency(
        first, second, first_root=first_root, second_root=second_root, proof=proof
    )


INCLUSION_REFUSALS: list[tuple[str, str, Callable[[], None]]] = [
    ("wrong root", NOT_THE_ROOT, inclusion(d, 3, 7, [c, g, l_], ROOTS[6])),
    ("flipped root", NOT_THE_ROOT, inclusion(d, 3, 7, [c, g, l_], flip(ROOTS[7]))),
    ("wrong leaf", NOT_THE_ROOT, inclusion(c, 3, 7, [c, g, l_], ROOTS[7])),
    (
        "leaf data, not its hash",
        NOT_THE_ROOT,
        inclusion(H(b"\x03"), 3, 7, [c, g, l_], ROOTS[7]),
    ),
    ("wrong index", NOT_THE_ROOT, inclusion(d, 2, 7, [c, g, l_], ROOTS[7])),
    (
        "a size the proof is not for",
        TOO_SHORT,
        inclusion(d, 3, 9, [c, g, l_], ROOTS[7]),
    ),
    ("truncated proof", TOO_SHORT, inclusion(d, 3, 7, [c, g], ROOTS[7])),
    ("empty proof", TOO_SHORT, inclusion(d, 3, 7, [], ROOTS[7])),
    ("extra hash at the end", TOO_LONG, inclusion(d, 3, 7, [c, g, l_, a], ROOTS[7])),
    ("extra hash in front", TOO_LONG, inclusion(d, 3, 7, [a, c, g, l_], ROOTS[7])),
    ("reordered proof", NOT_THE_ROOT, inclusion(d, 3, 7, [g, c, l_], ROOTS[7])),
    (
        "tampered proof hash",
        NOT_THE_ROOT,
        inclusion(d, 3, 7, [c, flip(g), l_], ROOTS[7]),
    ),
    ("index == size", not_in(7, 7), inclusion(a, 7, 7, [], ROOTS[7])),
    # Past the last leaf of a one-leaf tree, an empty path from the leaf is "the root".
    ("index == size == 1", not_in(1, 1), inclusion(a, 1, 1, [], a)),
    ("index > size", not_in(9, 7), inclusion(a, 9, 7, [], ROOTS[7])),
    ("negative index", not_in(-1, 7), inclusion(a, -1, 7, [], ROOTS[7])),
    ("empty tree", not_in(0, 0), inclusion(a, 0, 0, [], ROOTS[0])),
    ("a single leaf with a proof", TOO_LONG, inclusion(a, 0, 1, [a], ROOTS[1])),
    ("a short hash", NOT_A_HASH, inclusion(d, 3, 7, [c, g[:31], l_], ROOTS[7])),
    ("a long hash", NOT_A_HASH, inclusion(d, 3, 7, [c, g + b"\x00", l_], ROOTS[7])),
    # Hashes of any other length, each one that would otherwise lead to its root.
    (
        "a short leaf that is the root",
        NOT_A_HASH,
        inclusion(b"abc", 0, 1, [], b"abc"),
    ),
    (
        "a short leaf",
        NOT_A_HASH,
        inclusion(b"abc", 0, 2, [b], node_hash(b"abc", b)),
    ),
    (
        "a short proof hash",
        NOT_A_HASH,
        inclusion(a, 0, 2, [b"x"], node_hash(a, b"x")),
    ),
    ("a root that is not bytes", NOT_A_HASH, inclusion(a, 0, 1, [], bytearray(a))),
    (
        "a proof from another tree",
        NOT_THE_ROOT,
        inclusion(
            d, 3, 7, inclusion_proof(3, 7, subtree_hasher([*L[:3], d, *OTHER[4:]])), ROOTS[7]
        ),
    ),
]


def exactly(message: str) -> str:
    """A `match` for pytest.raises that takes the message whole."""
    return f"^{re.escape(message)}$"


@pytest.mark.parametrize(
    ("message", "refusal"),
    [(message, refusal) for _, message, refusal in INCLUSION_REFUSALS],
    ids=[name for name, _, _ in INCLUSION_REFUSALS],
)
def test_inclusion_refusals(message: str, refusal: Callable[[], None]) -> None:
    with pytest.raises(ProofError, match=exactly(message)):
        refusal()


NOT_THE_FIRST = "the consistency proof does not lead to the first root"
NOT_THE_SECOND = "the consistency proof does not lead to the second root"
SHORTER = "the consistency proof is shorter than the path to the root"
LONGER = "the consistency proof is longer than the path to the root"
NOTHING_TO_PROVE = "between these sizes a consistency proof is empty"


def backwards(first: int, second: int) -> str:
    return f"no consistency proof from size {first} to size {second}"


P3_7 = [c, d, g, l_]  # PROOF(3, D[7])
CONSISTENCY_REFUSALS: list[tuple[str, str, Callable[[], None]]] = [
    ("wrong first root", NOT_THE_FIRST, consistency(3, 7, ROOTS[4], ROOTS[7], P3_7)),
    (
        "wrong second root",
        NOT_THE_SECOND,
        consistency(3, 7, ROOTS[3], ROOTS[8], P3_7),
    ),
    ("wrong first size", LONGER, consistency(2, 7, ROOTS[3], ROOTS[7], P3_7)),
    ("wrong second size", SHORTER, consistency(3, 9, ROOTS[3], ROOTS[7], P3_7)),
    ("truncated proof", SHORTER, consistency(3, 7, ROOTS[3], ROOTS[7], P3_7[:-1])),
    (
        "extra hash at the end",
        LONGER,
        consistency(3, 7, ROOTS[3], ROOTS[7], [*P3_7, a]),
    ),
    (
        "extra hash in front",
        LONGER,
        consistency(3, 7, ROOTS[3], ROOTS[7], [a, *P3_7]),
    ),
    (
        "tampered hash",
        NOT_THE_SECOND,
        consistency(3, 7, ROOTS[3], ROOTS[7], [c, flip(d), g, l_]),
    ),
    (
        "empty proof",
        "the consistency proof is empty",
        consistency(3, 7, ROOTS[3], ROOTS[7], []),
    ),
    (
        "power of two, root repeated",
        LONGER,
        consistency(4, 7, k, ROOTS[7], [k, l_]),
    ),
    (
        "first > second",
        backwards(7, 3),
        consistency(7, 3, ROOTS[7], ROOTS[3], P3_7),
    ),
    ("negative first", backwards(-1, 3), consistency(-1, 3, ROOTS[0], ROOTS[3], [])),
    (
        "first == 0 with a proof",
        NOTHING_TO_PROVE,
        consistency(0, 3, ROOTS[0], ROOTS[3], [ROOTS[3]]),
    ),
    (
        "first == 0, not the empty root",
        "the first root is not the empty tree's",
        consistency(0, 3, a, ROOTS[3], []),
    ),
    (
        "equal sizes, other roots",
        "two trees of the same size with different roots",
        consistency(5, 5, ROOTS[5], flip(ROOTS[5]), []),
    ),
    (
        "equal sizes with a proof",
        NOTHING_TO_PROVE,
        consistency(5, 5, ROOTS[5], ROOTS[5], [a]),
    ),
    (
        "a short hash",
        NOT_A_HASH,
        consistency(3, 7, ROOTS[3], ROOTS[7], [c, d, g, l_[:-1]]),
    ),
    # Hashes of any other length, each one that would otherwise lead to its roots.
    (
        "junk second root from the empty tree",
        NOT_A_HASH,
        consistency(0, 3, EMPTY_ROOT, b"junk", []),
    ),
    (
        "a short first root",
        NOT_A_HASH,
        consistency(4, 7, b"abc", node_hash(b"abc", l_), [l_]),
    ),
    (
        "a short proof hash",
        NOT_A_HASH,
        consistency(4, 7, k, node_hash(k, b"x"), [b"x"]),
    ),
    (
        "a proof from another tree",
        NOT_THE_SECOND,
        consistency(
            3, 7, ROOTS[3], ROOTS[7], consistency_proof(3, 7, subtree_hasher([*L[:3], *OTHER[3:]]))
        ),
    ),
]


@pytest.mark.parametrize(
    ("message", "refusal"),
    [(message, refusal) for _, message, refusal in CONSISTENCY_REFUSALS],
    ids=[name for name, _, _ in CONSISTENCY_REFUSALS],
)
def test_consistency_refusals(message: str, refusal: Callable[[], None]) -> None:
    with pytest.raises(ProofError, match=exactly(message)):
        refusal()


@pytest.mark.parametrize(("index", "size"), [(0, 0), (3, 3), (4, 3), (-1, 3)])
def test_no_inclusion_proof_outside_the_tree(index: int, size: int) -> None:
    with pytest.raises(ProofError, match=exactly(not_in(index, size))):
        inclusion_proof(index, size, subtree_hasher(L))


@pytest.mark.parametrize(("first", "second"), [(4, 3), (-1, 3), (1, 0)])
def test_no_consistency_proof_backwards(first: int, second: int) -> None:
    with pytest.raises(ProofError, match=exactly(backwards(first, second))):
        consistency_proof(first, second, subtree_hasher(L))


# ---- generation against verification, exhaustively up to 64 leaves -------------------------

LEAVES_64 = [leaf_hash(i.to_bytes(2, "big")) for i in range(64)]
HASHER_64 = subtree_hasher(LEAVES_64)
ROOTS_64 = [root_hash(LEAVES_64[:n]) for n in range(65)]


def test_every_inclusion_proof_up_to_64_leaves() -> None:
    for size in range(1, 65):
        for index in range(size):
            proof = inclusion_proof(index, size, HASHER_64)
            verify_inclusion(LEAVES_64[index], index, size, proof=proof, root=ROOTS_64[size])
            with pytest.raises(ProofError):  # the neighbour's leaf is not at this index
                verify_inclusion(
                    LEAVES_64[index - 1], index, size, proof=proof, root=ROOTS_64[size]
                )
            if size < 64:  # nor is the proof good for the next tree
                with pytest.raises(ProofError):
                    verify_inclusion(
                        LEAVES_64[index], index, size + 1, proof=proof, root=ROOTS_64[size + 1]
                    )


def test_every_consistency_proof_up_to_64_leaves() -> None:
    for second in range(1, 65):
        for first in range(1, second):
            proof = consistency_proof(first, second, HASHER_64)
            verify_consistency(
                first, second, first_root=ROOTS_64[first], second_root=ROOTS_64[second], proof=proof
            )
            with pytest.raises(ProofError):
                verify_consistency(
                    first,
                    second,
                    first_root=ROOTS_64[first],
                    second_root=ROOTS_64[second],
                    proof=proof[:-1],
                )
            with pytest.raises(ProofError):
                verify_consistency(
                    first,
                    second,
                    first_root=ROOTS_64[first],
                    second_root=ROOTS_64[second],
                    proof=[*proof, a],
                )


def test_stored_nodes_answer_every_subtree_a_proof_asks_for() -> None:
    asked: set[tuple[int, int]] = set()

    def recording(start: int, end: int) -> bytes:
        asked.add((start, end))
        return HASHER_64(start, end)

    for size in range(1, 65):
        for index in range(size):
            inclusion_proof(index, size, recording)
            consistency_proof(index, size, recording)

    def stored_node(level: int, index: int) -> bytes:
        return HASHER_64(index << level, (index + 1) << level)

    for start, end in asked:
        assert subtree_hash_from_nodes(start, end, stored_node) == HASHER_64(start, end)
    with pytest.raises(ValueError, match=exactly("[1, 3) is not a subtree of an RFC 9162 tree")):
        subtree_hash_from_nodes(1, 3, stored_node)


@pytest.mark.parametrize(("start", "end"), [(3, 3), (4, 3), (-1, 2)])
def test_stored_nodes_answer_no_empty_or_backward_range(start: int, end: int) -> None:
    def stored_node(level: int, index: int) -> bytes:
        return HASHER_64(index << level, (index + 1) << level)

    with pytest.raises(ValueError, match=exactly(f"[{start}, {end}) is not a range of leaves")):
        subtree_hash_from_nodes(start, end, stored_node)


def test_a_proof_at_a_million_leaves_asks_for_log_n_subtrees() -> None:
    calls: list[tuple[int, int]] = []

    def counting(start: int, end: int) -> bytes:
        calls.append((start, end))
        return H(f"{start}:{end}".encode())

    size = 1_000_000
    inclusion_proof(123_456, size, counting)
    assert len(calls) == 20  # ceil(log2(10**6))
    calls.clear()
    consistency_proof(654_321, size, counting)
    assert 0 < len(calls) <= 2 * 20

    node_lookups: list[tuple[int, int]] = []

    def stored_node(level: int, index: int) -> bytes:
        node_lookups.append((level, index))
        return H(f"{level}:{index}".encode())

    subtree_hash_from_nodes(524_288, size, stored_node)
    assert len(node_lookups) <= size.bit_length()


# ---- properties over random trees -----------------------------------------------------------

leaves = st.lists(st.binary(max_size=8), min_size=1, max_size=300).map(
    lambda data: [leaf_hash(x) for x in data]
)


@PROPERTY
@given(leaves, st.data())
def test_inclusion_holds_and_binds_the_leaf(tree: list[bytes], data: st.DataObject) -> None:
    size = data.draw(st.integers(1, len(tree)), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = inclusion_proof(index, size, subtree_hasher(tree))
    root = root_hash(tree[:size])
    verify_inclusion(tree[index], index, size, proof=proof, root=root)
    other = H(b"not in the tree")
    with pytest.raises(ProofError):
        verify_inclusion(other, index, size, proof=proof, root=root)
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1), label="tampered")
        tampered = [*proof[:position], flip(proof[position]), *proof[position + 1 :]]
        with pytest.raises(ProofError):
            verify_inclusion(tree[index], index, size, proof=tampered, root=root)


@PROPERTY
@given(leaves, st.data())
def test_consistency_holds_and_binds_both_roots(tree: list[bytes], data: st.DataObject) -> None:
    second = data.draw(st.integers(1, len(tree)), label="second")
    first = data.draw(st.integers(0, second), label="first")
    proof = consistency_proof(first, second, subtree_hasher(tree))
    first_root, second_root = root_hash(tree[:first]), root_hash(tree[:second])
    verify_consistency(first, second, first_root=first_root, second_root=second_root, proof=proof)
    with pytest.raises(ProofError):
        verify_consistency(
            first, second, first_root=flip(first_root), second_root=second_root, proof=proof
        )
    if first > 0:  # the empty tree is a prefix of every tree, whatever its root
        with pytest.raises(ProofError):
            verify_consistency(
                first, second, first_root=first_root, second_root=flip(second_root), proof=proof
            )


@PROPERTY
@given(leaves, st.data())
def test_a_rewritten_history_is_not_consistent(tree: list[bytes], data: st.DataObject) -> None:
    tree = [*tree, H(b"\x00one more")]
    second = data.draw(st.integers(2, len(tree)), label="second")
    first = data.draw(st.integers(1, second - 1), label="first")
    rewritten = list(tree)
    changed = data.draw(st.integers(0, first - 1), label="changed")
    rewritten[changed] = flip(rewritten[changed])
    proof = consistency_proof(first, second, subtree_hasher(rewritten))
    with pytest.raises(ProofError):
        verify_consistency(
            first,
            second,
            first_root=root_hash(tree[:first]),
            second_root=root_hash(rewritten[:second]),
            proof=proof,
        )


def test_the_logs_pure_core_imports_no_database_or_web_framework() -> None:
    code = (
        "import sys, app.wire.canonical, app.audit.merkle, app.audit.checkpoint; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sqlalchemy', 'fastapi', 'jose'}))"
    )
    root = Path(__file__).resolve().parents[2]
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert run.stdout.strip() == "[]"


@pytest.mark.parametrize("size", [1, 2, 4, 8, 64])
def test_a_perfect_subtree_hash_is_the_trees_root(size: int) -> None:
    leaves = [leaf_hash(bytes([i])) for i in range(size)]
    assert perfect_subtree_hash(leaves) == root_hash(leaves)


@pytest.mark.parametrize("size", [0, 3, 6])
def test_a_perfect_subtree_has_a_power_of_two_leaves(size: int) -> None:
    with pytest.raises(ValueError, match=exactly(f"{size} leaves do not make a perfect subtree")):
        perfect_subtree_hash([leaf_hash(b"")] * size)
