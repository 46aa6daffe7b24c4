"""Mazes: their tokens, the shortest S->G path a label marks, and the check that a label marks one.

Tokens follow HRM's maze builder: 0 pad, then the characters of "# SGo" as 1..5 (wall, open,
start, goal, path). The input is a maze with one S and one G; the label is the same grid with
the cells of one shortest S->G path (S and G themselves excluded) marked 'o'.

When several shortest paths exist the label is the one `shortest_path` returns: BFS from S
visiting neighbours up, down, left, right, each cell remembering the first cell that reached
it. Augmented variants carry transformed paths, which BFS would not necessarily pick: evaluate
with `is_valid_path`, not exact match. maze_dataset.py builds the datasets.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

CHARSET = "# SGo"
WALL, OPEN, START, GOAL, PATH = 1, 2, 3, 4, 5
VOCAB_SIZE = len(CHARSET) + 1  # pad 0 comes first


def _flat_tokens(grid: Any, size: int) -> np.ndarray:
    tokens = np.asarray(grid).reshape(-1)
    if tokens.size != size * size:
        raise ValueError(f"grid must hold {size * size} tokens for size {size}, got {tokens.size}")
    return tokens


def _only_cell(tokens: np.ndarray, token: int) -> int:
    cells = np.flatnonzero(tokens == token)
    if len(cells) != 1:
        raise ValueError(f"a maze needs exactly one {CHARSET[token - 1]!r}, found {len(cells)}")
    return int(cells[0])


def _bfs_parents(passable: list[bool], size: int, start: int) -> list[int]:
    """Parent of every cell reached from `start` (start is its own parent; -1 = unreached).

    Neighbours are tried up, down, left, right and a cell keeps the first parent that
    reaches it, which is what makes the chosen shortest path deterministic.
    """
    parents = [-1] * len(passable)
    parents[start] = start
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        column = cell % size
        for neighbour, inside in (
            (cell - size, cell >= size),
            (cell + size, cell < len(passable) - size),
            (cell - 1, column > 0),
            (cell + 1, column < size - 1),
        ):
            if inside and passable[neighbour] and parents[neighbour] < 0:
                parents[neighbour] = cell
                queue.append(neighbour)
    return parents


def _path_to(parents: list[int], goal: int) -> list[int] | None:
    if parents[goal] < 0:
        return None
    path = [goal]
    while parents[path[-1]] != path[-1]:
        path.append(parents[path[-1]])
    return path[::-1]


def shortest_path(grid: Any, size: int) -> list[int] | None:
    """Flat cells of one shortest 4-connected S->G path, S and G included, or None if G is unreachable.

    `grid` holds tokens, shaped (size, size) or flat; open, S, G and path cells are walkable.
    Among several shortest paths the choice is deterministic (see `_bfs_parents`).
    """
    tokens = _flat_tokens(grid, size)
    start, goal = _only_cell(tokens, START), _only_cell(tokens, GOAL)
    passable = (tokens >= OPEN).tolist()
    return _path_to(_bfs_parents(passable, size, start), goal)


def is_valid_path(input_grid: Any, label_grid: Any, size: int) -> bool:
    """Whether `label_grid` is `input_grid` with exactly the inner cells of a shortest S->G path marked 'o'.

    The 'o' cells must be open in the input, number one less than the BFS distance, and
    connect S to G on their own; together that makes them exactly one shortest path.
    Raises ValueError when the input lacks exactly one S and one G (it is not a maze).
    """
    inputs, labels = _flat_tokens(input_grid, size), _flat_tokens(label_grid, size)
    marked = labels == PATH
    if not np.array_equal(np.where(marked, OPEN, labels), inputs):
        return False  # something besides open cells changed, or 'o' sits on a non-open cell
    shortest = shortest_path(inputs, size)
    if shortest is None or int(marked.sum()) != len(shortest) - 2:
        return False
    start, goal = shortest[0], shortest[-1]
    on_marked_cells = (marked | (labels == GOAL)).tolist()
    return _bfs_parents(on_marked_cells, size, start)[goal] >= 0


def label_for(inputs: np.ndarray, size: int) -> np.ndarray | None:
    """The label of a flat maze: `inputs` with the inner cells of `shortest_path` marked; None if G is unreachable."""
    path = shortest_path(inputs, size)
    if path is None:
        return None
    labels = inputs.copy()
    labels[path[1:-1]] = PATH
    return labels


def path_length(labels: np.ndarray) -> int:
    """Steps of the S->G path marked in a label grid (its 'o' cells plus one)."""
    return int(np.count_nonzero(labels == PATH)) + 1
