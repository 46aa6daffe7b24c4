"""City-routing datasets: vehicles, the A* oracle against independent searches, the builder and its checker."""

import heapq
import json
import re
import shutil
from collections import deque
from pathlib import Path

import numpy as np
import pytest

from hrmkit.puzzles.check import (
    check_dataset,
    path_scores,
)
from hrmkit.puzzles.check_paths import routing_label_fault
from hrmkit.puzzles.format import load_split
from hrmkit.puzzles.kind import puzzle_kind
from hrmkit.puzzles.routing import (
    JAM_FACTOR,
    PATH,
    TOKEN_CHARS,
    VEHICLE_COSTS,
    VEHICLE_TOKENS,
    VEHICLES,
    VOCAB_SIZE,
    astar,
    count_optimal_routes,
    decode,
    entry_costs,
    is_legal_path,
    judge_path,
    optimal_cost,
    optimal_route,
    path_cost,
    render,
    vehicle_table,
)
from hrmkit.puzzles.routing_dataset import (
    RoutingBuildConfig,
    _scenario,
    build_routing,
    random_city,
    vehicle_names,
)

SIZE = 10

# S and G are depots on the left and right; a lane runs straight between two avenues, which are
# joined along the top by an avenue and along the bottom by a street.
#   bike:  the lane 3 + 6*1 + 3 + 1 = 13;   top avenue 12*3 + 1 = 37;   bottom 9 + 12 + 9 + 1 = 31
#   car:   the lane 2 + 6*4 + 2 + 1 = 29;   top avenue 12*2 + 1 = 25;   bottom 6 + 18 + 6 + 1 = 31
#   van:   no lanes;                        top avenue 25;              bottom 6 + 24 + 6 + 1 = 37
#   truck: no lanes, no streets;            top avenue 12*3 + 1 = 37
TOWN = [
    "##########",
    "#========#",
    "#=######=#",
    "S=......=G",
    "#=######=#",
    "#=------=#",
    "##########",
    "##########",
    "##########",
    "##########",
]
LANE_ROUTE = [(3, column) for column in range(1, 9)]
TOP_ROUTE = [(3, 1), (2, 1), *[(1, column) for column in range(1, 9)], (2, 8), (3, 8)]


def city(rows: list[str]) -> np.ndarray:
    return np.array([[TOKEN_CHARS.index(char) for char in row] for row in rows], dtype=np.uint8)


def row_for(grid: np.ndarray, vehicle: str) -> np.ndarray:
    return np.append(grid.reshape(-1), VEHICLE_TOKENS[vehicle]).astype(np.uint8)


def label_with(input_row: np.ndarray, cells: list[tuple[int, int]]) -> np.ndarray:
    label = input_row.copy()
    for row, column in cells:
        label[row * SIZE + column] = PATH
    label[-1] = 0
    return label


def route_cells(route: list[int]) -> list[tuple[int, int]]:
    return [divmod(cell, SIZE) for cell in route[1:-1]]


def build(tmp_path: Path, name: str = "ds", **config) -> tuple[Path, dict]:
    out = tmp_path / name
    return out, build_routing(RoutingBuildConfig(**{"size": SIZE, **config}), out)


def arrays(root: Path, split: str) -> dict[str, np.ndarray]:
    return {name: np.asarray(array) for name, array in load_split(root, split).sets["all"].items()}


def bare_maps(inputs: np.ndarray, size: int) -> list[np.ndarray]:
    grids = inputs[:, :-1].reshape(-1, size, size)
    return list(np.where((grids == TOKEN_CHARS.index("S")) | (grids == TOKEN_CHARS.index("G")), 1, grids))


def dihedral_bytes(grid: np.ndarray) -> set[bytes]:
    rotations = [np.rot90(grid, k) for k in range(4)]
    return {np.ascontiguousarray(v).tobytes() for rotation in rotations for v in (rotation, rotation.T)}


# --------------------------------------------------------------------------- independent searches


def neighbours(cell: int, size: int) -> list[int]:
    row, column = divmod(cell, size)
    found = []
    for r, c in ((row - 1, column), (row + 1, column), (row, column - 1), (row, column + 1)):
        if 0 <= r < size and 0 <= c < size:
            found.append(r * size + c)
    return found


def dijkstra(costs: np.ndarray, size: int, start: int, goal: int) -> int | None:
    best = {start: 0}
    queue = [(0, start)]
    while queue:
        spent, cell = heapq.heappop(queue)
        if cell == goal:
            return spent
        if spent > best[cell]:
            continue
        for other in neighbours(cell, size):
            if costs[other] > 0 and spent + costs[other] < best.get(other, 1 << 60):
                best[other] = spent + costs[other]
                heapq.heappush(queue, (best[other], other))
    return None


def bfs_steps(walkable: np.ndarray, size: int, start: int, goal: int) -> int | None:
    steps = {start: 0}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        for other in neighbours(cell, size):
            if walkable[other] and other not in steps:
                steps[other] = steps[cell] + 1
                queue.append(other)
    return steps.get(goal)


def ends(input_row: np.ndarray, size: int) -> tuple[int, int]:
    scenario = decode(input_row, size)
    return scenario.start[0] * size + scenario.start[1], scenario.goal[0] * size + scenario.goal[1]


# --------------------------------------------------------------------------- vehicles


def test_no_two_vehicles_alike_and_blocked_cells_block_everyone():
    table = vehicle_table()
    assert list(table) == list(VEHICLES)
    passable = [frozenset(entry["passable"]) for entry in table.values()]
    costs = [tuple(sorted(entry["costs"].items())) for entry in table.values()]
    assert len(set(passable)) == len(set(costs)) == len(VEHICLES)
    assert sorted(VEHICLE_TOKENS.values()) == list(range(VOCAB_SIZE - 4, VOCAB_SIZE))
    json.dumps(table)  # plain data
    for vehicle in VEHICLES:
        for blocked in "#XS":
            assert entry_costs(np.array([TOKEN_CHARS.index(blocked)]), vehicle)[0] == 0


def test_a_jam_raises_the_cost_of_a_road_and_never_legalises_one():
    plain_roads, jammed_roads = ".-=H", ",~*h"  # lane, street, avenue, highway and their jams
    for vehicle in VEHICLES:
        plain = entry_costs(np.array([TOKEN_CHARS.index(c) for c in plain_roads]), vehicle)
        jammed = entry_costs(np.array([TOKEN_CHARS.index(c) for c in jammed_roads]), vehicle)
        for road, cost, jam_cost in zip(("lane", "street", "avenue", "highway"), plain, jammed):
            if road in VEHICLE_COSTS[vehicle]:
                assert cost == VEHICLE_COSTS[vehicle][road] and jam_cost == cost * JAM_FACTOR[vehicle] > cost
            else:
                assert cost == jam_cost == 0
    jammed_town = city([row.replace(".", ",") for row in TOWN])
    assert optimal_route(row_for(jammed_town, "bike"), SIZE)[0] == 3 + 6 * 2 + 3 + 1
    truck = optimal_route(row_for(jammed_town, "truck"), SIZE)
    assert truck[0] == 37 and route_cells(truck[1]) == TOP_ROUTE  # the jammed lane is still closed to trucks
    jammed_avenue = city(TOWN)
    jammed_avenue[1, 4] = TOKEN_CHARS.index("*")
    assert optimal_cost(row_for(jammed_avenue, "truck"), SIZE) == 11 * 3 + 3 * 4 + 1


def test_each_vehicle_takes_its_own_route_through_the_same_town():
    town = city(TOWN)
    expected = {"bike": (13, LANE_ROUTE), "car": (25, TOP_ROUTE), "van": (25, TOP_ROUTE), "truck": (37, TOP_ROUTE)}
    for vehicle, (cost, cells) in expected.items():
        route_cost, route = optimal_route(row_for(town, vehicle), SIZE)
        assert (route_cost, route_cells(route)) == (cost, cells), vehicle
        assert path_cost(row_for(town, vehicle), route, SIZE) == cost
        assert count_optimal_routes(row_for(town, vehicle), SIZE) == 1
    # The bike's route is illegal for the truck; the truck's is legal but dear for the bike.
    bike_route = optimal_route(row_for(town, "bike"), SIZE)[1]
    assert path_cost(row_for(town, "truck"), bike_route, SIZE) is None
    assert path_cost(row_for(town, "bike"), optimal_route(row_for(town, "truck"), SIZE)[1], SIZE) == 37


def test_a_closure_is_impassable_for_every_vehicle():
    town = city(TOWN)
    for row in (1, 3, 5):
        town[row, 4] = TOKEN_CHARS.index("X")
    for vehicle in VEHICLES:
        assert optimal_route(row_for(town, vehicle), SIZE) is None
        assert count_optimal_routes(row_for(town, vehicle), SIZE) == 0
    bike = row_for(town, "bike")
    fault, _ = judge_path(bike, label_with(bike, LANE_ROUTE), SIZE)
    assert fault == "path cell (3, 4) is a closure, which bike may not use"


def test_marks_that_branch_loop_or_flood_are_not_a_legal_route():
    bike = row_for(city(TOWN), "bike")
    assert is_legal_path(bike, label_with(bike, LANE_ROUTE), SIZE) == (True, 13)
    branch = label_with(bike, [*LANE_ROUTE, (2, 1)])  # a dead end off the route
    assert judge_path(bike, branch, SIZE)[0] == ("the marks are not one route: path cell (2, 1) touches 1 route "
                                                  "cell (a route cell touches 2, S and G 1)")
    loop = label_with(bike, sorted({*LANE_ROUTE, *TOP_ROUTE}))  # both ways round the block
    assert judge_path(bike, loop, SIZE)[0].startswith("the marks are not one route: path cell (3, 1) touches 3")
    car = row_for(city(TOWN), "car")
    enterable = [divmod(int(cell), SIZE) for cell in np.flatnonzero(entry_costs(car[:-1], "car") > 0)
                 if car[cell] != TOKEN_CHARS.index("G")]
    assert is_legal_path(car, label_with(car, enterable), SIZE) == (False, None)  # every road marked
    assert is_legal_path(car, label_with(car, TOP_ROUTE), SIZE) == (True, 25)


def test_decode_render_and_malformed_inputs():
    truck = row_for(city(TOWN), "truck")
    scenario = decode(truck, SIZE)
    assert (scenario.start, scenario.goal, scenario.vehicle) == ((3, 0), (3, 9), "truck")
    assert scenario.grid.shape == (SIZE, SIZE)
    assert render(truck, SIZE).splitlines() == [*TOWN, "vehicle: truck"]
    for broken, message in (
        (truck[:-1], "101 tokens"),
        (np.append(truck[:-1], 3), "last token 3 is not a vehicle token"),
        (np.where(truck == TOKEN_CHARS.index("G"), 1, truck), "exactly one G"),
        (label_with(truck, [(3, 2)])[:-1].tolist() + [VEHICLE_TOKENS["truck"]], "cell (3, 2) holds token 13"),
    ):
        with pytest.raises(ValueError, match=re.escape(message)):
            decode(np.asarray(broken), SIZE)
    assert judge_path(truck[:-1], truck, SIZE)[0].startswith("input: a routing row holds")
    assert is_legal_path(truck[:-1], truck, SIZE) == (False, None)


# --------------------------------------------------------------------------- the oracle


def test_astar_costs_equal_dijkstra_on_many_random_maps_and_cost_tables():
    rng = np.random.default_rng(7)
    for trial in range(60):
        size = int(rng.integers(8, 16))
        row = row_for(random_city(size, rng), VEHICLES[trial % 4])
        start, goal = ends(row, size)
        costs = entry_costs(row[:-1], VEHICLES[trial % 4])
        found = astar(costs, size, start, goal)
        expected = dijkstra(costs, size, start, goal)
        assert (found and found[0]) == expected
        if found:
            assert path_cost(row, found[1], size) == found[0] == optimal_cost(row, size)
        # Arbitrary costs (0 = blocked) with S and G anywhere.
        costs = rng.integers(0, 10, size * size) * (rng.random(size * size) < 0.8)
        start, goal = (int(cell) for cell in rng.choice(size * size, 2, replace=False))
        costs[goal] = max(costs[goal], 1)
        found = astar(costs, size, start, goal)
        assert (found and found[0]) == dijkstra(costs, size, start, goal)
        if found:
            assert found[1][0] == start and found[1][-1] == goal
            assert sum(costs[cell] for cell in found[1][1:]) == found[0]


def test_astar_with_unit_costs_finds_bfs_lengths():
    rng = np.random.default_rng(3)
    for _ in range(100):
        size = int(rng.integers(5, 14))
        walkable = rng.random(size * size) < 0.65
        start, goal = (int(cell) for cell in rng.choice(size * size, 2, replace=False))
        walkable[goal] = True
        found = astar(walkable.astype(np.int64), size, start, goal)
        steps = bfs_steps(walkable, size, start, goal)
        assert (found and found[0]) == steps
        if found:
            assert len(found[1]) == steps + 1


def test_ties_are_broken_the_same_way_every_time():
    town = city(TOWN)
    town[3, 2:8] = TOKEN_CHARS.index("#")
    town[5, 2:8] = TOKEN_CHARS.index("=")  # now the top and bottom avenues cost the same
    car = row_for(town, "car")
    assert count_optimal_routes(car, SIZE) == 2
    routes = {tuple(optimal_route(car, SIZE)[1]) for _ in range(3)}
    assert len(routes) == 1
    bottom = [(3, 1), (4, 1), *[(5, column) for column in range(1, 9)], (4, 8), (3, 8)]
    for cells in (TOP_ROUTE, bottom):  # either optimum is judged optimal
        assert routing_label_fault(car, label_with(car, cells), SIZE) == (None, True)


# --------------------------------------------------------------------------- the builder


def test_tokens_groups_and_metadata(tmp_path):
    root, summary = build(tmp_path, train_bases=6, test_bases=3)
    for split, scenarios in (("train", 6), ("test", 3)):
        meta = load_split(root, split).metadata
        assert (meta.vocab_size, meta.seq_len, meta.ignore_label_id, meta.pad_id) == (VOCAB_SIZE, 101, 0, 0)
        assert (meta.total_groups, meta.mean_puzzle_examples) == (scenarios, 4.0)
        data = arrays(root, split)
        assert data["inputs"].shape == (scenarios * 4, 101) and data["inputs"].dtype == np.uint8
        np.testing.assert_array_equal(data["puzzle_indices"], np.arange(0, scenarios * 4 + 1, 4))
        np.testing.assert_array_equal(data["group_indices"], np.arange(scenarios + 1))
        np.testing.assert_array_equal(data["inputs"][:, -1], np.tile([14, 15, 16, 17], scenarios))
        assert np.all(data["labels"][:, -1] == 0) and np.all(data["inputs"][:, :-1] > 0)
        for group in range(scenarios):  # one map per group, one example per vehicle
            maps = data["inputs"][group * 4 : group * 4 + 4, :-1]
            assert (maps == maps[0]).all()
        for input_row, label_row in zip(data["inputs"], data["labels"]):
            valid, cost = is_legal_path(input_row, label_row, SIZE)
            assert valid and cost == optimal_cost(input_row, SIZE)
    saved = json.loads((root / "hrmkit_build.json").read_text())
    assert saved["builder"] == "hrmkit.data.routing" and saved["vehicle_table"] == vehicle_table()
    assert (summary["train_examples"], summary["test_examples"]) == (24, 12)


def test_same_seed_builds_identical_bytes_and_another_seed_does_not(tmp_path):
    config = dict(train_bases=8, test_bases=4, seed=5)
    first, _ = build(tmp_path, "first", **config)
    second, _ = build(tmp_path, "second", **config)
    other, _ = build(tmp_path, "other", **{**config, "seed": 6})
    files = sorted(path.relative_to(first) for path in first.rglob("*") if path.is_file())
    assert len(files) == 1 + 1 + 2 * 6  # identifiers, hrmkit_build.json, two splits of six files
    for relative in files:
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative
    assert (first / "train/all__inputs.npy").read_bytes() != (other / "train/all__inputs.npy").read_bytes()


@pytest.mark.parametrize("aug", [False, True])
def test_train_and_test_never_share_a_map(tmp_path, aug):
    root, _ = build(tmp_path, train_bases=40, test_bases=20, aug=aug)
    train, test = arrays(root, "train"), arrays(root, "test")
    train_maps = {grid.tobytes() for grid in bare_maps(train["inputs"], SIZE)}
    test_maps = bare_maps(test["inputs"][::4], SIZE)
    assert len({grid.tobytes() for grid in test_maps}) == 20
    assert not any(dihedral_bytes(grid) & train_maps for grid in test_maps)
    assert {row.tobytes() for row in train["inputs"]}.isdisjoint(row.tobytes() for row in test["inputs"])
    assert "overlap:train/test" not in check_dataset(root).failed


def test_vehicles_mostly_disagree_on_the_route(tmp_path):
    root, summary = build(tmp_path, train_bases=40, test_bases=1)
    labels = arrays(root, "train")["labels"].reshape(40, 4, -1)
    bike_differs_from_truck = [not np.array_equal(scenario[0], scenario[3]) for scenario in labels]
    assert np.mean(bike_differs_from_truck) > 0.3
    assert summary["routes"]["train"]["distinct_routes_per_scenario"]["max"] >= 3


def test_scenarios_without_a_route_for_some_vehicle_are_regenerated(tmp_path):
    town = city(TOWN)
    town[1, 4] = TOKEN_CHARS.index("X")  # the truck's only way is closed
    _, labels = _scenario(town, VEHICLES)
    assert labels[:3].any(axis=1).all() and not labels[3].any()
    root, summary = build(tmp_path, train_bases=30, test_bases=10)
    assert sum(summary["rejected"]["train"]["no_route"].values()) > 0
    data = arrays(root, "train")
    assert all(is_legal_path(i, l, SIZE)[0] for i, l in zip(data["inputs"], data["labels"]))


def test_unique_routes_keeps_only_untied_scenarios(tmp_path):
    root, summary = build(tmp_path, train_bases=12, test_bases=4, unique_routes=True, vehicles="car,truck")
    assert summary["vehicles"] == ["car", "truck"]
    assert sum(summary["rejected"]["train"]["tied_routes"].values()) > 0
    assert summary["routes"]["train"]["examples_with_tied_routes"] == 0
    data = arrays(root, "train")
    assert data["inputs"].shape[0] == 24 and set(data["inputs"][:, -1]) == {15, 17}
    assert all(count_optimal_routes(row, SIZE) == 1 for row in data["inputs"])


def test_aug_puts_8_transforms_of_each_scenario_in_its_group(tmp_path):
    root, _ = build(tmp_path, train_bases=3, test_bases=2, aug=True)
    train = arrays(root, "train")
    np.testing.assert_array_equal(train["group_indices"], np.arange(0, 25, 8))
    np.testing.assert_array_equal(train["puzzle_indices"], np.arange(0, 97, 4))
    first_group = train["inputs"][:32].reshape(8, 4, -1)
    assert len({grid.tobytes() for grid in first_group[:, 0, :-1].reshape(8, SIZE, SIZE)}) == 8
    assert dihedral_bytes(first_group[0, 0, :-1].reshape(SIZE, SIZE)) == {
        grid.reshape(SIZE, SIZE).tobytes() for grid in first_group[:, 0, :-1]}
    report = check_dataset(root)
    assert report.ok, report.format()


def test_default_size_30_builds_and_checks(tmp_path):
    root, summary = build(tmp_path, size=30, train_bases=2, test_bases=1)
    assert load_split(root, "train").metadata.seq_len == 901
    assert check_dataset(root).ok


def test_progress_reports_every_stage(tmp_path):
    calls = []
    build_routing(RoutingBuildConfig(size=SIZE, train_bases=3, test_bases=2), tmp_path / "ds",
                  progress=lambda *call: calls.append(call))
    assert ("test scenarios", 2, 2) in calls and ("train scenarios", 3, 3) in calls and calls[-1] == ("writing", 1, 1)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (dict(size=7), "size must be an integer >= 8"),
        (dict(vehicles="bike,plane"), "unknown vehicle 'plane'; choose from bike, car, van, truck"),
        (dict(vehicles=("car", "van", "car")), "vehicle 'car' is listed more than once"),
        (dict(vehicles=" , "), "vehicles must name at least one"),
        (dict(train_bases=0), "train_bases must be >= 1, got 0"),
        (dict(test_bases=0), "test_bases must be >= 1, got 0"),
        (dict(test_bases=-3), "test_bases must be >= 1"),
    ],
)
def test_bad_configs_raise_one_line_errors(tmp_path, config, message):
    with pytest.raises(ValueError, match=message) as caught:
        build(tmp_path, **{"train_bases": 1, "test_bases": 1, **config})
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "ds").exists()


def test_vehicle_names_accept_a_list_or_a_comma_separated_string():
    assert vehicle_names("truck, bike") == ("truck", "bike") == vehicle_names(["truck", "bike"])


def test_existing_output_is_kept_unless_overwrite(tmp_path):
    root, _ = build(tmp_path, train_bases=2, test_bases=1)
    with pytest.raises(ValueError, match="already exists"):
        build_routing(RoutingBuildConfig(size=SIZE, train_bases=2, test_bases=1), root)
    build_routing(RoutingBuildConfig(size=SIZE, train_bases=3, test_bases=1), root, overwrite=True)
    assert load_split(root, "train").num_groups == 3


# --------------------------------------------------------------------------- the checker


@pytest.fixture(scope="module")
def routing_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("routing") / "city"
    build_routing(RoutingBuildConfig(size=SIZE, train_bases=10, test_bases=5, seed=1), root)
    return root


def broken_copy(routing_root: Path, tmp_path: Path, example: int, input_row: np.ndarray, label_row: np.ndarray) -> Path:
    """A copy whose test example `example` is replaced by the given row pair."""
    root = Path(shutil.copytree(routing_root, tmp_path / "broken"))
    for name, row in (("inputs", input_row), ("labels", label_row)):
        array = np.load(root / "test" / f"all__{name}.npy")
        array[example] = row
        np.save(root / "test" / f"all__{name}.npy", array)
    return root


def routing_detail(root: Path) -> tuple[list[str], str]:
    report = check_dataset(root)
    return report.failed, next(check.detail for check in report.checks if check.name == "routing:test")


def test_a_clean_dataset_passes_every_check(routing_root):
    report = check_dataset(routing_root)
    assert report.ok, report.format()
    assert {"routing:train", "routing:test"} <= {check.name for check in report.checks}
    assert report.stats["train"]["examples_per_group"] == {"min": 4, "mean": 4.0, "max": 4}


def test_routing_is_recognised_without_the_build_summary(routing_root, tmp_path):
    root = Path(shutil.copytree(routing_root, tmp_path / "plain"))
    (root / "hrmkit_build.json").unlink()
    report = check_dataset(root)
    assert report.ok and "routing:test" in {check.name for check in report.checks}
    assert puzzle_kind(root, load_split(root, "test")) == "routing"


def test_a_route_illegal_for_the_vehicle_is_named(routing_root, tmp_path):
    truck = row_for(city(TOWN), "truck")
    failed, detail = routing_detail(broken_copy(routing_root, tmp_path, 7, truck, label_with(truck, LANE_ROUTE)))
    assert failed == ["routing:test"]
    assert detail == ("19 of 20 labels legal routes, 19 cost-optimal; first illegal: example 7 (truck): "
                      "path cell (3, 2) is a lane, which truck may not use")


def test_a_legal_but_dear_route_is_named_non_optimal(routing_root, tmp_path):
    bike = row_for(city(TOWN), "bike")
    failed, detail = routing_detail(broken_copy(routing_root, tmp_path, 2, bike, label_with(bike, TOP_ROUTE)))
    assert failed == ["routing:test"]
    assert detail == ("20 of 20 labels legal routes, 19 cost-optimal; first non-optimal: example 2 (bike): "
                      "route costs 37 but the optimum is 13")


def test_a_disconnected_route_is_named(routing_root, tmp_path):
    bike = row_for(city(TOWN), "bike")
    gap = [cell for cell in LANE_ROUTE if cell != (3, 4)]
    failed, detail = routing_detail(broken_copy(routing_root, tmp_path, 0, bike, label_with(bike, gap)))
    assert failed == ["routing:test"]
    assert detail.endswith("first illegal: example 0 (bike): path does not connect S to G")


def test_other_label_faults_are_named():
    bike = row_for(city(TOWN), "bike")
    good = label_with(bike, LANE_ROUTE)
    assert routing_label_fault(bike, good, SIZE) == (None, True)
    stray = label_with(bike, [*LANE_ROUTE, (5, 5)])
    assert routing_label_fault(bike, stray, SIZE)[0] == "1 path cell(s) not connected to S, first (5, 5)"
    on_a_building = label_with(bike, [*LANE_ROUTE, (2, 4)])
    assert routing_label_fault(bike, on_a_building, SIZE)[0] == "path cell (2, 4) is a building, which bike may not use"
    changed = good.copy()
    changed[0] = TOKEN_CHARS.index("=")
    assert routing_label_fault(bike, changed, SIZE)[0] == "label changes cell (0, 0) from building to avenue"
    changed[0] = 99  # a prediction may hold any id
    assert routing_label_fault(bike, changed, SIZE)[0] == "label changes cell (0, 0) from building to token 99"
    scored = good.copy()
    scored[-1] = VEHICLE_TOKENS["bike"]
    assert routing_label_fault(bike, scored, SIZE)[0] == "label at the vehicle position is 14, expected 0 (ignored)"
    assert is_legal_path(bike, scored, SIZE) == (True, 13)  # a prediction's vehicle position is never scored


def test_path_scores_report_legal_and_cost_optimal_predictions(routing_root):
    split = load_split(routing_root, "test")
    assert puzzle_kind(routing_root, split) == "routing"
    inputs, labels = np.asarray(split.sets["all"]["inputs"]), np.asarray(split.sets["all"]["labels"])
    assert path_scores(split, labels)["optimal_path"] == 1.0
    predictions = labels.copy()
    predictions[:4] = inputs[:4]  # no route marked for the first scenario's four vehicles
    scores = path_scores(split, predictions)
    assert scores["valid_path"] == scores["optimal_path"] == 16 / 20
    assert scores["valid_path/bike"] == scores["optimal_path/truck"] == 4 / 5


# --------------------------------------------------------------------------- the preset


@pytest.mark.cli
def test_the_routing_small_preset_trains_on_a_routing_dataset(routing_root, tmp_path):
    from hrmkit.cli import main
    from hrmkit.config import load_run_config

    preset = load_run_config("routing_small")
    assert (preset.model.variant, preset.train.device) == ("trm", "cpu")
    tiny = ["model.hidden_size=32", "model.num_heads=2", "model.halt_max_steps=2", "model.L_cycles=1",
            "train.global_batch_size=8", "train.eval_max_examples=8", "train.progress=false"]
    code = main(["train", "--config", "routing_small", f"data.path={routing_root}", f"runs_dir={tmp_path}",
                 "train.steps=2", *tiny])
    assert code == 0 and (tmp_path / "routing_small" / "final" / "model.safetensors").exists()


@pytest.mark.cli
def test_cli_builds_checks_trains_and_scores_routes(tmp_path):
    from cli_helpers import TINY_MODEL, hrm, hrm_here
    data, runs = tmp_path / "routing", tmp_path / "runs"
    hrm("prepare", "routing", "--size", "10", "--train-bases", "12", "--test-bases", "4", "--out", str(data))
    check = hrm("data", "check", str(data), "--json", str(tmp_path / "check.json"))
    assert check.returncode == 0
    hrm_here("train", "--config", "routing_small", f"data.path={data}", f"runs_dir={runs}", "run_name=r", "train.steps=2",
        "train.eval_interval=0", "train.ema=false", *TINY_MODEL)
    result = hrm("eval", "--checkpoint", str(runs / "r" / "final"), "--data", str(data))
    assert "legal routes" in result.stdout and "cost-optimal routes" in result.stdout
    bad = hrm_here("prepare", "routing", "--size", "10", "--vehicles", "bike,plane", "--out", str(tmp_path / "x"), check=False)
    assert bad.returncode == 2 and "plane" in bad.stderr
