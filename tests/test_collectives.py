"""Collectives under real gloo process groups: every one goes through train.collectives with its
tensors on the group's device, ranks with nothing to contribute still join, and limits are global."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from cli_helpers import TINY_MODEL, free_port, hrm, torchrun

from hrmkit.model.moe import MoEFeedForward
from hrmkit.model.puzzle_emb import CastedSparseEmbedding, SignSGDSparseEmbedding
from hrmkit.train import collectives

GUARD = Path(__file__).parent / "dist_guard.py"


def _in_two_processes(fn, *args):
    """Runs fn(rank, *args) in two spawned processes joined in a gloo group; a rank that waits in a
    collective its peer never joins fails after 30 s instead of hanging the suite."""
    mp.spawn(_join_group_then, args=(free_port(), fn, args), nprocs=2, join=True)


def _join_group_then(rank, port, fn, args):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2,
                            timeout=timedelta(seconds=30))
    fn(rank, *args)
    dist.barrier()  # leave together: a rank tearing down while its peer still sends aborts gloo
    dist.destroy_process_group()


@pytest.mark.distributed
@pytest.mark.parametrize("processes", [1, 2])  # one process under torchrun joins a group too
def test_a_training_run_sends_every_collective_through_collectives_on_the_group_device(sudoku4, tmp_path, processes):
    # Puzzle embeddings (row gather), EMA, an interim and a final evaluation (metric sums) and
    # checkpoints (object gather): every collective path a puzzle run takes.
    log = tmp_path / "guard"
    torchrun("train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}",
             "run_name=guarded", "train.steps=4", "train.eval_interval=2", "train.ema=true", "model.puzzle_emb_ndim=32",
             *TINY_MODEL, nproc=processes, script=GUARD, env={"HRMKIT_GROUP_DEVICE": "cpu", "HRMKIT_GUARD_LOG": str(log)})
    for rank in range(processes):
        calls = json.loads((log / f"rank{rank}.json").read_text())
        assert calls.get("all_reduce", 0) >= 8 and calls.get("all_gather", 0) >= 12, calls
        assert calls.get("all_gather_object", 0) >= 2 and calls.get("barrier", 0) >= 1, calls


def test_group_device_is_the_ranks_gpu_for_nccl_and_the_cpu_for_gloo(monkeypatch):
    assert collectives.group_device() == torch.device("cpu")  # no group
    monkeypatch.setattr(collectives, "active", lambda: True)
    monkeypatch.setattr(dist, "get_backend", lambda *a: "nccl")
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)
    assert collectives.group_device() == torch.device("cuda", 3)
    monkeypatch.setattr(dist, "get_backend", lambda *a: "gloo")
    assert collectives.group_device() == torch.device("cpu")


def _routed_moe() -> MoEFeedForward:
    """Three experts; the router sends a token to expert 0 when its first feature is positive, to
    expert 1 when negative, and never to expert 2."""
    torch.manual_seed(0)
    moe = MoEFeedForward(hidden_size=8, num_experts=3, top_k=1, capacity_factor=8.0, ff_multiplier=2)
    with torch.no_grad():
        moe.router.weight.zero_()
        moe.router.weight[0, 0], moe.router.weight[1, 0] = 1.0, -1.0
    return moe


def _rank_tokens(rank: int) -> torch.Tensor:
    tokens = torch.randn(2, 6, 8, generator=torch.Generator().manual_seed(rank))
    sign = torch.tensor([1.0, -1.0]).repeat(3) if rank == 0 else torch.ones(6)  # rank 1: all positive
    tokens[..., 0] = tokens[..., 0].abs().clamp_min(0.1) * sign
    return tokens


def _sum_gradients_rank(rank):
    moe = _routed_moe()
    moe(_rank_tokens(rank))[0].pow(2).sum().backward()
    assert (moe.experts[1].gate_up_proj.weight.grad is None) == (rank == 1)  # rank 1's expert 1 got no token
    collectives.sum_gradients(list(moe.parameters()))
    # One process with both ranks' tokens: gradients accumulate over the two backward passes.
    whole = _routed_moe()
    for source in (0, 1):
        whole(_rank_tokens(source))[0].pow(2).sum().backward()
    for (name, summed), (_, expected) in zip(moe.named_parameters(), whole.named_parameters()):
        if expected.grad is None:
            assert summed.grad is None, name  # expert 2: no process has a gradient
        else:
            torch.testing.assert_close(summed.grad, expected.grad, msg=name)


@pytest.mark.distributed
def test_gradients_sum_over_processes_when_one_processes_expert_got_no_token():
    _in_two_processes(_sum_gradients_rank)


def _sparse_step_rank(rank):
    torch.manual_seed(0)
    embedding = CastedSparseEmbedding(10, 4, init_std=0.1, cast_to=torch.float32).train()
    before = embedding.weights.clone()
    optimizer = SignSGDSparseEmbedding(embedding, lr=0.1, weight_decay=0.0, gather_rows=collectives.all_gather_rows)
    if rank == 0:  # rank 1 has no pending rows at all
        ids, sink = torch.tensor([1, 3, 3]), embedding.new_grad_sink(3)
        embedding(ids, sink).sum().backward()
        embedding.record(ids, sink)
    optimizer.step()
    expected = before.clone()
    expected[[1, 3]] -= 0.1  # sign of a positive gradient, on every process alike
    torch.testing.assert_close(embedding.weights, expected)


@pytest.mark.distributed
def test_puzzle_embedding_step_joins_its_peers_with_no_rows_of_its_own():
    _in_two_processes(_sparse_step_rank)


def _eval_counts(run_dir: Path) -> list[float]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["count"] for r in records if r["kind"] == "eval"]


@pytest.mark.distributed
@pytest.mark.parametrize("processes", [1, 2])
def test_eval_max_examples_counts_examples_over_all_processes(sudoku4, tmp_path, processes):
    args = ["train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}", "run_name=limited",
            "train.steps=3", "train.eval_interval=2", "train.eval_max_examples=20", *TINY_MODEL]
    if processes == 1:
        hrm(*args)
    else:
        torchrun(*args)
    # The interim evaluation sees exactly 20 of the 64 held-out examples; the final one all 64.
    assert _eval_counts(tmp_path / "limited") == [20, 64]
