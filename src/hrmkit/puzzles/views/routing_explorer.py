"""Page data for exploring a city-routing dataset without a model: base scenarios and their vehicles.

For each base scenario (one group: the map as built, not its dihedral copies) and each vehicle
the dataset drives on it, the page gets the vehicle's entry cost of every cell (0: it may not
enter), the oracle's optimal route and its cost, and how many routes share that cost. The costs
and routes come from ``hrmkit.puzzles.routing`` itself, so the page never re-implements the rules.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hrmkit.puzzles import routing
from hrmkit.puzzles.format import PuzzleSplit
from hrmkit.viz.page_data import ViewerError, tokens_text


def _base_scenario_rows(split: PuzzleSplit, n: int) -> list[tuple[int, np.ndarray]]:
    """(group number, input rows of the group's first puzzle) for the first ``n`` groups."""
    found = []
    for set_name in split.metadata.sets:
        arrays = split.sets[set_name]
        group_indices = np.asarray(arrays["group_indices"], dtype=np.int64)
        puzzle_indices = np.asarray(arrays["puzzle_indices"], dtype=np.int64)
        for first_puzzle in group_indices[:-1].tolist():
            if len(found) == n:
                return found
            begin, end = puzzle_indices[first_puzzle], puzzle_indices[first_puzzle + 1]
            found.append((len(found), np.asarray(arrays["inputs"][begin:end])))
    return found


def _vehicle_record(row: np.ndarray, scenario: routing.Scenario, size: int) -> dict[str, Any]:
    route = routing.optimal_route(row, size)
    return {
        "costs": tokens_text(routing.entry_costs(scenario.grid, scenario.vehicle)),
        "route": [] if route is None else route[1],
        "cost": None if route is None else route[0],
        "optimal_routes": routing.count_optimal_routes(row, size),
    }


def routing_explorer_page(split: PuzzleSplit, n: int) -> dict[str, Any]:
    size = math.isqrt(max(split.metadata.seq_len - 1, 0))
    if size < 1 or size * size + 1 != split.metadata.seq_len:
        raise ViewerError(f"seq_len {split.metadata.seq_len} is not a square city map plus a vehicle token")
    scenarios = []
    for group, rows in _base_scenario_rows(split, n):
        vehicles: dict[str, Any] = {}
        grid = None
        for row in rows:
            try:
                scenario = routing.decode(row, size)
            except ValueError as error:
                raise ViewerError(f"{split.split} scenario {group}: {error}") from None
            grid = scenario.grid if grid is None else grid
            vehicles[scenario.vehicle] = _vehicle_record(row, scenario, size)
        if grid is None:
            continue
        scenarios.append({"title": f"scenario {group}", "map": tokens_text(grid), "vehicles": vehicles})
    if not scenarios:
        raise ViewerError("the split holds no scenarios")
    return {
        "size": size,
        "scenarios": scenarios,
        "vehicles": [vehicle for vehicle in routing.VEHICLES if any(vehicle in s["vehicles"] for s in scenarios)],
        "vehicle_table": routing.vehicle_table(),
        "token_names": list(routing.TOKEN_NAMES),
    }
