"""Small numbers suppressed, as official statistics do (pure).

Any count from 1 to 4 is suppressed (0 is shown). A table whose cells add up to a shown total
(the partition) would give a single suppressed cell away by subtraction, so when exactly one of
its cells is suppressed the smallest other non-zero cell is suppressed too (secondary
suppression); when the total itself is 1 to 4, every cell is. A share is withheld when its
numerator or its denominator would be suppressed.
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
    if small(count):
        return frozenset([name, *cells])
    primary = [cell for cell, value in cells.items() if small(value)]
    if len(primary) != 1:
        return frozenset(primary)
    others = [(value, cell) for cell, value in cells.items() if value and cell not in primary]
    if not others:  # the total is the one cell: it is small, handled above
        return frozenset(primary)
    secondary = min(others, key=lambda pair: (pair[0], list(cells).index(pair[1])))[1]
    return frozenset([*primary, secondary])


def share(numerator: int, denominator: int, places: int = 3) -> float | None:
    """numerator / denominator to `places` decimals, or None when either is small or the
    denominator is 0."""
    if denominator == 0 or small(numerator) or small(denominator):
        return None
    return round(numerator / denominator, places)


def shown(
    counts: Mapping[str, int], hidden: Sequence[str] | frozenset[str]
) -> dict[str, int | None]:
    """The counts as published: None for each one hidden."""
    return {name: None if name in hidden else value for name, value in counts.items()}
