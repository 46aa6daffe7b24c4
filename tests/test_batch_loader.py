"""Training batches prepared by worker processes: the stream's order, an exact resume from the last
batch handed out (not the last one prepared), splits that travel to a spawned worker as their path,
and a worker's error reaching the training process."""

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from hrmkit.puzzles.batches import TrainSampler, random_split
from hrmkit.puzzles.format import PuzzleDatasetMetadata, load_split, write_dataset
from hrmkit.config import RunConfig
from hrmkit.train.batch_loader import BatchLoader, batch_loader_for

SEQ_LEN, VOCAB = 4, 64


def puzzle_set(seed: int, groups: int) -> dict[str, np.ndarray]:
    """Groups of 1-3 puzzles of 1-3 examples (so the sampler draws from its generator for each)."""
    rng = np.random.default_rng(seed)
    sizes = [list(rng.integers(1, 4, size=rng.integers(1, 4))) for _ in range(groups)]
    flat = [size for group in sizes for size in group]
    examples = sum(flat)
    inputs = rng.integers(1, VOCAB, (examples, SEQ_LEN)).astype(np.int32)
    return {"inputs": inputs, "labels": inputs.copy(),
            "puzzle_identifiers": np.zeros(len(flat), dtype=np.int32),
            "puzzle_indices": np.concatenate([[0], np.cumsum(flat)]).astype(np.int32),
            "group_indices": np.concatenate([[0], np.cumsum([len(group) for group in sizes])]).astype(np.int32)}


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    """Two sets on disk, so the stream also moves from one set to the next."""
    sets = {"a": puzzle_set(0, 40), "b": puzzle_set(1, 30)}
    meta = PuzzleDatasetMetadata(pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=VOCAB,
                                 seq_len=SEQ_LEN, num_puzzle_identifiers=1, total_groups=70,
                                 mean_puzzle_examples=2.0, sets=list(sets))
    root = tmp_path_factory.mktemp("loader") / "data"
    write_dataset(root, {"train": sets}, {"train": meta}, ["<blank>"])
    return load_split(root, "train")


def take(loader, count):
    return [loader.next_batch() for _ in range(count)]


def assert_same(first, second):
    assert len(first) == len(second)
    for one, other in zip(first, second):
        assert one.keys() == other.keys() and all(torch.equal(one[key], other[key]) for key in one)


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_workers_hand_out_the_sampler_stream_in_order_and_resume_after_the_last_batch_handed_out(split, start_method):
    sampler = lambda rank=0, world=1: TrainSampler(split, 16, seed=3, rank=rank, world_size=world)  # noqa: E731
    uninterrupted = take(sampler(), 30)  # about four passes over the two sets
    loader = BatchLoader(sampler(), workers=2, start_method=start_method)
    assert_same(take(loader, 7), uninterrupted[:7])
    state = json.loads(json.dumps(loader.state_dict()))  # as a checkpoint stores it; workers are ahead by now
    loader.close()
    assert_same(take(loader, 3), uninterrupted[7:10])  # a closed loader goes on from what it handed out
    resumed = BatchLoader(sampler(), workers=1, start_method=start_method)
    resumed.load_state_dict(state)
    assert_same(take(resumed, 23), uninterrupted[7:])
    resumed.close()

    # Each rank's workers hand out that rank's rows of the same global batches.
    shares = [take(BatchLoader(sampler(rank, 2), workers=2, start_method=start_method), 5) for rank in range(2)]
    for step in range(5):
        for key, whole in uninterrupted[step].items():
            assert torch.equal(torch.cat([shares[0][step][key], shares[1][step][key]]), whole)


def test_without_workers_the_loader_is_the_sampler_itself(split):
    loader = BatchLoader(TrainSampler(split, 16, seed=3), workers=0)
    assert_same(take(loader, 4), take(TrainSampler(split, 16, seed=3), 4))
    assert loader.state_dict()["batches_in_pass"] == 4


def test_a_split_read_from_disk_travels_as_its_path_and_one_made_in_memory_whole(split):
    packed = pickle.dumps(split)
    assert len(packed) < 2000 < sum(array.nbytes for arrays in split.sets.values() for array in arrays.values())
    unpacked = pickle.loads(packed)
    assert all(np.array_equal(unpacked.sets[name][key], split.sets[name][key])
               for name in split.sets for key in split.sets[name])
    in_memory = random_split(11, 81, 1, 500, seed=0)
    assert np.array_equal(pickle.loads(pickle.dumps(in_memory)).sets["all"]["inputs"], in_memory.sets["all"]["inputs"])


def test_a_workers_error_stops_the_training_process_with_its_message(split):
    class Broken(TrainSampler):
        def next_batch(self):
            raise ValueError("example 3 is unreadable")

    with pytest.raises(Exception, match="example 3 is unreadable"):
        BatchLoader(Broken(split, 16, seed=3), workers=1).next_batch()
    with pytest.raises(ValueError, match="data.workers must be >= 0"):
        BatchLoader(TrainSampler(split, 16, seed=3), workers=-1)


def test_starting_the_workers_leaves_torchs_generator_alone(split):
    """ACT's exploration draws from torch's global generator: a loader that seeded its workers from it
    would change the training whenever workers are on."""
    before = torch.get_rng_state()
    loader = BatchLoader(TrainSampler(split, 16, seed=3), workers=1)
    loader.next_batch()
    loader.close()
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("device, pinned", [("cpu", False), ("auto", True), ("cuda", True)])
def test_batches_are_pinned_only_for_a_run_that_trains_on_cuda(split, monkeypatch, device, pinned):
    # A machine with a GPU (as torch reports it); pinning itself is never reached, only decided.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    cfg = RunConfig()
    cfg.train.device, cfg.data.workers = device, 1
    assert batch_loader_for(cfg, TrainSampler(split, 16, seed=3)).pin_memory is pinned


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork workers are the Linux default")
def test_a_loader_still_open_when_python_exits_does_not_hang_the_exit(tmp_path):
    """Its workers ignore SIGTERM (the trainer handles stop signals), so the terminate() multiprocessing sends
    at interpreter exit could not end them: a script that left a loader open never exited (CI hung on it
    once, after the last test had passed)."""
    script = tmp_path / "left_open.py"
    script.write_text(f"""
import numpy as np
from hrmkit.puzzles.batches import TrainSampler
from hrmkit.puzzles.format import PuzzleDatasetMetadata, load_split, write_dataset
from hrmkit.train.batch_loader import BatchLoader
inputs = np.arange(40 * 4, dtype=np.int32).reshape(40, 4) % 7 + 1
arrays = {{"inputs": inputs, "labels": inputs.copy(), "puzzle_identifiers": np.zeros(40, dtype=np.int32),
          "puzzle_indices": np.arange(41, dtype=np.int32), "group_indices": np.arange(41, dtype=np.int32)}}
meta = PuzzleDatasetMetadata(pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=8, seq_len=4,
                             num_puzzle_identifiers=1, total_groups=40, mean_puzzle_examples=1.0, sets=["all"])
write_dataset({str(tmp_path / "data")!r}, {{"train": {{"all": arrays}}}}, {{"train": meta}}, ["<blank>"])
loader = BatchLoader(TrainSampler(load_split({str(tmp_path / "data")!r}, "train"), 8, seed=0), workers=2,
                     start_method="fork")
loader.next_batch()
""")
    subprocess.run([sys.executable, str(script)], check=True, timeout=60)
