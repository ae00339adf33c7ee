"""Small numbers suppressed, as official statistics do (pure).

Any count from 1 to 4 is suppressed (0 is shown). A table whose cells add up to a shown total
(the partition) gives its suppressed cells' sum away by subtraction, and since 0 is shown each
suppressed cell is known to be at least 1: one suppressed cell is recovered exactly, and so are
k of them summing to k (each is 1) or to 4k (each is 4). So whenever any cell is suppressed, the
smallest non-zero cell that is not small (5 or more) is suppressed with them (secondary
suppression, ties broken by the cells' order); when there is no such cell, or the total itself
is 1 to 4, the total and every cell are. A share is withheld when its numerator, its
denominator, or the difference between them (the complement's count) would be suppressed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

SMALLEST_SHOWN = 5  # counts from 1 to SMALLEST_SHOWN - 1 are suppressed


def small(count: int) -> bool:
    """A count that may not be shown: 1 to 4."""
    return 0 < count < SMALLEST_SHOWN


def partition(total: tuple[str, int], cells: Mapping[str, int]) -> frozenset[str]:
    """The names to suppress of a total and the cells that add up to it (in the order given,
    which breaks ties in choosing the secondary cell)."""
    name, count = total
    everything = frozenset([name, *cells])
    if small(count):
        return everything
    primary = [cell for cell, value in cells.items() if small(value)]
    if not primary:
        return frozenset()
    large = [cell for cell, value in cells.items() if value >= SMALLEST_SHOWN]
    if not large:  # the suppressed cells' sum alone would be shown: nothing can cover it
        return everything
    secondary = min(large, key=lambda cell: cells[cell])  # min keeps the first of equals
    return frozenset([*primary, secondary])


def withheld(numerator: int, denominator: int) -> bool:
    """Whether numerator / denominator may not be shown: either side is small, or the count it
    leaves out (denominator - numerator) is."""
    return small(numerator) or small(denominator) or small(denominator - numerator)


def share(numerator: int, denominator: int, places: int = 3) -> float | None:
    """numerator / denominator to `places` decimals, or None when it is withheld or the
    denominator is 0."""
    if denominator == 0 or withheld(numerator, denominator):
        return None
    return round(numerator / denominator, places)


def shown(
    counts: Mapping[str, int], hidden: Sequence[str] | frozenset[str]
) -> dict[str, int | None]:
    """The counts as published: None for each one hidden."""
    return {name: None if name in hidden else value for name, value in counts.items()}
