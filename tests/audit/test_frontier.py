"""log_verify.Frontier: the tree verify rebuilds, a leaf at a time or a run of leaves at a time
(in perfect subtrees), has the RFC 9162 root at every size."""

from __future__ import annotations

import random

from app.audit import merkle
from app.audit.verify import Frontier


def test_leaves_added_one_by_one_make_the_rfc_root_at_every_size() -> None:
    leaves = [merkle.leaf_hash(bytes([i])) for i in range(70)]
    frontier = Frontier()
    assert frontier.root() == merkle.root_hash([])
    for size, leaf in enumerate(leaves, 1):
        frontier.add(leaf)
        assert frontier.root() == merkle.root_hash(leaves[:size])


def test_runs_of_leaves_make_the_same_tree_as_leaves_one_by_one() -> None:
    rng = random.Random(9162)
    leaves = [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(300)]
    for _ in range(50):
        frontier, done = Frontier(), 0
        while done < len(leaves):
            run = rng.choice([0, 1, 2, 3, 5, 8, 16, 17, 64, 100])
            frontier.extend(leaves[done : done + run])
            done = min(done + run, len(leaves))
            assert frontier.size == done
            assert frontier.root() == merkle.root_hash(leaves[:done])
        one_by_one = Frontier()
        for leaf in leaves:
            one_by_one.add(leaf)
        assert frontier.nodes == one_by_one.nodes
