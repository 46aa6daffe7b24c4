"""Two real gloo processes under torchrun train exactly like one process with the same global batch."""

import json

import pytest
import torch
from cli_helpers import TINY_MODEL, final_weights, hrm, torchrun


def _losses(run_dir):
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["lm_loss"] for r in records if r["kind"] == "train"], [r for r in records if r["kind"] == "eval"]


@pytest.mark.distributed
def test_two_gloo_processes_match_a_single_process(sudoku4, tmp_path):
    # fp32: under bf16 (auto on a bf16 CPU) each process rounds its half batch on its own
    args = ["train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}",
            "train.precision=fp32", "train.steps=5", "train.eval_interval=0", "model.halt_exploration_prob=0", "model.puzzle_emb_ndim=32",
            *TINY_MODEL]
    hrm(*args, "run_name=single")
    torchrun(*args, "run_name=ddp")

    single_losses, single_evals = _losses(tmp_path / "single")
    ddp_losses, ddp_evals = _losses(tmp_path / "ddp")
    assert len(ddp_losses) == len(single_losses) == 5
    torch.testing.assert_close(torch.tensor(ddp_losses), torch.tensor(single_losses), rtol=1e-4, atol=1e-5)
    assert ddp_evals[-1]["count"] == single_evals[-1]["count"] == 64
    single = final_weights(tmp_path / "single")
    ddp = final_weights(tmp_path / "ddp")
    for key in single:
        torch.testing.assert_close(ddp[key], single[key], rtol=1e-4, atol=1e-5, msg=key)


@pytest.mark.distributed
def test_every_rank_resumes_from_the_same_checkpoint(sudoku4, tmp_path):
    args = ["train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}",
            "train.eval_interval=0", "train.checkpoint_interval=3", "model.halt_exploration_prob=0.3", *TINY_MODEL]
    torchrun(*args, "train.steps=6", "run_name=straight")
    torchrun(*args, "train.steps=3", "run_name=resumed")
    second = torchrun(*args, "train.steps=6", "run_name=resumed")
    assert second.stdout.count("resumed from") == 1  # rank 0 speaks for both
    assert _losses(tmp_path / "resumed")[0] == _losses(tmp_path / "straight")[0]
    straight = final_weights(tmp_path / "straight")
    resumed = final_weights(tmp_path / "resumed")
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


EXIT_PROBE = """
import atexit, os, sys
from pathlib import Path
atexit.register(lambda: Path(os.environ["HRMKIT_PROBE_DIR"], "rank" + os.environ["RANK"]).touch())
from hrmkit.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.distributed
def test_a_finished_distributed_run_leaves_without_the_interpreters_teardown(sudoku4, tmp_path):
    """gloo's threads abort the interpreter's teardown now and then (SIGABRT, "terminate called without
    an active exception", a failed run to torchrun), so every rank leaves through os._exit once all is
    written: an atexit handler never runs."""
    probe = tmp_path / "probe.py"
    probe.write_text(EXIT_PROBE)
    args = ["train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}",
            "train.eval_interval=0", "train.steps=2", "run_name=probed", *TINY_MODEL]
    torchrun(*args, script=probe, env={"HRMKIT_PROBE_DIR": str(tmp_path)})
    assert (tmp_path / "probed" / "final").is_dir()
    assert not list(tmp_path.glob("rank*")), "a rank ran the interpreter's teardown"


@pytest.mark.distributed
def test_two_gloo_processes_train_hrm_lm_like_one(tmp_path):
    from hrmkit.lm.arithmetic import build_arithmetic_corpus
    corpus = tmp_path / "arith"
    build_arithmetic_corpus(corpus, digits=1, train=120, val=20, test=0, seed=0)
    args = ["train", "task=seq2seq", f"data.path={corpus}", "data.eval_split=val", f"runs_dir={tmp_path}",
            "train.steps=4", "train.eval_interval=0", "train.global_batch_size=8", "train.progress=false", "train.log_steps=1", "model.hidden_size=32", "model.num_heads=2",
            "model.encoder_layers=1", "model.decoder_layers=1", "model.H_layers=1", "model.L_layers=1",
            "model.halt_max_steps=2", "model.moe.num_experts=2", "model.moe.top_k=1", "model.moe.capacity_factor=4"]
    # The MoE balance loss is a statistic of each micro-batch: give both runs the same micro-batches
    # (one process: 4 of 2 rows; two processes: 2 of 2 rows each).
    hrm(*args, "run_name=single", "train.grad_accum_steps=4")
    torchrun(*args, "run_name=ddp", "train.grad_accum_steps=2")
    single_losses, single_evals = _losses(tmp_path / "single")
    ddp_losses, ddp_evals = _losses(tmp_path / "ddp")
    assert len(ddp_losses) == len(single_losses) == 4
    torch.testing.assert_close(torch.tensor(ddp_losses), torch.tensor(single_losses), rtol=1e-4, atol=1e-5)
    assert ddp_evals[-1]["count"] == single_evals[-1]["count"] == 20
    assert abs(ddp_evals[-1]["exact_accuracy"] - single_evals[-1]["exact_accuracy"]) < 1e-9
    single = final_weights(tmp_path / "single")
    ddp = final_weights(tmp_path / "ddp")
    for key in single:
        torch.testing.assert_close(ddp[key], single[key], rtol=1e-4, atol=1e-5, msg=key)


@pytest.mark.distributed
def test_resuming_with_another_process_count_says_what_to_type(sudoku4, tmp_path):
    args = ["train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}", "run_name=run",
            "train.steps=2", "train.eval_interval=0", *TINY_MODEL]
    hrm(*args)
    result = torchrun(*[a.replace("train.steps=2", "train.steps=4") for a in args], check=False)
    assert result.returncode != 0
    assert ("written by 1 processes, this run has 2: resume it with 1 (each holds its place in the data), or add "
            "--reset_progress to continue from its weights, or pick a new run_name") in result.stderr


@pytest.mark.distributed
def test_an_error_on_rank_0_alone_ends_the_job_with_its_message_instead_of_hanging(sudoku4, tmp_path):
    """Rank 0 failed writing a file (here config.yaml, named by a folder) and went to wait for the others,
    who waited in the next collective: the job hung with no message (a user audit; torchrun's 300 s here)."""
    run = tmp_path / "run"
    (run / "config.yaml").mkdir(parents=True)
    result = torchrun("train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}",
                      "run_name=run", "train.steps=4", *TINY_MODEL, check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: {run / 'config.yaml'} is a folder; give the name of the file to write",
                      "error: another process of this torchrun job ended (its error is above); this one stops too"]


@pytest.mark.distributed
def test_an_evaluation_batch_the_processes_cannot_share_is_refused_before_training(sudoku4, tmp_path):
    """It was accepted, and failed at the first evaluation, which with eval_interval=0 came after every step,
    so final/ was never written (a user audit)."""
    result = torchrun("train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}",
                      "run_name=run", "train.steps=3", "train.eval_interval=0", "train.eval_batch_size=15", *TINY_MODEL,
                      check=False)
    assert result.returncode != 0
    assert ("error: train.eval_batch_size 15 is not divisible by the 2 processes: each scores the same number of "
            "rows per batch") in result.stderr
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
