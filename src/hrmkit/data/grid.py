"""Grid helpers shared by the maze and routing builders and the dataset checker."""

from __future__ import annotations

from collections import deque

import numpy as np


def reachable_cells(walkable: np.ndarray, size: int, start: int) -> np.ndarray:
    """Cells of a flat ``size`` x ``size`` grid 4-connected to ``start`` through walkable cells."""
    seen = np.zeros(walkable.shape, dtype=bool)
    seen[start] = True
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        row, column = divmod(cell, size)
        for neighbour, inside in (
            (cell - size, row > 0),
            (cell + size, row < size - 1),
            (cell - 1, column > 0),
            (cell + 1, column < size - 1),
        ):
            if inside and walkable[neighbour] and not seen[neighbour]:
                seen[neighbour] = True
                queue.append(neighbour)
    return seen
