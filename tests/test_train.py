"""The one trainer, driven through the CLI in real processes: resume, corrupt checkpoints, learning."""

import json
import shutil
import time

import numpy as np
import pytest
import torch
from cli_helpers import TINY_MODEL, final_weights, hrm, hrm_here

from hrmkit.puzzles.format import load_split


def train_args(data, runs, name, steps, *extra):
    return ["train", "--config", "quickstart_sudoku4", f"data.path={data}", f"runs_dir={runs}", f"run_name={name}",
            f"train.steps={steps}", "train.eval_interval=0", "train.checkpoint_interval=3", *TINY_MODEL, *extra]


def tiny_run_config(run_name, data, runs, train: dict):
    """The quickstart preset with a tiny model on ``data``, on the CPU without a progress bar, ``train``
    settings on top."""
    from hrmkit.config import load_run_config
    return load_run_config("quickstart_sudoku4", {
        "data": {"path": str(data)}, "runs_dir": str(runs), "run_name": run_name,
        "model": {"hidden_size": 32, "L_layers": 1, "H_cycles": 2, "L_cycles": 2, "halt_max_steps": 2},
        "train": {"global_batch_size": 16, "progress": False, "device": "cpu", **train}})


def train_losses(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["lm_loss"] for r in lines if r["kind"] == "train"}


@pytest.mark.cli
@pytest.mark.parametrize("variant", ["trm", "hrm"])
def test_resume_after_process_exit_reproduces_the_uninterrupted_run(sudoku4, tmp_path, variant):
    options = [f"model.variant={variant}", "model.mlp_t=false", "model.pos_encodings=rope", "model.puzzle_emb_ndim=32",
               "model.halt_exploration_prob=0.3"]
    hrm_here(*train_args(sudoku4, tmp_path, "straight", 6, *options))
    hrm(*train_args(sudoku4, tmp_path, "resumed", 3, *options))
    second = hrm(*train_args(sudoku4, tmp_path, "resumed", 6, *options))
    assert "resumed from" in second.stdout + second.stderr

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert train_losses(straight) == train_losses(resumed)
    weights_a, weights_b = final_weights(straight), final_weights(resumed)
    assert weights_a.keys() == weights_b.keys()
    for key in weights_a:
        assert torch.equal(weights_a[key], weights_b[key]), key


@pytest.mark.cli
def test_a_run_whose_batches_come_from_worker_processes_resumes_like_the_uninterrupted_run(sudoku4, tmp_path):
    """Workers prepare batches ahead of the step: the checkpoint must hold the position of the last batch
    trained on, not of the last one prepared, or the resumed run skips batches. (That starting the workers
    leaves torch's generator alone is tested in test_batch_loader: 6 tiny steps halt the same either way.)"""
    hrm_here(*train_args(sudoku4, tmp_path, "in_process", 6, "data.workers=0"))
    hrm(*train_args(sudoku4, tmp_path, "workers", 3, "data.workers=2"))
    hrm(*train_args(sudoku4, tmp_path, "workers", 6, "data.workers=2"))
    assert train_losses(tmp_path / "in_process") == train_losses(tmp_path / "workers")
    weights_a, weights_b = final_weights(tmp_path / "in_process"), final_weights(tmp_path / "workers")
    assert all(torch.equal(weights_a[key], weights_b[key]) for key in weights_a)


@pytest.mark.cli
def test_a_corrupt_newest_checkpoint_is_skipped_with_a_warning(sudoku4, tmp_path):
    hrm_here(*train_args(sudoku4, tmp_path, "run", 6))
    newest = tmp_path / "run" / "checkpoints" / "step_6.pt"
    newest.write_bytes(newest.read_bytes()[:1000])  # a write cut short
    rerun = hrm(*train_args(sudoku4, tmp_path, "run", 6))
    output = rerun.stdout + rerun.stderr
    assert "warning" in output and "step_6.pt" in output
    assert "resumed from" in output and "step_3.pt" in output


@pytest.mark.cli
def test_a_finished_run_exits_at_once(sudoku4, tmp_path):
    hrm_here(*train_args(sudoku4, tmp_path, "run", 3))
    again = hrm(*train_args(sudoku4, tmp_path, "run", 3))
    assert "already finished" in again.stdout
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("*.pt")) == ["step_3.pt"]


@pytest.mark.cli
def test_a_finished_run_keeps_its_config_and_names_the_settings_it_did_not_use(sudoku4, tmp_path):
    hrm_here(*train_args(sudoku4, tmp_path, "run", 3))
    config = (tmp_path / "run" / "config.yaml").read_text()
    again = hrm(*train_args(sudoku4, tmp_path, "run", 3, "train.lr=0.5"))
    assert "already finished" in again.stdout and "train.lr 0.001 -> 0.5" in again.stdout
    assert (tmp_path / "run" / "config.yaml").read_text() == config  # the config its weights came from


@pytest.mark.cli
def test_a_resume_drops_the_metrics_an_interrupted_attempt_logged_after_its_checkpoint(sudoku4, tmp_path):
    hrm_here(*train_args(sudoku4, tmp_path, "straight", 6, "train.log_steps=1"))
    hrm_here(*train_args(sudoku4, tmp_path, "run", 6, "train.log_steps=1"))
    run = tmp_path / "run"
    for name in ("step_6.pt", "step_6.yaml"):  # as if killed after logging step 6, before its checkpoint
        (run / "checkpoints" / name).unlink()
    for name in ("final", "best-model"):
        shutil.rmtree(run / name)
    hrm(*train_args(sudoku4, tmp_path, "run", 6, "train.log_steps=1"))
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6, 6]  # each step once, then the final evaluation
    assert train_losses(run) == train_losses(tmp_path / "straight")


@pytest.mark.cli
def test_resuming_with_another_model_is_one_line_naming_the_changed_settings(sudoku4, tmp_path):
    hrm_here(*train_args(sudoku4, tmp_path, "run", 3))
    config = (tmp_path / "run" / "config.yaml").read_text()
    other = hrm(*train_args(sudoku4, tmp_path, "run", 6, "model.hidden_size=64"), check=False)
    assert other.returncode == 2 and "Traceback" not in other.stderr
    assert other.stderr.strip().count("\n") == 0 and "model.hidden_size 32 -> 64" in other.stderr
    assert (tmp_path / "run" / "config.yaml").read_text() == config  # the run folder is left as it was
    # Settings that leave the weights loadable resume, with a warning that names them.
    longer = hrm(*train_args(sudoku4, tmp_path, "run", 6, "model.halt_max_steps=5"))
    assert "model.halt_max_steps 4 -> 5" in longer.stdout + longer.stderr and "resumed from" in longer.stdout + longer.stderr


@pytest.mark.cli
def test_run_folder_has_config_metrics_checkpoints_and_best_model(sudoku4, tmp_path):
    hrm_here(*train_args(sudoku4, tmp_path, "run", 6, "train.eval_interval=3", "train.checkpoint_limit=1"))
    run = tmp_path / "run"
    for weights in (run / "final", run / "best-model"):
        assert sorted(p.name for p in weights.iterdir()) == ["config.yaml", "metrics.json", "model.safetensors"]
    assert (run / "config.yaml").exists() and not list(run.glob("*.pt"))
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_6.pt", "step_6.yaml"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [3, 6]
    assert {"exact_accuracy", "accuracy", "steps", "count"} <= evals[-1].keys()
    train = [r for r in records if r["kind"] == "train"]
    assert {"samples_per_s", "tokens_per_s", "ms_per_step", "grad_norm", "lr"} <= train[-1].keys()


@pytest.mark.cli
def test_bad_overrides_are_reported_together_in_one_line(sudoku4, tmp_path):
    result = hrm("train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", "model.hiden_size=3",
                 "train.precision=fp8", check=False)
    assert result.returncode == 2
    err = result.stderr.strip()
    assert "\n" not in err and "hidden_size" in err and "fp8" in err


@pytest.mark.cli
def test_missing_dataset_is_one_line_exit_2(tmp_path):
    result = hrm("train", "--config", "quickstart_sudoku4", f"data.path={tmp_path / 'nope'}", check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "nope" in result.stderr


@pytest.mark.cli
def test_eval_cli_scores_a_checkpoint_and_saves_predictions(trained_sudoku_run, sudoku4, tmp_path):
    result = hrm("eval", "--checkpoint", str(trained_sudoku_run / "final"), "--data", str(sudoku4),
                 "--out", str(tmp_path / "eval"))
    assert "exact accuracy" in result.stdout
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["count"] == 64
    predictions = np.load(tmp_path / "eval" / "predictions.npz")
    assert predictions["predictions"].shape == (64, 16)


@pytest.mark.cli
def test_a_tiny_model_learns_4x4_sudoku_beyond_copying_the_givens(sudoku4, tmp_path):
    hrm("train", "--config", "quickstart_sudoku4", f"data.path={sudoku4}", f"runs_dir={tmp_path}", "run_name=learn",
        "train.steps=150", "train.eval_interval=0", "train.progress=false", "train.global_batch_size=32",
        "model.hidden_size=64", "train.lr=3e-3", "train.lr_warmup_steps=20")
    records = [json.loads(line) for line in (tmp_path / "learn" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert train[-1]["lm_loss"] < 0.6 * train[0]["lm_loss"]
    test = load_split(sudoku4, "test").sets["all"]
    givens = float((test["inputs"] != 1).mean())
    copy_the_givens = givens + (1 - givens) / 4  # givens copied, blanks guessed among 4 digits
    final_eval = [r for r in records if r["kind"] == "eval"][-1]
    assert final_eval["accuracy"] > copy_the_givens + 0.05


def _checkpoint(run_dir, step):
    return torch.load(run_dir / "checkpoints" / f"step_{step}.pt", weights_only=False)


@pytest.mark.cli
def test_reset_progress_starts_from_the_loaded_weights_with_fresh_progress_and_ema(sudoku4, tmp_path):
    ema = ["train.ema=true", "model.puzzle_emb_ndim=32"]
    hrm_here(*train_args(sudoku4, tmp_path, "run", 3, *ema))
    loaded = _checkpoint(tmp_path / "run", 3)["model"]
    # One step at a vanishing learning rate: the weights barely move, so the EMA, which final/
    # holds, must equal the loaded weights; an EMA started from the random init would not.
    reset = hrm(*train_args(sudoku4, tmp_path, "run", 1, *ema, "train.lr=1e-9", "train.puzzle_emb_lr=1e-9",
                            "train.lr_warmup_steps=0", "--reset_progress"))
    assert "progress reset" in reset.stdout
    final = final_weights(tmp_path / "run")
    for key, value in loaded.items():
        torch.testing.assert_close(final[key], value, rtol=0, atol=1e-6, msg=key)
    restarted = _checkpoint(tmp_path / "run", 1)
    assert restarted["step"] == 1
    assert all(int(s["step"]) == 1 for s in restarted["optimizers"][0]["state"].values())  # a fresh optimizer


@pytest.mark.cli
def test_reset_progress_moves_the_run_so_far_into_a_generation_and_resume_and_report_agree(sudoku4, tmp_path):
    hrm_here(*train_args(sudoku4, tmp_path, "run", 6, "train.eval_interval=3"))
    run = tmp_path / "run"
    before = {name: (run / name).read_bytes() for name in ("metrics.jsonl", "config.yaml", "final/model.safetensors")}
    hrm(*train_args(sudoku4, tmp_path, "run", 2, "train.lr=1e-2", "--reset_progress"))
    old = run / "generations" / "1"
    assert {name: (old / name).read_bytes() for name in before} == before  # the first generation, whole
    assert sorted(p.name for p in (old / "checkpoints").glob("*.pt")) == ["step_3.pt", "step_6.pt"]
    assert sorted(p.name for p in (run / "checkpoints").glob("*.pt")) == ["step_0.pt", "step_2.pt"]
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 2  # this generation's steps only
    assert "lr: 0.01" in (run / "config.yaml").read_text()
    # A plain rerun finds this generation finished (not the 6-step one) and prints its figure.
    again = hrm(*train_args(sudoku4, tmp_path, "run", 2, "train.lr=1e-2"))
    assert "already finished: stored step 2" in again.stdout
    final_eval = json.loads((run / "final" / "metrics.json").read_text())["metrics"]
    assert f"token accuracy {final_eval['accuracy']:.2%}" in again.stdout
    # Counted in examples (a routing puzzle is one example per vehicle), and the token figure is a mean per example.
    assert (f"over {int(final_eval['count'])} examples (token accuracy {final_eval['accuracy']:.2%}, the mean of "
            "each example's share of tokens right") in again.stdout
    hrm("report", str(run), "--out", str(tmp_path / "report"))
    assert "2 logged of 2 configured" in (tmp_path / "report" / "report.md").read_text()


@pytest.mark.cli
def test_a_reset_run_killed_before_its_first_checkpoint_resumes_from_the_loaded_weights(sudoku4, tmp_path):
    hrm_here(*train_args(sudoku4, tmp_path, "run", 3))
    loaded = _checkpoint(tmp_path / "run", 3)["model"]
    hrm(*train_args(sudoku4, tmp_path, "run", 3, "--reset_progress"))
    run = tmp_path / "run"
    for path in (run / "checkpoints").glob("step_3.*"):  # as if killed before the reset run's first checkpoint
        path.unlink()
    rerun = hrm(*train_args(sudoku4, tmp_path, "run", 3))
    assert "step_0.pt at step 0" in rerun.stdout
    start = _checkpoint(run, 0)["model"]
    assert all(torch.equal(start[key], value) for key, value in loaded.items())


@pytest.mark.cli
def test_ema_averages_trainable_parameters_only_and_keeps_the_live_puzzle_embeddings(sudoku4, tmp_path):
    hrm_here(*train_args(sudoku4, tmp_path, "run", 3, "train.ema=true", "train.ema_rate=0.5", "model.puzzle_emb_ndim=32"))
    state = _checkpoint(tmp_path / "run", 3)
    live, averaged = state["model"], {k.removeprefix("inner."): v for k, v in state["ema"].items()}
    from hrmkit.config import load_run_config
    from hrmkit.model.act import ACTModel
    cfg = load_run_config("quickstart_sudoku4").model
    cfg.hidden_size, cfg.L_layers, cfg.H_cycles, cfg.L_cycles, cfg.halt_max_steps = 32, 1, 2, 2, 4
    cfg.puzzle_emb_ndim, cfg.vocab_size, cfg.seq_len, cfg.num_puzzle_identifiers = 32, 6, 16, 1
    parameters = {name.removeprefix("inner.") for name, _ in ACTModel(cfg).named_parameters()}
    assert set(averaged) == parameters  # no buffers: no puzzle_emb.weights, no H_init / L_init
    final = final_weights(tmp_path / "run")
    assert torch.equal(final["puzzle_emb.weights"], live["puzzle_emb.weights"])
    name = next(iter(parameters))
    assert torch.equal(final[name], averaged[name]) and not torch.equal(final[name], live[name])


@pytest.mark.cli
def test_hrm_small_trains_hrm_with_the_exact_q_target(sudoku4, tmp_path):
    hrm("train", "--config", "hrm_small", f"data.path={sudoku4}", f"runs_dir={tmp_path}", "train.steps=2",
        "train.log_steps=1", "train.progress=false")
    lines = [json.loads(line) for line in (tmp_path / "hrm_small" / "metrics.jsonl").read_text().splitlines()]
    assert all("q_continue_loss" in r for r in lines if r["kind"] == "train")  # HRM's Q-learning ran
    saved = (tmp_path / "hrm_small" / "config.yaml").read_text()
    assert "variant: hrm" in saved and "reuse_q_target_forward: false" in saved


def test_a_task_whose_evaluation_scores_only_a_loss_trains_and_keeps_its_lowest_loss(sudoku4, tmp_path):
    """The Task protocol asks evaluate() for metric sums with `count`; one without `exact_accuracy` (a
    custom family's) stopped the run at its first evaluation with a KeyError."""
    from hrmkit.puzzles.task import PuzzleTask
    from hrmkit.train.trainer import Trainer

    class LossOnlyTask(PuzzleTask):
        def evaluate(self, model, device, autocast, max_examples):
            sums = super().evaluate(model, device, autocast, max_examples)
            return {"count": sums["count"], "loss": float(self.step_losses.pop(0)) * sums["count"]}

    cfg = tiny_run_config("r", sudoku4, tmp_path, {"steps": 6, "eval_interval": 2})
    trainer = Trainer(cfg, LossOnlyTask, log=lambda *_: None)
    trainer.task.step_losses = [3.0, 1.0, 2.0]  # evaluations at steps 2, 4 and 6 (the final one)
    result = trainer.train()
    assert result["eval"]["loss"] == 2.0
    best = json.loads((tmp_path / "r" / "best-model" / "metrics.json").read_text())
    assert best["step"] == 4 and best["metrics"]["loss"] == 1.0


@pytest.mark.parametrize(("scored", "best_step"), [
    ({"exact_accuracy": [0.0, 0.0, 0.0], "loss": [3.0, 1.0, 2.0]}, 4),  # code: exact match 0 all along
    ({"exact_accuracy": [0.0, 0.0, 0.0], "accuracy": [0.2, 0.5, 0.4]}, 4),  # puzzles early on: no loss scored
    ({"exact_accuracy": [0.0, 0.5, 0.25], "loss": [1.0, 3.0, 0.5]}, 4),  # exact accuracy still comes first
])
def test_best_model_breaks_a_tie_in_exact_accuracy_by_loss_else_token_accuracy(sudoku4, tmp_path, scored, best_step):
    """With exact match 0 at every evaluation (an MBPP run), best-model/ stayed at the first evaluation's
    weights, whatever the later validation losses."""
    from hrmkit.puzzles.task import PuzzleTask
    from hrmkit.train.trainer import Trainer

    class ScriptedTask(PuzzleTask):
        def evaluate(self, model, device, autocast, max_examples):
            count = super().evaluate(model, device, autocast, max_examples)["count"]
            return {"count": count, **{name: values.pop(0) * count for name, values in self.scripted.items()}}

    cfg = tiny_run_config("r", sudoku4, tmp_path, {"steps": 6, "eval_interval": 2})
    trainer = Trainer(cfg, ScriptedTask, log=lambda *_: None)
    trainer.task.scripted = {name: list(values) for name, values in scored.items()}  # evaluations at 2, 4, 6
    trainer.train()
    assert json.loads((tmp_path / "r" / "best-model" / "metrics.json").read_text())["step"] == best_step


def test_the_final_weights_are_ranked_on_the_examples_the_interim_evaluations_scored(sudoku4, tmp_path):
    """The interim evaluations score the first train.eval_max_examples examples, the final one all of them.
    best-model/ compared the final score on all examples with interim scores on the first few, so where the
    rest are harder it kept older weights that were worse on the very examples they were ranked by."""
    from hrmkit.puzzles.task import PuzzleTask
    from hrmkit.train.trainer import Trainer

    class HarderTailTask(PuzzleTask):  # the first 20 examples are solved more often than the rest
        def evaluate(self, model, device, autocast, max_examples):
            count = super().evaluate(model, device, autocast, max_examples)["count"]
            rate = self.solved_first_20.pop(0) if max_examples else self.solved_all.pop(0)
            return {"count": count, "exact_accuracy": rate * count}

    cfg = tiny_run_config("r", sudoku4, tmp_path, {"steps": 6, "eval_interval": 3, "eval_max_examples": 20})
    trainer = Trainer(cfg, HarderTailTask, log=lambda *_: None)
    trainer.task.solved_first_20, trainer.task.solved_all = [0.5, 0.7], [0.4]  # step 3 on 20; step 6 on 20, all
    trainer.train()
    best = json.loads((tmp_path / "r" / "best-model" / "metrics.json").read_text())
    assert best["step"] == 6 and best["metrics"]["exact_accuracy"] == pytest.approx(0.4)  # as scored on all
    evals = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()
             if json.loads(line)["kind"] == "eval"]
    assert [(e["step"], e["count"]) for e in evals] == [(3, 20), (6, trainer.task.eval_split.num_examples())]


def test_log_lines_time_the_training_steps_not_the_evaluations_between_them(sudoku4, tmp_path):
    """A log line's samples/s and ms/step counted the evaluation and checkpoint save that ran since the
    line before: 3-11x too slow a throughput in hrm report, and it disagreed with the run's own train_s."""
    from hrmkit.puzzles.task import PuzzleTask
    from hrmkit.train.trainer import Trainer

    class SlowEvaluationTask(PuzzleTask):
        def evaluate(self, model, device, autocast, max_examples):
            time.sleep(2.0)
            return super().evaluate(model, device, autocast, max_examples)

    cfg = tiny_run_config("r", sudoku4, tmp_path, {"steps": 6, "eval_interval": 2, "log_steps": 2})
    result = Trainer(cfg, SlowEvaluationTask, log=lambda *_: None).train()
    lines = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    logged_seconds = sum(line["ms_per_step"] * 2 / 1000 for line in lines if line["kind"] == "train")
    assert len([line for line in lines if line["kind"] == "eval"]) == 3  # at 2 and 4 inside log windows, at 6
    assert logged_seconds == pytest.approx(result["train_seconds"], abs=0.5)  # two 2-s evaluations left out


def test_the_progress_bar_shows_the_logged_throughput_and_the_final_evaluation(sudoku4, tmp_path, capsys):
    """The bar's samples/s divided by wall time, evaluations included, so it disagreed with metrics.jsonl and
    hrm report; and its eval figure was the last interim evaluation's, never the final one."""
    from hrmkit.puzzles.task import PuzzleTask
    from hrmkit.train.trainer import Trainer

    class SlowEvaluationTask(PuzzleTask):  # a 2-s evaluation, each scoring 10 points more than the one before
        evaluations = 0

        def evaluate(self, model, device, autocast, max_examples):
            time.sleep(2.0)
            count = super().evaluate(model, device, autocast, max_examples)["count"]
            self.evaluations += 1
            return {"count": count, "exact_accuracy": count * self.evaluations / 10}

    cfg = tiny_run_config("r", sudoku4, tmp_path, {"steps": 4, "eval_interval": 2, "log_steps": 4, "progress": True})
    result = Trainer(cfg, SlowEvaluationTask, log=lambda *_: None).train()
    assert result["eval"]["exact_accuracy"] == pytest.approx(0.2)
    last_bar = [line for line in capsys.readouterr().out.splitlines() if "samples/s" in line][-1]
    logged = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    train_line = [line for line in logged if line["kind"] == "train"][-1]
    assert f" {train_line['samples_per_s']:.0f} samples/s" in last_bar
    assert f"eval exact {result['eval']['exact_accuracy']:.3f}" in last_bar


def test_a_run_stopped_during_its_final_evaluation_is_finished_by_a_rerun(sudoku4, tmp_path):
    """A run killed after its last step was saved but before final/ was written (during the final evaluation)
    was 'already finished' on every rerun: no final/, no final evaluation line, exit 0."""
    from hrmkit.config import load_run_config
    from hrmkit.puzzles.task import PuzzleTask
    from hrmkit.train.trainer import Trainer

    cfg = tiny_run_config("r", sudoku4, tmp_path, {"steps": 4, "checkpoint_interval": 2})
    Trainer(cfg, PuzzleTask, log=lambda *_: None).train()
    run = tmp_path / "r"
    uninterrupted = (run / "metrics.jsonl").read_text().splitlines()
    shutil.rmtree(run / "final")  # what the kill left: step 4 saved, its evaluation neither logged nor final/ written
    (run / "metrics.jsonl").write_text("".join(f"{line}\n" for line in uninterrupted[:-1]))
    result = Trainer(load_run_config(str(run / "config.yaml"), {}), PuzzleTask, log=lambda *_: None).train()
    assert not result.get("already_finished") and (run / "final" / "model.safetensors").is_file()
    rerun = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["kind"] for line in rerun] == [json.loads(line)["kind"] for line in uninterrupted]
    final = json.loads(rerun[-1])
    assert (final["step"], final["exact_accuracy"]) == (4, json.loads(uninterrupted[-1])["exact_accuracy"])


@pytest.mark.parametrize(("schedule", "changed"), [
    ("cosine_annealing", {}),  # a pytorch scheduler restored its own T_max: the lr climbed back to the peak
    ("cosine", {"lr": 5e-4, "weight_decay": 0.5}),  # the checkpoint's lr and weight decay ran, not the config's
])
def test_a_resumed_run_follows_the_schedule_and_settings_its_config_gives_now(sudoku4, tmp_path, schedule, changed):
    """Resumed with a larger train.steps (and other settings), a run trains on as one started with them."""
    from hrmkit.puzzles.task import PuzzleTask
    from hrmkit.train.trainer import Trainer

    def train(run_name, steps, **settings):
        cfg = tiny_run_config(run_name, sudoku4, tmp_path, {"steps": steps, "lr_schedule": schedule, "lr_warmup_steps": 2,
                                                            "lr_min_ratio": 0.1, "log_steps": 1, **settings})
        said = []
        trainer = Trainer(cfg, PuzzleTask, log=said.append)
        trainer.train()
        lines = [json.loads(line) for line in (tmp_path / run_name / "metrics.jsonl").read_text().splitlines()]
        groups = trainer.optimizers[0].param_groups
        return {line["step"]: line["lr"] for line in lines if line["kind"] == "train"}, groups, said

    train("resumed", 6)
    resumed, groups, said = train("resumed", 12, **changed)
    started_so, _, _ = train("started_so", 12, **changed)
    assert [resumed[step] for step in range(7, 13)] == pytest.approx([started_so[step] for step in range(7, 13)])
    assert resumed[12] == min(resumed.values())  # it ends at the bottom of the new schedule, not at the peak
    if schedule == "cosine":  # whose last step trains at lr_min_ratio of the rate
        assert resumed[12] == pytest.approx(changed["lr"] * 0.1)
    assert all(group["weight_decay"] == changed.get("weight_decay", 0.1) for group in groups)
    assert any("train.steps 6 -> 12" in line for line in said)


def test_a_log_line_shows_the_learning_rate_its_step_trained_at(sudoku4, tmp_path):
    """Each line showed the rate the scheduler had just set for the next step: the peak of a 4-step warmup
    appeared at step 3, and a run's last line showed a rate no step used."""
    from hrmkit.puzzles.task import PuzzleTask
    from hrmkit.train.trainer import Trainer

    cfg = tiny_run_config("r", sudoku4, tmp_path, {"steps": 8, "lr": 1e-3, "lr_schedule": "linear", "lr_warmup_steps": 4,
                                                    "lr_min_ratio": 0.1, "log_steps": 1})
    Trainer(cfg, PuzzleTask, log=lambda *_: None).train()
    lines = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    # Warmup: step k of 4 at k/4 of the rate; then linear down to 0.1 of it at step 8.
    by_hand = [2.5e-4, 5e-4, 7.5e-4, 1e-3, 7.75e-4, 5.5e-4, 3.25e-4, 1e-4]
    assert [line["lr"] for line in lines if line["kind"] == "train"] == pytest.approx(by_hand)


def test_epochs_count_the_references_rows_per_pass_and_evaluations_follow_passes(tmp_path):
    """One pass draws one puzzle of every group with all its examples: 11 groups of one 3-example puzzle
    are 33 rows, 5.5 batches of 6. Before, a pass was counted as ceil(11 groups / 6) = 2 steps, so
    train.epochs=2 trained 4 steps where the reference trains 11."""
    from collections import Counter

    from hrmkit.config import load_run_config
    from hrmkit.puzzles.format import PuzzleDatasetMetadata, write_dataset
    from hrmkit.puzzles.task import PuzzleTask
    from hrmkit.train.trainer import Trainer

    groups, examples, seq_len = 11, 3, 4
    rows = np.arange(groups * examples * seq_len, dtype=np.int32).reshape(-1, seq_len) % 63 + 1  # 33 distinct rows
    arrays = {"inputs": rows, "labels": rows.copy(), "puzzle_identifiers": np.zeros(groups, dtype=np.int32),
              "puzzle_indices": np.arange(0, groups * examples + 1, examples, dtype=np.int32),
              "group_indices": np.arange(groups + 1, dtype=np.int32)}
    meta = PuzzleDatasetMetadata(pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=64, seq_len=seq_len,
                                 num_puzzle_identifiers=1, total_groups=groups, mean_puzzle_examples=examples,
                                 sets=["all"])
    write_dataset(tmp_path / "data", {"train": {"all": arrays}, "test": {"all": arrays}},
                  {"train": meta, "test": meta}, ["<blank>"])
    cfg = load_run_config("quickstart_sudoku4", {
        "data": {"path": str(tmp_path / "data")}, "runs_dir": str(tmp_path / "runs"),
        "model": {"vocab_size": 0, "seq_len": 0, "hidden_size": 16, "num_heads": 2},
        "train": {"global_batch_size": 6, "epochs": 2, "eval_interval_epochs": 1, "device": "cpu", "progress": False}})
    trainer = Trainer(cfg, PuzzleTask, log=lambda *_: None)
    assert (trainer.cfg.train.steps, trainer.cfg.train.eval_interval) == (11, 5)

    # The reference's sampler shuffles as many passes at a time as it trains between evaluations, so two
    # passes shuffled together are 66 rows, 11 whole batches: every row exactly twice, none dropped (one pass
    # at a time drops the 3 rows of its partial last batch).
    cfg.train.eval_interval_epochs = 2
    sampler = Trainer(cfg, PuzzleTask, log=lambda *_: None).task.batches.source
    drawn = Counter(tuple(row) for _ in range(11) for row in sampler.next_batch()["inputs"].tolist())
    assert drawn == Counter({tuple(row): 2 for row in rows.tolist()})
