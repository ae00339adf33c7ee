"""The exchange log's Merkle tree, as RFC 9162 section 2.1 defines it. Pure: no I/O, no database.

Hashes are SHA-256. A leaf's hash is over 0x00 and its data, a node's over 0x01 and its two
children, and the tree hash of n leaves (MTH) splits them at the largest power of two below n.

Proofs are made over a `SubtreeHash`, a callable answering MTH(D[start:end]) for the ranges the
RFC's recursion asks about. A proof at tree size n asks O(log n) of them, so a storage layer can
answer from stored node hashes (see `subtree_hash_from_nodes`) without loading the leaves;
`subtree_hasher` answers from leaf hashes in memory, for tests and small trees.

Verification follows sections 2.1.3.2 and 2.1.4.2 step by step. Every verifier returns None when
the proof holds and raises ProofError, naming why, when it does not: a failure cannot be mistaken
for success by a caller that forgets to look at a return value.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}): the hash of the empty string

SubtreeHash = Callable[[int, int], bytes]
"""subtree_hash(start, end) -> MTH(D[start:end]), for 0 <= start < end <= tree size."""

StoredNode = Callable[[int, int], bytes]
"""stored_node(level, index) -> MTH of the perfect subtree [index << level, (index+1) << level)."""


class ProofError(Exception):
    """A proof does not hold, or cannot be asked for (an index outside the tree, first > second)."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def perfect_subtree_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of 2**k leaf hashes, level by level: a pair of nodes at a time, no recursion. (For a
    power of two the RFC's split is always the middle.)"""
    level = list(leaf_hashes)
    if not level or len(level) & (len(level) - 1):
        raise ValueError(f"{len(level)} leaves do not make a perfect subtree")
    while len(level) > 1:
        level = [
            hashlib.sha256(b"\x01" + left + right).digest()
            for left, right in zip(level[::2], level[1::2], strict=True)
        ]
    return level[0]


def _split(size: int) -> int:
    """k: the largest power of two smaller than size (size > 1)."""
    return 1 << ((size - 1).bit_length() - 1)


def subtree_hasher(leaf_hashes: Sequence[bytes]) -> SubtreeHash:
    """A SubtreeHash over leaf hashes held in memory (memoised)."""
    leaves = tuple(leaf_hashes)

    @functools.cache
    def subtree_hash(start: int, end: int) -> bytes:
        if not 0 <= start < end <= len(leaves):
            raise ValueError(f"[{start}, {end}) is not a range of a {len(leaves)}-leaf tree")
        if end - start == 1:
            return leaves[start]
        middle = start + _split(end - start)
        return node_hash(subtree_hash(start, middle), subtree_hash(middle, end))

    return subtree_hash


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a list of leaf hashes, the empty list included."""
    return tree_root(len(leaf_hashes), subtree_hasher(leaf_hashes))


def tree_root(tree_size: int, subtree_hash: SubtreeHash) -> bytes:
    if tree_size < 0:
        raise ValueError("a tree size is not negative")
    return subtree_hash(0, tree_size) if tree_size else EMPTY_ROOT


def subtree_hash_from_nodes(start: int, end: int, stored_node: StoredNode) -> bytes:
    """MTH(D[start:end]) from the perfect subtrees that make it up, largest first.

    Every range the proofs ask about is either a perfect subtree or the right edge of one, so a
    store of perfect-subtree hashes (at most 2n of them) answers any of it in O(log n) lookups.
    """
    if not 0 <= start < end:
        raise ValueError(f"[{start}, {end}) is not a range of leaves")
    pieces: list[bytes] = []
    offset, size = start, end - start
    for level in reversed(range(size.bit_length())):
        if size >> level & 1:
            if offset % (1 << level):
                raise ValueError(f"[{start}, {end}) is not a subtree of an RFC 9162 tree")
            pieces.append(stored_node(level, offset >> level))
            offset += 1 << level
    tree = pieces.pop()
    while pieces:
        tree = node_hash(pieces.pop(), tree)
    return tree


def inclusion_proof(index: int, tree_size: int, subtree_hash: SubtreeHash) -> list[bytes]:
    """PATH(index, D[tree_size]) of RFC 9162 section 2.1.3.1: the audit path, leaf side first."""
    if not 0 <= index < tree_size:
        raise ProofError(f"leaf index {index} is not in a tree of size {tree_size}")
    path: list[bytes] = []
    start, end = 0, tree_size
    while end - start > 1:
        middle = start + _split(end - start)
        if index < middle:
            path.append(subtree_hash(middle, end))
            end = middle
        else:
            path.append(subtree_hash(start, middle))
            start = middle
    path.reverse()
    return path


def consistency_proof(first: int, second: int, subtree_hash: SubtreeHash) -> list[bytes]:
    """PROOF(first, D[second]) of RFC 9162 section 2.1.4.1.

    The RFC defines it for 0 < first < second. For first == 0 (the empty tree is a prefix of
    every tree) and first == second there is nothing to prove: the proof is empty.
    """
    if not 0 <= first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    if first in (0, second):
        return []
    path: list[bytes] = []
    start, end = 0, second
    known = True  # the RFC's b: whether MTH(D[start:end]) is the first tree's root itself
    while end != first:
        middle = start + _split(end - start)
        if first <= middle:
            path.append(subtree_hash(middle, end))
            end = middle
        else:
            path.append(subtree_hash(start, middle))
            start = middle
            known = False
    if not known:
        path.append(subtree_hash(start, end))
    path.reverse()
    return path


def _check_hashes(*hashes: bytes) -> None:
    for value in hashes:
        if not isinstance(value, bytes) or len(value) != HASH_SIZE:
            raise ProofError(f"a hash is {HASH_SIZE} bytes")


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, *, proof: Sequence[bytes], root: bytes
) -> None:
    """RFC 9162 section 2.1.3.2: that leaf (a leaf hash) is at index in the tree with root."""
    _check_hashes(leaf, root, *proof)
    if not 0 <= index < tree_size:  # step 1
        raise ProofError(f"leaf index {index} is not in a tree of size {tree_size}")
    fn, sn, r = index, tree_size - 1, leaf  # steps 2 and 3
    for p in proof:  # step 4
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # step 5
        raise ProofError("the inclusion proof is shorter than the path to the root")
    if r != root:
        raise ProofError("the inclusion proof does not lead to the root")


def verify_consistency(
    first: int, second: int, *, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 section 2.1.4.2: that the tree of size first is a prefix of the one of second.

    The RFC's algorithm is for 0 < first < second. The edges, as for consistency_proof: from
    size 0 the proof must be empty and first_root the empty tree's; between equal sizes the
    proof must be empty and the roots equal.
    """
    _check_hashes(first_root, second_root, *proof)
    if not 0 <= first <= second:
        raise ProofError(f"no consistency proof from size {first} to size {second}")
    if first == 0 or first == second:
        if proof:
            raise ProofError("between these sizes a consistency proof is empty")
        if first == 0 and first_root != EMPTY_ROOT:
            raise ProofError("the first root is not the empty tree's")
        if first == second and first_root != second_root:
            raise ProofError("two trees of the same size with different roots")
        return
    if not proof:  # step 1
        raise ProofError("the consistency proof is empty")
    path = list(proof)
    if first & (first - 1) == 0:  # step 2
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            raise ProofError("the consistency proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # step 7
        raise ProofError("the consistency proof is shorter than the path to the root")
    if fr != first_root:
        raise ProofError("the consistency proof does not lead to the first root")
    if sr != second_root:
        raise ProofError("the consistency proof does not lead to the second root")
