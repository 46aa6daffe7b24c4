"""Grid helpers shared by the puzzle kinds and the dataset checker: 4-neighbours, reachability, the shape
of a marked route, and the 8 dihedral transforms in the reference's order."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator

import numpy as np


def neighbours(cell: int, size: int) -> Iterator[int]:
    """The up / down / left / right neighbours of a cell of a flat ``size`` x ``size`` grid, in that order."""
    row, column = divmod(cell, size)
    if row > 0:
        yield cell - size
    if row < size - 1:
        yield cell + size
    if column > 0:
        yield cell - 1
    if column < size - 1:
        yield cell + 1


def reachable_cells(walkable: np.ndarray, size: int, start: int) -> np.ndarray:
    """Cells of a flat ``size`` x ``size`` grid 4-connected to ``start`` through walkable cells."""
    seen = np.zeros(walkable.shape, dtype=bool)
    seen[start] = True
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        for neighbour in neighbours(cell, size):
            if walkable[neighbour] and not seen[neighbour]:
                seen[neighbour] = True
                queue.append(neighbour)
    return seen


def cells_off_a_route(on_route: np.ndarray, size: int, ends: tuple[int, int]) -> np.ndarray:
    """Flat indices of the cells of ``on_route`` (a flat ``size`` x ``size`` mask, both ends included)
    whose number of 4-neighbours on the route is not a route's: one for either end, two for every
    other cell. When every cell of ``on_route`` is reachable from an end through it, none such means
    the cells are one simple route between the ends, each next to the cells before and after it
    only: no branch, loop or blob."""
    square = on_route.reshape(size, size).astype(np.int8)
    touching = np.zeros_like(square)
    touching[1:] += square[:-1]
    touching[:-1] += square[1:]
    touching[:, 1:] += square[:, :-1]
    touching[:, :-1] += square[:, 1:]
    expected = np.full(size * size, 2, dtype=np.int8)
    expected[list(ends)] = 1
    return np.flatnonzero(on_route & (touching.reshape(-1) != expected))


# The reference's order: identity, rot90, rot180, rot270, flip left-right, flip up-down,
# transpose, anti-transpose.
_DIHEDRAL_TRANSFORMS: tuple[Callable[[np.ndarray], np.ndarray], ...] = (
    lambda grid: grid,
    lambda grid: np.rot90(grid, 1),
    lambda grid: np.rot90(grid, 2),
    lambda grid: np.rot90(grid, 3),
    np.fliplr,
    np.flipud,
    np.transpose,
    lambda grid: np.fliplr(np.rot90(grid, 1)),
)

# Inverse of each dihedral transform (rot90 <-> rot270, the rest self-inverse), and whether it swaps rows and columns.
DIHEDRAL_INVERSE = (0, 3, 2, 1, 4, 5, 6, 7)
DIHEDRAL_SWAPS_AXES = (False, True, False, True, False, False, True, True)


def dihedral_transform(grid: np.ndarray, index: int) -> np.ndarray:
    """Dihedral transform `index` (0..7, the reference's order) of a 2-D grid."""
    return np.ascontiguousarray(_DIHEDRAL_TRANSFORMS[index](grid))
