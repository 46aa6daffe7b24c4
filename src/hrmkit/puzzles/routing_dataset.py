"""City-routing datasets in the reference puzzle format: random maps, an example per vehicle, write.

Each base scenario is a random city map with S and G, and yields one example per vehicle (the
tokens, rules and oracle are in routing.py). A group is one base scenario: one puzzle holding an
example per vehicle (with `aug`, 8 puzzles, one per dihedral transform of the map), so training
sees a map's vehicles side by side.

Maps: road lines at random spacings across both axes; one in four (at least one per axis) is an
avenue running edge to edge, the others are cut at every crossing into segments that are each a
lane, a street or missing; one diagonal highway (two from size 20) runs as a 4-connected
staircase whose junctions with other roads are avenue cells (so every vehicle can cross it);
then a few short jams and a few closures. Depots are drawn at least size//2 apart
(Manhattan). A scenario in which some vehicle cannot reach G is regenerated, never relaxed. Test
maps are drawn first, and no map (depots ignored, any of its 8 dihedral transforms) occurs twice
across train and test, so test inputs never occur in train.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hrmkit.puzzles.build import (
    BuildRun,
    blank_identifier_metadata,
    require_at_least,
    uniform_arrays,
)
from hrmkit.puzzles.format import PuzzleDatasetMetadata
from hrmkit.puzzles.grid import dihedral_transform
from hrmkit.puzzles.routing import (
    AVENUE,
    BUILDING,
    CLOSURE,
    GOAL,
    HIGHWAY,
    JAM_OFFSET,
    JAMMED_HIGHWAY,
    LANE,
    PATH,
    START,
    STREET,
    VEHICLE_TOKENS,
    VEHICLES,
    VOCAB_SIZE,
    count_optimal_routes,
    is_legal_path,
    label_for,
    token_map,
    vehicle_table,
)
from hrmkit.puzzles.selection import (
    MAX_CONSECUTIVE_REJECTIONS,
    ProgressCallback,
    Selection,
    select,
    spread,
)

MIN_SIZE = 8  # room for two road lines per axis and depots size//2 apart

# Why a candidate scenario is turned down (counted in the build summary).
_REPEATED_MAP = "map already taken"
_NO_ROUTE = "no route for "  # + the first vehicle (in the configured order) that cannot reach G
_TIED_ROUTES = "tied routes for "  # + the first vehicle with several minimum-cost routes (unique_routes only)

# Written into hrmkit_build.json; a stable identifier (older datasets carry it), not a module path.
BUILDER = "hrmkit.data.routing"


@dataclass
class RoutingBuildConfig:
    """What `build_routing` makes."""

    size: int = 30
    """Grid side (>= 8); every example holds size*size map cells plus one vehicle token."""
    train_bases: int = 240
    """Base training scenarios (distinct maps); each gives one example per vehicle, all in one group."""
    test_bases: int = 100
    """Test scenarios (maps never seen in train); each gives one example per vehicle."""
    vehicles: tuple[str, ...] | str = VEHICLES
    """Vehicles (names or one comma-separated string) from bike, car, van, truck; every map has a route for each."""
    unique_routes: bool = False
    """Keep only scenarios where every vehicle has exactly one minimum-cost route, so exact match = cost-optimality."""
    aug: bool = False
    """Add the 8 dihedral transforms of each training scenario to its group (test is never augmented)."""
    seed: int = 0
    """Seed for everything random; the same seed builds the same bytes."""


# --------------------------------------------------------------------------- the map generator


def _line_positions(size: int, rng: np.random.Generator) -> list[int]:
    """Where road lines cross one axis: blocks of 2..4 buildings between them."""
    positions, at = [], int(rng.integers(0, 3))
    while at < size:
        positions.append(at)
        at += int(rng.integers(3, 6))
    return positions


def _paint_lines(grid: np.ndarray, lines: list[int], crossings: list[int], rng: np.random.Generator) -> None:
    """Roads along the rows `lines` of `grid` (pass a transpose for columns); crossing cells keep the bigger road."""
    size = grid.shape[1]
    avenues = set(rng.choice(lines, max(1, len(lines) // 4), replace=False).tolist())
    bounds = sorted({0, size - 1, *crossings})
    for line in lines:
        if line in avenues:
            grid[line] = np.maximum(grid[line], AVENUE)
            continue
        for begin, end in zip(bounds, bounds[1:]):
            draw = rng.random()
            if draw < 0.2:
                continue  # a missing segment: the block runs through
            road = LANE if draw < 0.55 else STREET
            grid[line, begin : end + 1] = np.maximum(grid[line, begin : end + 1], road)


def _paint_highway(grid: np.ndarray, rng: np.random.Generator) -> None:
    """A 45-degree highway as a 4-connected staircase from the top or left edge to the far side."""
    size = len(grid)
    if rng.random() < 0.5:
        row, column = 0, int(rng.integers(0, size // 2))
    else:
        row, column = int(rng.integers(0, size // 2)), 0
    step_right = bool(rng.integers(2))
    rows, columns = [], []
    while row < size and column < size:
        rows.append(row)
        columns.append(column)
        if step_right:
            column += 1
        else:
            row += 1
        step_right = not step_right
    if rng.random() < 0.5:
        columns = [size - 1 - column for column in columns]  # running down-left instead
    # A junction with a road is an avenue cell: a 4-connected staircase of highway alone would
    # wall off everything on one side from the vehicles that may not drive on highways.
    under = grid[rows, columns]
    grid[rows, columns] = np.where(under == BUILDING, HIGHWAY, np.maximum(under, AVENUE))


def _road_neighbours(grid: np.ndarray, row: int, column: int, roads: tuple[int, ...]) -> list[tuple[int, int]]:
    size = len(grid)
    return [
        (r, c)
        for r, c in ((row - 1, column), (row + 1, column), (row, column - 1), (row, column + 1))
        if 0 <= r < size and 0 <= c < size and grid[r, c] in roads
    ]


def _add_jams_and_closures(grid: np.ndarray, rng: np.random.Generator) -> None:
    roads = (LANE, STREET, AVENUE, HIGHWAY)
    road_cells = np.argwhere(np.isin(grid, roads))
    for _ in range(max(1, round(0.03 * len(road_cells)))):
        row, column = road_cells[rng.integers(len(road_cells))].tolist()
        for _ in range(int(rng.integers(2, 5))):  # a short jam along the road
            if grid[row, column] in roads:
                grid[row, column] += JAM_OFFSET
            onward = _road_neighbours(grid, row, column, roads)
            if not onward:
                break
            row, column = onward[rng.integers(len(onward))]
    for row, column in road_cells[rng.choice(len(road_cells), max(1, round(0.02 * len(road_cells))), replace=False)]:
        grid[row, column] = CLOSURE


def _place_depots(grid: np.ndarray, rng: np.random.Generator) -> bool:
    """Put S and G on two buildings fronting an open road, at least size//2 apart; False if no such pair."""
    size = len(grid)
    open_road = np.pad((grid >= LANE) & (grid <= JAMMED_HIGHWAY), 1)
    next_to_road = open_road[:-2, 1:-1] | open_road[2:, 1:-1] | open_road[1:-1, :-2] | open_road[1:-1, 2:]
    fronting = np.argwhere((grid == BUILDING) & next_to_road)
    if len(fronting) < 2:
        return False
    start = fronting[rng.integers(len(fronting))]
    far = fronting[np.abs(fronting - start).sum(axis=1) >= size // 2]
    if not len(far):
        return False
    goal = far[rng.integers(len(far))]
    grid[tuple(start)], grid[tuple(goal)] = START, GOAL
    return True


def random_city(size: int, rng: np.random.Generator) -> np.ndarray:
    """A [size, size] map of cell tokens with one S and one G (see the module docstring)."""
    for _ in range(100):
        grid = np.full((size, size), BUILDING, dtype=np.uint8)
        rows, columns = _line_positions(size, rng), _line_positions(size, rng)
        _paint_lines(grid, rows, columns, rng)
        _paint_lines(grid.T, columns, rows, rng)  # a transposed view: paints the columns in place
        for _ in range(1 + (size >= 20)):
            _paint_highway(grid, rng)
        _add_jams_and_closures(grid, rng)
        if _place_depots(grid, rng):
            return grid
    raise RuntimeError(f"could not place two depots on a {size}x{size} map in 100 tries")


def _encode(grid: np.ndarray, vehicle: str) -> np.ndarray:
    return np.append(grid.reshape(-1), VEHICLE_TOKENS[vehicle]).astype(np.uint8)


def _scenario(grid: np.ndarray, vehicles: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """([vehicles, seq_len] inputs, labels) of one map; from the first vehicle with no route on, label rows are zeros."""
    size = len(grid)
    inputs = np.stack([_encode(grid, vehicle) for vehicle in vehicles])
    labels = np.zeros_like(inputs)
    for row, input_row in enumerate(inputs):
        label = label_for(input_row, size)
        if label is None:
            break  # the scenario is turned down anyway: spare the other vehicles' searches
        labels[row] = label
    return inputs, labels


def _scenario_candidates(size: int, vehicles: tuple[str, ...], rng: np.random.Generator) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    while True:
        yield _scenario(random_city(size, rng), vehicles)


# --------------------------------------------------------------------------- symmetries and splits


def _bare_map(inputs: np.ndarray, size: int) -> np.ndarray:
    """[size, size] map of a scenario's first row with its depots turned back into buildings."""
    grid = inputs[0, :-1].reshape(size, size)
    return np.where((grid == START) | (grid == GOAL), BUILDING, grid).astype(np.uint8)


def _dihedral_rows(rows: np.ndarray, size: int, index: int) -> np.ndarray:
    """Dihedral transform `index` of the map part of every row; the vehicle position stays put."""
    maps = np.stack([dihedral_transform(row[:-1].reshape(size, size), index).reshape(-1) for row in rows])
    return np.concatenate([maps, rows[:, -1:]], axis=1)


def _split_arrays(selection: Selection, size: int, vehicles: int, aug: bool) -> dict[str, np.ndarray]:
    """The five reference arrays: a group per scenario, a puzzle per (transformed) map, an example per vehicle."""
    variants = range(8) if aug else range(1)
    inputs = [_dihedral_rows(rows, size, index) for rows in selection.inputs for index in variants]
    labels = [_dihedral_rows(rows, size, index) for rows in selection.labels for index in variants]
    empty = np.zeros((0, size * size + 1), dtype=np.uint8)
    return uniform_arrays(np.concatenate([empty, *inputs]), np.concatenate([empty, *labels]),
                          examples_per_puzzle=vehicles, puzzles_per_group=len(variants))


def _metadata(size: int, num_groups: int, vehicles: int) -> PuzzleDatasetMetadata:
    return blank_identifier_metadata(VOCAB_SIZE, size * size + 1, num_groups, examples_per_puzzle=vehicles)


# --------------------------------------------------------------------------- building


def vehicle_names(vehicles: Sequence[str] | str) -> tuple[str, ...]:
    """Vehicle names from a sequence or one comma-separated string; ValueError for unknown, repeated or none."""
    names = [name.strip() for name in vehicles.split(",") if name.strip()] if isinstance(vehicles, str) else [
        str(name) for name in vehicles]
    unknown = [name for name in names if name not in VEHICLES]
    if unknown:
        raise ValueError(f"unknown vehicle {unknown[0]!r}; choose from {', '.join(VEHICLES)}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"vehicle {repeated[0]!r} is listed more than once")
    if not names:
        raise ValueError(f"vehicles must name at least one of {', '.join(VEHICLES)}")
    return tuple(names)


def _validate_config(cfg: RoutingBuildConfig) -> tuple[str, ...]:
    if not isinstance(cfg.size, int) or cfg.size < MIN_SIZE:
        raise ValueError(f"size must be an integer >= {MIN_SIZE}, got {cfg.size!r}")
    if cfg.size * cfg.size + 1 > 1 << 20:
        raise ValueError(f"size {cfg.size} is too large: a row would hold {cfg.size * cfg.size + 1} tokens")
    require_at_least(1, cfg, ("train_bases", "test_bases"))
    require_at_least(0, cfg, ("seed",))
    return vehicle_names(cfg.vehicles)


def _select(candidates: Iterator[tuple[np.ndarray, np.ndarray]], count: int, taken_maps: set[bytes],
            cfg: RoutingBuildConfig, vehicles: tuple[str, ...], report: ProgressCallback, description: str) -> Selection:
    """Scenarios every vehicle can drive whose map (in any dihedral transform) is new; `taken_maps` grows."""

    def rejection(inputs: np.ndarray, labels: np.ndarray) -> str | None:
        missing = [vehicle for vehicle, label in zip(vehicles, labels) if not label.any()]
        if missing:
            return _NO_ROUTE + missing[0]
        bare = _bare_map(inputs, cfg.size)
        if any(dihedral_transform(bare, index).tobytes() in taken_maps for index in range(8)):
            return _REPEATED_MAP
        if cfg.unique_routes:
            tied = [vehicle for vehicle, row in zip(vehicles, inputs) if count_optimal_routes(row, cfg.size) > 1]
            return _TIED_ROUTES + tied[0] if tied else None
        return None

    def impossible(selection: Selection) -> str:
        counts = {prefix: sum(n for reason, n in selection.rejected.items() if reason.startswith(prefix))
                  for prefix in (_NO_ROUTE, _TIED_ROUTES)}
        return (f"{description}: made {len(selection.inputs)} of {count}, then {MAX_CONSECUTIVE_REJECTIONS} "
                f"scenarios in a row were turned down ({counts[_NO_ROUTE]} so far without a route for some vehicle, "
                f"{counts[_TIED_ROUTES]} with tied routes, {selection.rejected[_REPEATED_MAP]} with a map already "
                "taken); ask for fewer scenarios or a larger size")

    return select(candidates, count, rejection, lambda inputs: taken_maps.add(_bare_map(inputs, cfg.size).tobytes()),
                  True, report, description, impossible)


def _route_stats(selection: Selection, vehicles: tuple[str, ...], size: int) -> dict[str, Any] | None:
    """Per-vehicle route costs and steps, and how many different routes the vehicles of a scenario take."""
    if not selection.labels:
        return None
    costs: dict[str, list[int]] = {vehicle: [] for vehicle in vehicles}
    steps: dict[str, list[int]] = {vehicle: [] for vehicle in vehicles}
    distinct, tied = [], 0
    for inputs, labels in zip(selection.inputs, selection.labels):
        routes = set()
        for vehicle, input_row, label_row in zip(vehicles, inputs, labels):
            tied += count_optimal_routes(input_row, size) > 1
            _, cost = is_legal_path(input_row, label_row, size)
            costs[vehicle].append(int(cost))
            marked = label_row[:-1] == PATH
            steps[vehicle].append(int(marked.sum()) + 1)
            routes.add(marked.tobytes())
        distinct.append(len(routes))
    return {
        "cost": {vehicle: spread(np.array(values)) for vehicle, values in costs.items()},
        "steps": {vehicle: spread(np.array(values)) for vehicle, values in steps.items()},
        "distinct_routes_per_scenario": spread(np.array(distinct)),
        "examples_with_tied_routes": tied,  # their exact label is one of several optimal answers
    }


def _rejections(selection: Selection) -> dict[str, Any]:
    by_vehicle = {
        key: {reason[len(prefix):]: n for reason, n in sorted(selection.rejected.items()) if reason.startswith(prefix)}
        for key, prefix in (("no_route", _NO_ROUTE), ("tied_routes", _TIED_ROUTES))
    }
    return {"map_already_taken": selection.rejected[_REPEATED_MAP], **by_vehicle}


def build_routing(
    cfg: RoutingBuildConfig,
    out_dir: str | Path,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Build a train/test routing dataset at `out_dir`; returns the summary saved in hrmkit_build.json
    with the seconds taken added (they are not saved, so the same seed builds the same bytes)."""
    vehicles = _validate_config(cfg)
    run = BuildRun.start(BUILDER, cfg, out_dir, overwrite, progress)
    taken_maps: set[bytes] = set()
    test = _select(_scenario_candidates(cfg.size, vehicles, np.random.default_rng([cfg.seed, 0])), cfg.test_bases,
                   taken_maps, cfg, vehicles, run.report, "test scenarios")
    train = _select(_scenario_candidates(cfg.size, vehicles, np.random.default_rng([cfg.seed, 1])), cfg.train_bases,
                    taken_maps, cfg, vehicles, run.report, "train scenarios")
    train_arrays = _split_arrays(train, cfg.size, len(vehicles), cfg.aug)
    test_arrays = _split_arrays(test, cfg.size, len(vehicles), aug=False)
    summary = run.summary({
        "vehicles": list(vehicles),
        "tokens": token_map(),
        "vehicle_table": {vehicle: vehicle_table()[vehicle] for vehicle in vehicles},
        "train_groups": len(train.inputs),
        "train_examples": len(train_arrays["inputs"]),
        "test_scenarios": len(test.inputs),
        "test_examples": len(test_arrays["inputs"]),
        "routes": {"train": _route_stats(train, vehicles, cfg.size), "test": _route_stats(test, vehicles, cfg.size)},
        "rejected": {"train": _rejections(train), "test": _rejections(test)},
    })
    metadata = {"train": _metadata(cfg.size, len(train.inputs), len(vehicles)),
                "test": _metadata(cfg.size, len(test.inputs), len(vehicles))}
    return run.write({"train": train_arrays, "test": test_arrays}, metadata, summary)
