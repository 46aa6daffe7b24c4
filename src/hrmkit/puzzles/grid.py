"""Grid helpers shared by the maze and routing builders and the dataset checker."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

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
