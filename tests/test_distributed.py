"""Two real gloo processes under torchrun train exactly like one process with the same global batch."""

import json
import os
import socket
import subprocess
import sys

import torch

from cli_helpers import TINY_MODEL, hrm


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
              "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), "-m", "hrmkit", *args]
    result = subprocess.run(launch, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _losses(run_dir):
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["lm_loss"] for r in records if r["kind"] == "train"], [r for r in records if r["kind"] == "eval"]


def test_two_gloo_processes_match_a_single_process(sudoku4, tmp_path):
    args = ["train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}",
            "train.steps=5", "train.eval_interval=0", "model.halt_exploration_prob=0", "model.puzzle_emb_ndim=32",
            *TINY_MODEL]
    hrm(*args, "run_name=single")
    _torchrun(*args, "run_name=ddp")

    single_losses, single_evals = _losses(tmp_path / "single")
    ddp_losses, ddp_evals = _losses(tmp_path / "ddp")
    assert len(ddp_losses) == len(single_losses) == 5
    torch.testing.assert_close(torch.tensor(ddp_losses), torch.tensor(single_losses), rtol=1e-4, atol=1e-5)
    assert ddp_evals[-1]["count"] == single_evals[-1]["count"] == 64
    single = torch.load(tmp_path / "single" / "final.pt", weights_only=False)["model"]
    ddp = torch.load(tmp_path / "ddp" / "final.pt", weights_only=False)["model"]
    for key in single:
        torch.testing.assert_close(ddp[key], single[key], rtol=1e-4, atol=1e-5, msg=key)


def test_every_rank_resumes_from_the_same_checkpoint(sudoku4, tmp_path):
    args = ["train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}",
            "train.eval_interval=0", "train.checkpoint_interval=3", "model.halt_exploration_prob=0.3", *TINY_MODEL]
    _torchrun(*args, "train.steps=6", "run_name=straight")
    _torchrun(*args, "train.steps=3", "run_name=resumed")
    second = _torchrun(*args, "train.steps=6", "run_name=resumed")
    assert second.stdout.count("resumed from") == 1  # rank 0 speaks for both
    assert _losses(tmp_path / "resumed")[0] == _losses(tmp_path / "straight")[0]
    straight = torch.load(tmp_path / "straight" / "final.pt", weights_only=False)["model"]
    resumed = torch.load(tmp_path / "resumed" / "final.pt", weights_only=False)["model"]
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
