import json
from pathlib import Path

import numpy as np
import pytest
import torch

from hrmkit.files import DatasetError
from hrmkit.model.losses import IGNORE_LABEL_ID
from hrmkit.puzzles import format as puzzle_format
from hrmkit.puzzles.batches import TrainSampler, eval_batches
from hrmkit.puzzles.format import (
    PuzzleDatasetMetadata,
    load_identifiers,
    load_split,
    write_dataset,
)

SEQ_LEN = 4
VOCAB = 256  # large enough that inputs[:, 0] can hold each example's index


def make_set(group_sizes: list[list[int]]) -> dict[str, np.ndarray]:
    """group_sizes[g][p] = examples of puzzle p in group g. inputs[i, 0] == i identifies example i."""
    puzzle_sizes = [size for group in group_sizes for size in group]
    num_examples = sum(puzzle_sizes)
    inputs = np.ones((num_examples, SEQ_LEN), dtype=np.int32)
    inputs[:, 0] = np.arange(num_examples)
    labels = np.full((num_examples, SEQ_LEN), 5, dtype=np.int32)
    labels[:, 1] = 0  # the ignore label
    labels[:, 2] = np.arange(num_examples) % VOCAB
    return {
        "inputs": inputs,
        "labels": labels,
        "puzzle_identifiers": (np.arange(len(puzzle_sizes)) % 3).astype(np.int32),
        "puzzle_indices": np.concatenate([[0], np.cumsum(puzzle_sizes)]).astype(np.int32),
        "group_indices": np.concatenate([[0], np.cumsum([len(group) for group in group_sizes])]).astype(np.int32),
    }


def metadata_for(sets: dict[str, dict[str, np.ndarray]], **changes) -> PuzzleDatasetMetadata:
    fields = dict(
        pad_id=0,
        ignore_label_id=0,
        blank_identifier_id=0,
        vocab_size=VOCAB,
        seq_len=SEQ_LEN,
        num_puzzle_identifiers=3,
        total_groups=sum(len(arrays["group_indices"]) - 1 for arrays in sets.values()),
        mean_puzzle_examples=1.5,
        sets=list(sets),
    )
    fields.update(changes)
    return PuzzleDatasetMetadata(**fields)


def single_example_groups(num_groups: int, puzzles_per_group: int = 1) -> dict[str, np.ndarray]:
    return make_set([[1] * puzzles_per_group for _ in range(num_groups)])


def write(root: Path, sets: dict[str, dict[str, np.ndarray]], **metadata_changes) -> Path:
    write_dataset(root, {"train": sets}, {"train": metadata_for(sets, **metadata_changes)}, ["<blank>", "a", "b"])
    return root


@pytest.fixture
def mixed_set() -> dict[str, np.ndarray]:
    # Groups of 1-3 puzzles, each with 1-3 examples.
    rng = np.random.default_rng(0)
    return make_set([list(rng.integers(1, 4, size=rng.integers(1, 4))) for _ in range(12)])


@pytest.fixture
def dataset(tmp_path, mixed_set) -> Path:
    return write(tmp_path / "ds", {"all": mixed_set})


# --------------------------------------------------------------------------- write / load


def test_write_then_load_round_trips_arrays_and_json(dataset, mixed_set):
    split = load_split(dataset, "train")
    for name, array in mixed_set.items():
        np.testing.assert_array_equal(split.sets["all"][name], array)
        assert split.sets["all"][name].dtype == array.dtype
    assert split.identifiers == ["<blank>", "a", "b"] == load_identifiers(dataset)
    assert split.metadata == metadata_for({"all": mixed_set}, total_puzzles=len(mixed_set["puzzle_identifiers"]))
    assert split.num_examples() == len(mixed_set["inputs"]) == split.num_examples("all")
    assert split.num_puzzles == len(mixed_set["puzzle_identifiers"])
    assert split.num_groups == 12


def test_dataset_json_has_every_reference_key_in_trm_order(dataset):
    written = json.loads((dataset / "train" / "dataset.json").read_text())
    assert list(written) == [
        "pad_id", "ignore_label_id", "blank_identifier_id", "vocab_size", "seq_len",
        "num_puzzle_identifiers", "total_groups", "mean_puzzle_examples", "total_puzzles", "sets",
    ]  # fmt: skip
    assert isinstance(written["mean_puzzle_examples"], float)
    assert json.loads((dataset / "identifiers.json").read_text()) == ["<blank>", "a", "b"]


def write_reference_style(root: Path) -> None:
    """What the reference Sudoku builder writes: no total_puzzles, int64 / uint8 / int32 arrays."""
    split_dir = root / "train"
    split_dir.mkdir(parents=True)
    (root / "identifiers.json").write_text(json.dumps(["<blank>"]))
    metadata = {
        "pad_id": 0, "ignore_label_id": 0, "blank_identifier_id": 0, "vocab_size": 11, "seq_len": 81,
        "num_puzzle_identifiers": 1, "total_groups": 2, "mean_puzzle_examples": 1.0, "sets": ["all"],
    }  # fmt: skip
    (split_dir / "dataset.json").write_text(json.dumps(metadata))
    np.save(split_dir / "all__inputs.npy", np.full((4, 81), 1, dtype=np.int64))
    np.save(split_dir / "all__labels.npy", np.full((4, 81), 10, dtype=np.uint8))
    np.save(split_dir / "all__puzzle_identifiers.npy", np.zeros(4, dtype=np.int32))
    np.save(split_dir / "all__puzzle_indices.npy", np.arange(5, dtype=np.int32))
    np.save(split_dir / "all__group_indices.npy", np.array([0, 2, 4], dtype=np.int32))


def test_loads_reference_built_data_with_mixed_dtypes_and_no_total_puzzles(tmp_path):
    write_reference_style(tmp_path / "ref")
    split = load_split(tmp_path / "ref", "train")
    assert split.metadata.total_puzzles is None
    assert split.sets["all"]["inputs"].dtype == np.int64
    batch = TrainSampler(split, global_batch_size=2, seed=0).next_batch()
    assert batch["inputs"].dtype == torch.int32 and batch["labels"].dtype == torch.int64


@pytest.mark.parametrize("total_puzzles", ["groups", "puzzles"])
def test_total_puzzles_may_count_puzzles_or_groups(tmp_path, total_puzzles):
    sets = {"all": single_example_groups(3, puzzles_per_group=2)}
    write(tmp_path / "ds", sets, total_puzzles=3 if total_puzzles == "groups" else 6)
    assert load_split(tmp_path / "ds", "train").metadata.total_puzzles in (3, 6)


def edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def save_array(root: Path, name: str, array: np.ndarray) -> None:
    np.save(root / "train" / f"all__{name}.npy", array)


def load_array(root: Path, name: str) -> np.ndarray:
    return np.load(root / "train" / f"all__{name}.npy")


def with_value(array: np.ndarray, index, value) -> np.ndarray:
    array = array.copy()
    array[index] = value
    return array


def drop_key(path: Path, key: str) -> None:
    data = json.loads(path.read_text())
    del data[key]
    path.write_text(json.dumps(data))


CORRUPTIONS = {
    "missing npy file": (lambda root: (root / "train" / "all__labels.npy").unlink(), "all__labels.npy"),
    "missing dataset.json": (lambda root: (root / "train" / "dataset.json").unlink(), "dataset.json"),
    "bad JSON": (lambda root: (root / "train" / "dataset.json").write_text("{not json"), "dataset.json"),
    "missing key": (lambda root: drop_key(root / "train" / "dataset.json", "seq_len"), "dataset.json"),
    "string where int": (lambda root: edit_json(root / "train" / "dataset.json", vocab_size="256"), "dataset.json"),
    "missing identifiers.json": (lambda root: (root / "identifiers.json").unlink(), "identifiers.json"),
    "float dtype": (
        lambda root: save_array(root, "inputs", load_array(root, "inputs").astype(np.float32)),
        "all__inputs.npy",
    ),
    "not an npy file": (lambda root: (root / "train" / "all__inputs.npy").write_bytes(b"junk"), "all__inputs.npy"),
    "seq_len mismatch": (
        lambda root: save_array(root, "inputs", load_array(root, "inputs")[:, :3]),
        "all__inputs.npy",
    ),
    "labels shape differs": (
        lambda root: save_array(root, "labels", load_array(root, "labels")[:-1]),
        "all__labels.npy",
    ),
    "wrong ndim": (
        lambda root: save_array(root, "puzzle_identifiers", load_array(root, "puzzle_identifiers")[:, None]),
        "all__puzzle_identifiers.npy",
    ),
    "token >= vocab": (
        lambda root: save_array(root, "inputs", with_value(load_array(root, "inputs"), (3, 2), VOCAB)),
        "all__inputs.npy",
    ),
    "negative label": (
        lambda root: save_array(root, "labels", with_value(load_array(root, "labels"), (1, 3), -7)),
        "all__labels.npy",
    ),
    "indices not starting at 0": (
        lambda root: save_array(root, "group_indices", with_value(load_array(root, "group_indices"), 0, 1)),
        "all__group_indices.npy",
    ),
    "decreasing indices": (
        lambda root: save_array(root, "puzzle_indices", with_value(load_array(root, "puzzle_indices"), 2, 0)),
        "all__puzzle_indices.npy",
    ),
    "puzzle_indices end out of range": (
        lambda root: save_array(root, "puzzle_indices", with_value(load_array(root, "puzzle_indices"), -1, 10_000)),
        "all__puzzle_indices.npy",
    ),
    "group_indices end out of range": (
        lambda root: save_array(root, "group_indices", with_value(load_array(root, "group_indices"), -1, 10_000)),
        "all__group_indices.npy",
    ),
    "puzzle identifier out of range": (
        lambda root: save_array(root, "puzzle_identifiers", with_value(load_array(root, "puzzle_identifiers"), 0, 3)),
        "all__puzzle_identifiers.npy",
    ),
    "total_groups mismatch": (lambda root: edit_json(root / "train" / "dataset.json", total_groups=99), "dataset.json"),
    "total_puzzles mismatch": (
        lambda root: edit_json(root / "train" / "dataset.json", total_puzzles=99),
        "dataset.json",
    ),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_each_corruption_raises_one_line_error_naming_the_file(dataset, corruption):
    corrupt, file_name = CORRUPTIONS[corruption]
    corrupt(dataset)
    with pytest.raises(DatasetError) as caught:
        load_split(dataset, "train")
    message = str(caught.value)
    assert file_name in message
    assert "\n" not in message


def test_missing_root_and_split_name_the_folder(tmp_path, dataset):
    with pytest.raises(DatasetError, match="nowhere"):
        load_split(tmp_path / "nowhere", "train")
    with pytest.raises(DatasetError, match=r"test.*this dataset has: train"):
        load_split(dataset, "test")


def test_labels_may_hold_an_ignore_label_outside_the_vocabulary(tmp_path, mixed_set):
    mixed_set["labels"][:, 1] = -100
    write(tmp_path / "ds", {"all": mixed_set}, ignore_label_id=-100)
    assert load_split(tmp_path / "ds", "train").metadata.ignore_label_id == -100


def test_token_range_check_reads_in_chunks(tmp_path, monkeypatch, mixed_set):
    monkeypatch.setattr(puzzle_format, "_CHECK_CHUNK_ELEMENTS", 8)  # two rows per chunk
    mixed_set["inputs"][-1, 1] = VOCAB
    with pytest.raises(DatasetError, match=f"example {len(mixed_set['inputs']) - 1}, position 1"):
        write(tmp_path / "ds", {"all": mixed_set})


def test_write_validates_before_writing_anything(tmp_path, mixed_set):
    mixed_set["puzzle_indices"] = mixed_set["puzzle_indices"][::-1].copy()
    with pytest.raises(DatasetError, match="all__puzzle_indices.npy"):
        write(tmp_path / "ds", {"all": mixed_set})
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_an_existing_root_unless_overwrite(tmp_path, mixed_set):
    root = write(tmp_path / "ds", {"all": mixed_set})
    with pytest.raises(DatasetError, match="already exists"):
        write(root, {"all": mixed_set})
    smaller = single_example_groups(4)
    write_dataset(
        root, {"train": {"all": smaller}}, {"train": metadata_for({"all": smaller})}, ["<blank>"], overwrite=True
    )
    assert load_split(root, "train").num_groups == 4
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ds"]


def test_failed_write_leaves_no_root_and_no_staging_folder(tmp_path, monkeypatch, mixed_set):
    calls = []

    def failing_save(path, array):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        with open(path, "wb") as file:
            np.lib.format.write_array(file, array)

    monkeypatch.setattr(puzzle_format.np, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        write(tmp_path / "ds", {"all": mixed_set})
    assert list(tmp_path.iterdir()) == []


def test_extra_files_are_written_at_the_root(tmp_path, mixed_set):
    sets = {"all": mixed_set}
    extra_files = {"build.json": {"k": 1}}
    write_dataset(tmp_path / "ds", {"train": sets}, {"train": metadata_for(sets)}, ["<blank>"], extra_files=extra_files)
    assert json.loads((tmp_path / "ds" / "build.json").read_text()) == {"k": 1}


# --------------------------------------------------------------------------- training sampler


def take(sampler: TrainSampler, count: int) -> list[dict[str, torch.Tensor]]:
    return [sampler.next_batch() for _ in range(count)]


def assert_same_batches(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key


def test_sampler_batches_have_reference_dtypes_and_ignore_label(dataset):
    batch = TrainSampler(load_split(dataset, "train"), global_batch_size=6, seed=0).next_batch()
    assert set(batch) == {"inputs", "labels", "puzzle_identifiers"}
    assert batch["inputs"].dtype == torch.int32 and batch["inputs"].shape == (6, SEQ_LEN)
    assert batch["labels"].dtype == torch.int64
    assert batch["puzzle_identifiers"].dtype == torch.int32 and batch["puzzle_identifiers"].shape == (6,)
    assert torch.all(batch["labels"][:, 1] == IGNORE_LABEL_ID)
    assert not torch.any(batch["labels"] == 0)


def test_same_seed_gives_same_batches_and_another_seed_does_not(dataset):
    split = load_split(dataset, "train")
    first = take(TrainSampler(split, 6, seed=3), 8)
    assert_same_batches(first, take(TrainSampler(split, 6, seed=3), 8))
    other = take(TrainSampler(split, 6, seed=4), 8)
    assert any(not torch.equal(a["inputs"], b["inputs"]) for a, b in zip(first, other))


def test_each_batch_takes_one_random_puzzle_per_group_with_all_its_examples(dataset, mixed_set):
    split = load_split(dataset, "train")
    puzzle_of_example = np.repeat(np.arange(len(mixed_set["puzzle_identifiers"])), np.diff(mixed_set["puzzle_indices"]))
    group_of_puzzle = np.repeat(np.arange(12), np.diff(mixed_set["group_indices"]))
    puzzle_sizes = np.diff(mixed_set["puzzle_indices"])
    sampler = TrainSampler(split, global_batch_size=5, seed=1)
    chosen_puzzles_per_group: dict[int, set[int]] = {}
    for batch in take(sampler, 40):
        examples = batch["inputs"][:, 0].numpy()
        puzzles = puzzle_of_example[examples]
        assert len(set(examples)) == len(examples)  # examples drawn without replacement
        np.testing.assert_array_equal(batch["puzzle_identifiers"].numpy(), mixed_set["puzzle_identifiers"][puzzles])
        runs = [puzzles[0]] + [p for previous, p in zip(puzzles, puzzles[1:]) if p != previous]
        groups = group_of_puzzle[runs]
        assert len(set(groups)) == len(groups)  # at most one puzzle per group in a batch
        for position, puzzle in enumerate(runs[:-1]):  # all but the last puzzle are complete
            assert np.sum(puzzles == puzzle) == puzzle_sizes[puzzle], position
        for puzzle in runs:
            chosen_puzzles_per_group.setdefault(int(group_of_puzzle[puzzle]), set()).add(int(puzzle))
    assert any(len(puzzles) > 1 for puzzles in chosen_puzzles_per_group.values())  # the puzzle is random


def test_partial_last_batch_of_a_pass_is_dropped(tmp_path):
    split = load_split(write(tmp_path / "ds", {"all": single_example_groups(10)}), "train")
    sampler = TrainSampler(split, global_batch_size=4, seed=0)
    assert sampler.batches_per_pass == 2
    first_pass = np.concatenate([batch["inputs"][:, 0].numpy() for batch in take(sampler, 2)])
    assert len(set(first_pass)) == 8  # two full batches, the last two groups dropped
    assert sampler.state_dict()["iters"] == 1
    sampler.next_batch()
    assert sampler.state_dict()["iters"] == 2  # a new pass, reshuffled


def test_passes_cycle_through_sets_in_metadata_order(tmp_path):
    sets = {"b": single_example_groups(4), "a": single_example_groups(8)}
    split = load_split(write(tmp_path / "ds", sets), "train")
    sampler = TrainSampler(split, global_batch_size=4, seed=0)
    assert split.metadata.sets == ["b", "a"]
    assert sampler.batches_per_pass == 3
    seen = [sorted(batch["inputs"][:, 0].tolist()) for batch in take(sampler, 4)]
    assert seen[0] == [0, 1, 2, 3]  # set "b" holds 4 examples: one batch
    assert seen[3] == [0, 1, 2, 3]  # then two batches of "a", then "b" again


@pytest.mark.parametrize("already_taken", [0, 3, 5, 6])
def test_resuming_from_state_dict_continues_identically(dataset, already_taken):
    split = load_split(dataset, "train")
    reference = TrainSampler(split, 6, seed=7)
    per_pass = reference.batches_per_pass
    expected = take(reference, already_taken + 2 * per_pass + 3)  # the continuation crosses pass boundaries
    interrupted = TrainSampler(split, 6, seed=7)
    take(interrupted, already_taken)
    state = json.loads(json.dumps(interrupted.state_dict()))
    resumed = TrainSampler(split, 6, seed=7)
    resumed.load_state_dict(state)
    assert_same_batches(take(resumed, len(expected) - already_taken), expected[already_taken:])


def test_resuming_with_another_seed_is_refused(dataset):
    split = load_split(dataset, "train")
    state = TrainSampler(split, 6, seed=1).state_dict()
    with pytest.raises(ValueError, match="seed"):
        TrainSampler(split, 6, seed=2).load_state_dict(state)


def test_rank_slices_concatenate_to_the_single_process_batch(dataset):
    split = load_split(dataset, "train")
    whole = take(TrainSampler(split, 6, seed=2), 5)
    rank0 = take(TrainSampler(split, 6, seed=2, rank=0, world_size=2), 5)
    rank1 = take(TrainSampler(split, 6, seed=2, rank=1, world_size=2), 5)
    for full, first, second in zip(whole, rank0, rank1):
        for key in full:
            assert torch.equal(torch.cat([first[key], second[key]]), full[key])


def test_sampler_rejects_bad_batch_sizes(dataset):
    split = load_split(dataset, "train")
    with pytest.raises(ValueError, match="divisible"):
        TrainSampler(split, 5, seed=0, world_size=2)
    with pytest.raises(ValueError, match="larger than any pass"):
        TrainSampler(split, 10_000, seed=0)


# --------------------------------------------------------------------------- evaluation batches


def test_eval_batches_cover_every_example_once_and_pad_the_last(dataset, mixed_set):
    split = load_split(dataset, "train")
    num_examples = len(mixed_set["inputs"])
    batches = list(eval_batches(split, batch_size=8))
    assert [valid for _, _, valid in batches] == [min(8, num_examples - start) for start in range(0, num_examples, 8)]
    assert num_examples % 8, "the fixture should leave a partial last batch"
    seen = np.concatenate([batch["inputs"][:valid, 0].numpy() for _, batch, valid in batches])
    np.testing.assert_array_equal(seen, np.arange(num_examples))
    puzzles = np.searchsorted(mixed_set["puzzle_indices"], np.arange(num_examples), "right") - 1
    identifiers = np.concatenate([batch["puzzle_identifiers"][:valid].numpy() for _, batch, valid in batches])
    np.testing.assert_array_equal(identifiers, mixed_set["puzzle_identifiers"][puzzles])
    _, last, valid = batches[-1]
    assert last["inputs"].shape == (8, SEQ_LEN)
    assert torch.all(last["inputs"][valid:] == 0) and torch.all(last["labels"][valid:] == IGNORE_LABEL_ID)
    assert torch.all(last["puzzle_identifiers"][valid:] == 0)


def test_a_set_smaller_than_a_batch_is_not_padded_to_the_batch(dataset, mixed_set):
    """8 examples with --batch-size 256 ran 256 rows through the model (hrm eval 30x slower on ARC)."""
    split = load_split(dataset, "train")
    num_examples = len(mixed_set["inputs"])
    (_, batch, valid), = eval_batches(split, batch_size=256)
    assert valid == num_examples and batch["inputs"].shape == (num_examples, SEQ_LEN)
    per_rank = [list(eval_batches(split, batch_size=256, rank=rank, world_size=2)) for rank in range(2)]
    rows = -(-num_examples // 2)  # a multiple of the world size, split evenly
    assert [batch["inputs"].shape[0] for (_, batch, _), in per_rank] == [rows, rows]
    assert sum(valid for (_, _, valid), in per_rank) == num_examples


def test_eval_batches_split_each_global_batch_across_ranks(dataset, mixed_set):
    split = load_split(dataset, "train")
    per_rank = [list(eval_batches(split, batch_size=8, rank=rank, world_size=2)) for rank in range(2)]
    assert len(per_rank[0]) == len(per_rank[1])  # every rank steps together
    seen = []
    for (_, first, valid0), (_, second, valid1) in zip(*per_rank):
        assert first["inputs"].shape == (4, SEQ_LEN)
        seen += first["inputs"][:valid0, 0].tolist() + second["inputs"][:valid1, 0].tolist()
    assert seen == list(range(len(mixed_set["inputs"])))
