"""The one training loop. A task supplies batches, losses and evaluation; this owns the rest:
optimizers and schedule, precision, accumulation, clipping, EMA, checkpoints and automatic
resume, logging, progress, and the process group under torchrun.

Run folder (``runs/<run_name>/``): ``config.yaml`` (resolved), ``metrics.jsonl``,
``checkpoints/step_<N>.pt`` (+ ``.yaml``), weights folders ``final/`` and ``best-model/`` (see weights); with
``train.logger``, ``tensorboard/`` or ``wandb/`` + ``wandb_run_id.txt`` (see ``loggers``); after
``--reset_progress``, the earlier generations of the run in ``generations/<n>/`` (see run_history).
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from hrmkit.config import RunConfig
from hrmkit.config_base import config_to_dict, save_config_yaml
from hrmkit.model.core import set_recursion_depth
from hrmkit.model.losses import widest_float
from hrmkit.progress import TrainProgress
from hrmkit.train import checkpoint as ckpt
from hrmkit.train import collectives
from hrmkit.train.distributed import ProcessInfo, init_processes, local_rank, pick_device
from hrmkit.train.ema import ParameterEMA
from hrmkit.train.loggers import (
    MetricsLogger,
    NullLogger,
    check_logger_available,
    open_logger,
    record_scalars,
)
from hrmkit.train.lr_schedule import build_scheduler
from hrmkit.train.metric_window import MetricWindow
from hrmkit.train.optimizers import build_optimizer, load_state_keeping_settings
from hrmkit.train.run_history import (
    RunFolderBusy,
    claim_run_folder,
    drop_metrics_after,
    interrupted_reset,
    release_run_folder,
    stale_best_model,
    start_new_generation,
)
from hrmkit.train.speed_settings import autocast_for, batch_to, resolve_speed_settings, synchronize
from hrmkit.train.stop_request import RunStopped, StopRequest
from hrmkit.train.task import Task, metric_means
from hrmkit.train.weights import is_weights_folder, save_weights_folder


def _rank_of(metrics: dict) -> tuple[float, float]:
    """How an evaluation ranks for best-model/: exact accuracy first; between equals (early in training,
    or generated code that never matches its reference exactly) the lower validation loss, else the
    higher token accuracy. On exact accuracy alone the first evaluation stayed best through any tie."""
    tie_break = -metrics["loss"] if "loss" in metrics else metrics.get("accuracy", 0.0)
    return metrics["exact_accuracy"], tie_break


class Trainer:
    def __init__(self, cfg: RunConfig, task_factory, reset_progress: bool = False, log=print):
        self.cfg, self.log = cfg, log
        tc = cfg.train
        check_logger_available(tc.logger)  # every process: a missing package stops all of them at once
        if tc.threads > 0:
            torch.set_num_threads(tc.threads)
        self.device = pick_device(tc.device, local_rank())
        resolve_speed_settings(cfg, self.device)  # config.yaml then records what ran, not "auto"
        self.proc: ProcessInfo = init_processes(self.device)
        if tc.eval_batch_size % self.proc.world_size:  # found at the first evaluation, perhaps after all the steps
            raise ValueError(f"train.eval_batch_size {tc.eval_batch_size} is not divisible by the {self.proc.world_size} "
                             "processes: each scores the same number of rows per batch")
        if not self.proc.is_main:  # one voice: rank 0 speaks for all processes
            self.log = lambda *_: None
        self.task: Task = task_factory(cfg, self.proc.rank, self.proc.world_size)
        self.task.fill_model_config()
        if tc.epochs > 0:  # the reference's total_steps: int(epochs * examples per pass / batch)
            tc.steps = max(1, int(tc.epochs * self.task.steps_per_epoch))
        if tc.eval_interval_epochs > 0:
            tc.eval_interval = max(1, int(tc.eval_interval_epochs * self.task.steps_per_epoch))
        _seed_everything(tc.seed)
        self.model = self.task.build_model().to(self.device)
        self.forward_model = torch.compile(self.model) if tc.compile else self.model
        self.optimizers, self.schedulers = self._build_optimizers()
        # fp16 needs loss scaling to keep small gradients from flushing to zero; bf16 and fp32 do not.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=tc.precision == "fp16")
        self.ema: ParameterEMA | None = None  # built by _resume, from the weights the run starts with
        self.run_dir = Path(cfg.runs_dir) / cfg.run_name
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.step = 0
        self.best_rank: tuple[float, float] = (-1.0, -math.inf)  # of the weights in best-model/ (_rank_of)
        self.best_loss = math.inf
        self.evals_without_better_loss = 0
        self.elapsed_before = 0.0
        self.window: MetricWindow | None = None  # the train metrics since the last log line, while train() runs
        self.resumed_window: dict | None = None
        self.train_seconds = 0.0  # time inside training steps only (no evaluation, no saving)
        self.trained_lr: float | None = None  # the learning rate the last step ran at (what a log line shows)
        self.started = time.perf_counter()
        self.metrics_logger: MetricsLogger = NullLogger()  # set while train() runs (rank 0 only)
        self.saved_step = -1  # the step of the newest checkpoint this process saved
        self.new_generation = False  # --reset_progress moved the run so far into generations/<n>/
        self._run_folder = self._claim_run_folder()
        try:
            self._resume(reset_progress)
        except BaseException:
            self._release_run_folder()
            raise

    def _claim_run_folder(self):
        """One process trains a run at a time (run_history.claim_run_folder); under torchrun rank 0 holds
        the folder for all of them, and they all stop when another run holds it."""
        handle, busy = None, None
        if self.proc.is_main:
            try:
                handle = claim_run_folder(self.run_dir)
            except RunFolderBusy as error:
                busy = error
        if collectives.any_process(busy is not None):
            raise busy or RunFolderBusy(f"{self.run_dir} is being trained by another process")
        return handle

    def _release_run_folder(self) -> None:
        if self._run_folder is not None:
            release_run_folder(self._run_folder)
            self._run_folder = None

    # -- setup -----------------------------------------------------------------------------------
    def _build_optimizers(self):
        tc = self.cfg.train
        params = [p for p in self.model.parameters() if p.requires_grad]
        main = build_optimizer(tc.optimizer, params, lr=tc.lr, weight_decay=tc.weight_decay,
                               betas=(tc.beta1, tc.beta2), kwargs=tc.optimizer_kwargs)
        optimizers = [main, *self.task.extra_optimizers(self.model)]
        schedulers = [build_scheduler(opt, tc.lr_schedule, tc.lr_warmup_steps, tc.steps, tc.lr_min_ratio,
                                      tc.lr_schedule_kwargs) for opt in optimizers]
        if unused := schedulers[0].unused_settings:
            self.log(f"warning: lr scheduler '{tc.lr_schedule}' has no option for {' or '.join(unused)}: not used")
        return optimizers, schedulers

    def _autocast(self):
        return autocast_for(self.cfg.train.precision, self.device)

    # -- checkpoints -----------------------------------------------------------------------------
    def _state(self, task_states: list[dict], window: dict | None) -> dict:
        return {
            "step": self.step,
            "model": self.model.checkpoint_module.state_dict(),
            "optimizers": [opt.state_dict() for opt in self.optimizers],
            "schedulers": [s.state_dict() for s in self.schedulers],
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "task_by_rank": task_states,  # sampler position and ACT carries differ per process
            "log_window": window,  # the train metrics since the last log line (MetricWindow.state_dict)
            "rng": _rng_state(),
            "best_rank": list(self.best_rank),
            "early_stop": {"best_loss": self.best_loss, "evals_without_better_loss": self.evals_without_better_loss},
            # What the names resolved to, so a resumed run (and a reader) knows exactly what ran.
            "resolved": {"optimizers": [type(opt).__name__ for opt in self.optimizers],
                         "schedulers": [s.name for s in self.schedulers],
                         "optimizer_kwargs": self.cfg.train.optimizer_kwargs,
                         "lr_schedule_kwargs": self.cfg.train.lr_schedule_kwargs,
                         "loss": self.cfg.model.loss, "loss_kwargs": self.cfg.model.loss_kwargs},
            "elapsed": self.elapsed_before + (time.perf_counter() - self.started),
            "train_seconds": self.train_seconds,
            "config": config_to_dict(self.cfg),
        }

    def _resume(self, reset_progress: bool) -> None:
        """Load the newest checkpoint, if any; then start the EMA from the weights the run starts
        with (after --reset_progress: the loaded weights, not the checkpoint's average)."""
        # A --reset_progress that stopped before its new generation's first checkpoint: start it again
        # (with or without the flag), rather than from random weights.
        unfinished_reset = interrupted_reset(self.run_dir)
        weights_only = reset_progress or unfinished_reset is not None
        state = self._load_newest_checkpoint(weights_only, unfinished_reset)
        if reset_progress and unfinished_reset is None and state is not None:
            collectives.barrier()  # every process has read the checkpoint before rank 0 moves it away
            if self.proc.is_main:
                self.log(f"the run so far moved to {start_new_generation(self.run_dir)}")
            collectives.barrier()
        self.new_generation = weights_only and state is not None
        if self.cfg.train.ema:
            self.ema = ParameterEMA(self.model, self.cfg.train.ema_rate)
            if state is not None and not weights_only and state.get("ema") is not None:
                self.ema.load_state_dict({k: v.to(self.device) for k, v in state["ema"].items()})

    def _load_newest_checkpoint(self, weights_only: bool, unfinished_reset: Path | None = None) -> dict | None:
        """The newest checkpoint's state; ``weights_only`` (--reset_progress, or one that stopped early) loads
        its weights and leaves the rest of the run (optimizers, schedule, step) at their start."""
        path, warnings = ckpt.find_resumable(unfinished_reset / "checkpoints" if unfinished_reset else self.ckpt_dir)
        for warning in warnings:
            self.log(f"warning: {warning}")
        if path is None:
            return None
        if unfinished_reset is not None:
            self.log(f"--reset_progress moved the run to {unfinished_reset} and stopped before the new generation's "
                     f"first checkpoint: it starts again from the weights it had loaded")
        state = ckpt.load_checkpoint_file(path)
        changed = _changed_settings({"model": state.get("config", {}).get("model", {})},
                                    {"model": config_to_dict(self.cfg)["model"]})
        try:
            self.model.checkpoint_module.load_state_dict(state["model"])
        except RuntimeError:  # the weights do not fit this model: say which settings moved, not a shape dump
            raise ckpt.CheckpointError(
                f"{self.run_dir} holds a run of another model ({changed or 'different weights'}); "
                "pick a new run_name or remove that folder") from None
        if changed:
            self.log(f"warning: resuming {path} with model settings changed since it was saved: {changed}")
        if weights_only:
            self.log(f"loaded weights from {path}; progress reset (--reset_progress)")
            return state
        saved_optimizers = state.get("resolved", {}).get("optimizers")
        built_optimizers = [type(opt).__name__ for opt in self.optimizers]
        if saved_optimizers and saved_optimizers != built_optimizers:  # the state of one is not the other's
            raise ckpt.CheckpointError(
                f"{path} was trained with {'/'.join(saved_optimizers)}, not {'/'.join(built_optimizers)}: keep its "
                f"train.optimizer, or add --reset_progress to go on from its weights with the new one")
        changed_training = _changed_settings({"train": state.get("config", {}).get("train", {})},
                                             {"train": config_to_dict(self.cfg)["train"]})
        if changed_training:
            self.log(f"resuming with training settings changed since {path} was saved (they apply from its step "
                     f"on): {changed_training}")
        for opt, opt_state in zip(self.optimizers, state["optimizers"]):
            load_state_keeping_settings(opt, opt_state, self.cfg.train.optimizer_kwargs)
        for sched, sched_state in zip(self.schedulers, state["schedulers"]):  # after: they read the base rates
            sched.load_state_dict(sched_state)
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        task_states = state["task_by_rank"]
        if len(task_states) != self.proc.world_size:
            raise ckpt.CheckpointError(f"{path} was written by {len(task_states)} processes, this run has "
                                       f"{self.proc.world_size}: resume it with {len(task_states)} (each holds its "
                                       "place in the data), or add --reset_progress to continue from its weights, or "
                                       "pick a new run_name")
        self.task.load_state_dict(task_states[self.proc.rank], self.device)
        _set_rng_state(state["rng"])
        self.step = state["step"]
        self.best_rank = tuple(state.get("best_rank", (state.get("best_exact", -1.0), -math.inf)))
        early_stop = state.get("early_stop", {})
        self.best_loss = early_stop.get("best_loss", math.inf)
        self.evals_without_better_loss = early_stop.get("evals_without_better_loss", 0)
        self.elapsed_before = state.get("elapsed", 0.0)
        self.train_seconds = state.get("train_seconds", 0.0)
        self.resumed_window = state.get("log_window")  # the steps since the last log line
        self.log(f"resumed from {path} at step {self.step}")
        return state

    def _say_unused_settings(self) -> None:
        """A finished run keeps the config.yaml its weights came from; say what this command would have changed."""
        stored = self.run_dir / "config.yaml"
        if not stored.is_file():
            return
        try:
            saved = yaml.safe_load(stored.read_text()) or {}
        except yaml.YAMLError:
            saved = None
        if not isinstance(saved, dict):  # edited by hand into something else: nothing to compare with
            self.log(f"warning: {stored} is not a YAML mapping of settings, so this command's settings were not "
                     "compared with it")
            return
        changed = _changed_settings(saved, config_to_dict(self.cfg))
        if changed:
            self.log(f"warning: nothing was trained, so these settings of this command were not used: {changed}")

    def _save_step_checkpoint(self) -> None:
        """Every process contributes its task state (a collective); only rank 0 writes."""
        task_states = collectives.gather_objects(self.task.state_dict())
        window = self.window.state_dict() if self.window is not None else None  # a collective too
        if self.proc.is_main:
            yaml_text = (self.run_dir / "config.yaml").read_text()
            ckpt.save_checkpoint(self.ckpt_dir, self.step, self._state(task_states, window), yaml_text,
                                 self.cfg.train.checkpoint_limit)
            self.task.save_assets(self.ckpt_dir)
        self.saved_step = self.step

    def _save_weights(self, folder: Path, metrics: dict | None) -> None:
        """A self-contained weights folder (what ``hrm eval`` and ``load_checkpoint`` read); see weights.py."""
        if self.proc.is_main:
            weights = self.ema.averaged_state_dict() if self.ema is not None else self.model.state_dict()
            inner = {k.removeprefix("inner."): v for k, v in weights.items()}
            save_weights_folder(folder, inner, self.cfg, self.step, metrics, self.task.save_assets)

    # -- the loop --------------------------------------------------------------------------------
    def train(self) -> dict:
        tc = self.cfg.train
        self.started = time.perf_counter()
        if self.step >= tc.steps and self._finished():
            self.log(f"run '{self.cfg.run_name}' already finished: stored step {self.step} >= train.steps {tc.steps}")
            self._say_unused_settings()
            self._release_run_folder()
            return {"step": self.step, "already_finished": True, "run_dir": str(self.run_dir)}
        if self.proc.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config_yaml(self.cfg, self.run_dir / "config.yaml")
            # Resumed at train.steps: the attempt that stopped was in its final evaluation, which runs again.
            dropped = drop_metrics_after(self.run_dir / "metrics.jsonl", self.step, log=self.log,
                                         evaluation_redone=self.step >= tc.steps)
            if dropped:
                self.log(f"dropped {dropped} metrics lines logged after step {self.step} by the attempt that stopped")
            self._drop_stale_best_model()
        if self.new_generation:  # a rerun of a reset run killed before its first checkpoint resumes from these weights
            self._save_step_checkpoint()
        metrics_file = (self.run_dir / "metrics.jsonl").open("a") if self.proc.is_main else None
        progress = TrainProgress(tc.steps, self.step, enabled=tc.progress and self.proc.is_main)
        window = self.window = MetricWindow(tc.global_batch_size, tc.global_batch_size * self.task.tokens_per_example)
        window.load_state_dict(self.resumed_window, self.device, holds_sums=self.proc.is_main)
        last_eval = None
        failed = True
        stop = StopRequest(enabled=True, log=self.log)
        try:
            if self.proc.is_main:
                self.metrics_logger = open_logger(tc.logger, self.run_dir, self.cfg.run_name, config_to_dict(self.cfg),
                                                  self.step)
            with stop, progress:  # until the run ends a signal asks it to stop (see stop_request); the
                # final evaluation and save then finish as they would
                self._run_steps(metrics_file, progress, stop)
                with self._off_the_clock():
                    if self.saved_step != self.step:  # a stop during the final evaluation then loses no step
                        self._save_step_checkpoint()
                    last_eval = self._final_evaluation(metrics_file)
                    progress.show_eval(last_eval)
                    progress.update(self.step)
                    self._save_step_checkpoint()  # again: it now ranks the final evaluation for best-model/
                    self._save_weights(self.run_dir / "final", last_eval)
            failed = False
        finally:
            if metrics_file:
                metrics_file.close()
            self.metrics_logger.close(failed=failed)
            self.metrics_logger = NullLogger()
            self._release_run_folder()
        return {"step": self.step, "eval": last_eval, "run_dir": str(self.run_dir), "train_seconds": self.train_seconds,
                "elapsed_seconds": self.elapsed_before + time.perf_counter() - self.started}

    def _drop_stale_best_model(self) -> None:
        """best-model/ saved after the step this run resumes at came from weights it no longer has; the
        ranking restored with the checkpoint is the one up to that step, and the next evaluation that beats
        it writes best-model/ again (a run that repeats the stopped attempt's steps writes the same one)."""
        stale = stale_best_model(self.run_dir, self.step)
        if stale is not None:
            shutil.rmtree(self.run_dir / "best-model")
            self.log(f"removed best-model/ of step {stale}: the attempt that stopped saved it after step {self.step}, "
                     "the checkpoint this run resumes from")

    def _finished(self) -> bool:
        """Whether the run wrote its final weights (``final/``; ``final.pt`` in the older layout). A run
        stopped during its final evaluation has its last step saved but not these: a rerun finishes it."""
        return is_weights_folder(self.run_dir / "final") or (self.run_dir / "final.pt").is_file()

    def _run_steps(self, metrics_file, progress: TrainProgress, stop: StopRequest) -> None:
        """Optimizer steps until ``train.steps`` or an early stop, with the log lines, evaluations and
        checkpoints between them; a signal ends them with ``RunStopped`` once the step is saved."""
        tc, window = self.cfg.train, self.window
        while self.step < tc.steps:
            self._before_step()
            step_started = time.perf_counter()
            window.add(self._train_step())  # device tensors: nothing is read until a log line
            self.train_seconds += time.perf_counter() - step_started
            self.step += 1
            if self.step % tc.log_steps == 0 or self.step == tc.steps:
                logged = window.flush()
                self._write(metrics_file, {"kind": "train", **logged, **self._lr()})
                progress.show_train(logged)
            progress.update(self.step)
            if tc.eval_interval and self.step % tc.eval_interval == 0 and self.step < tc.steps:
                with self._off_the_clock():
                    metrics = self._evaluate_and_keep_best(metrics_file, tc.eval_max_examples)
                    progress.show_eval(metrics)
                    self._save_step_checkpoint()
                if self._should_stop_early(metrics):
                    self.log(f"early stop at step {self.step}: validation loss has not improved for "
                             f"{self.evals_without_better_loss} evaluations (best {self.best_loss:.4f})")
                    return
            elif tc.checkpoint_interval and self.step % tc.checkpoint_interval == 0 and self.step < tc.steps:
                with self._off_the_clock():
                    self._save_step_checkpoint()
            # Under torchrun each process gets the launcher's signal at its own moment: they vote, so all of
            # them stop after the same step and save it together.
            stop_asked = collectives.any_process(stop.signal_name is not None)
            if stop_asked and self.step < tc.steps:  # at the last step the run just finishes
                if self.saved_step != self.step:
                    self._save_step_checkpoint()
                raise RunStopped(f"{stop.signal_name or 'a signal to another process'} at step {self.step}, "
                                 "checkpoint saved")

    @contextlib.contextmanager
    def _off_the_clock(self):
        """An evaluation or a checkpoint save between steps: its time counts neither in ``train_s`` nor in
        the samples/s of the next log line. The steps still running on the device finish first, and count
        as training (a step's own clock stops when its work is queued, not done)."""
        waited = time.perf_counter()
        synchronize(self.device)
        self.train_seconds += time.perf_counter() - waited
        with self.window.paused():
            yield

    def _train_step(self) -> dict[str, torch.Tensor]:
        """One optimizer step: this process's metric sums and the gradient norm, as device tensors
        (``MetricWindow`` reads them at log lines). Nothing here waits for the device, except fp16's
        loss scaler, which must read whether a gradient overflowed."""
        tc = self.cfg.train
        self.model.train()
        set_recursion_depth(self.model, tc.depth_at(self.step))
        sums: dict[str, torch.Tensor] = {}
        for slot, micro in enumerate(self.task.next_micro_batches()):
            micro = batch_to(micro, self.device)
            with self._autocast():
                loss, metrics = self.task.train_loss(self.forward_model, micro, slot)
            self.scaler.scale(loss / tc.global_batch_size).backward()
            for k, v in metrics.items():
                v = v.detach().to(widest_float(v.device))
                sums[k] = sums[k] + v if k in sums else v
        collectives.sum_gradients([p for p in self.model.parameters() if p.requires_grad])
        self.scaler.unscale_(self.optimizers[0])
        grad_norm = _clip(self.model, tc.grad_clip)
        scale_before = self.scaler.get_scale() if self.scaler.is_enabled() else None
        self.scaler.step(self.optimizers[0])
        self.scaler.update()
        # fp16: the scaler skipped the step because a gradient was inf/NaN (and lowered its scale).
        # The puzzle embedding's step must be skipped too: sign(NaN) is NaN, in that row forever.
        main_step_skipped = scale_before is not None and self.scaler.get_scale() < scale_before
        for opt in self.optimizers[1:]:  # the task's extra optimizers (puzzle embedding: sign(grad), scale-free)
            if not main_step_skipped:
                opt.step()
        self.trained_lr = self.optimizers[0].param_groups[0]["lr"]  # logged: the next line sets the next step's
        for sched in self.schedulers:
            sched.step()
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update()
        return {**sums, "grad_norm": grad_norm}

    def _before_step(self) -> None:
        """The task's per-step hook (HRM-LM's gate warmup), for the model as it is after ``self.step`` steps."""
        self.task.before_step(self.model, self.step)

    def _evaluate_and_keep_best(self, metrics_file, max_examples: int) -> dict | None:
        metrics = self._evaluate(metrics_file, max_examples)
        if metrics is not None:
            self._keep_best(metrics, metrics)
        return metrics

    def _final_evaluation(self, metrics_file) -> dict | None:
        """The whole evaluation split, logged. The interim evaluations scored only the first
        ``train.eval_max_examples`` examples, so the final weights are ranked against them on those same
        examples (an extra, unlogged evaluation of them): a score on other examples would compare luck."""
        metrics = self._evaluate(metrics_file, 0)
        if metrics is None:
            return None
        subset = self.cfg.train.eval_max_examples
        interim_ranked = self.best_rank[0] >= 0 or self.best_loss < math.inf
        ranked = (self._evaluate(metrics_file, subset, logged=False)
                  if interim_ranked and 0 < subset < metrics.get("count", 0) else metrics)
        self._keep_best(ranked, metrics)
        return metrics

    def _evaluate(self, metrics_file, max_examples: int, logged: bool = True) -> dict | None:
        """Means over the first ``max_examples`` evaluation examples (0: all), logged as an eval line."""
        self._before_step()
        set_recursion_depth(self.model, None)  # evaluation runs the model's own depth, whatever the curriculum
        with self._ema_weights():
            model = self.forward_model if self.task.evaluates_compiled else self.model
            sums = self.task.evaluate(model, self.device, self._autocast, max_examples)
        if sums is None:
            return None
        metrics = metric_means(collectives.reduce_sums(sums))
        metrics["elapsed_s"] = self.elapsed_before + time.perf_counter() - self.started
        metrics["train_s"] = self.train_seconds
        if logged:
            self._write(metrics_file, {"kind": "eval", "step": self.step, **metrics})
        return metrics

    def _keep_best(self, ranked: dict, saved: dict) -> None:
        """Ranks an evaluation (``ranked``) for best-model/ and early stopping; the weights go to best-model/
        with ``saved``, the metrics the run reports for them."""
        if "exact_accuracy" in ranked:
            rank = _rank_of(ranked)
            is_best = rank > self.best_rank
            self.best_rank = max(self.best_rank, rank)
        else:  # a task that scores no exact accuracy: the lowest loss is the best
            is_best = "loss" in ranked and ranked["loss"] < self.best_loss
        if is_best and self.cfg.train.save_best_model:
            self._save_weights(self.run_dir / "best-model", saved)
        if "loss" in ranked:
            if ranked["loss"] < self.best_loss:
                self.best_loss, self.evals_without_better_loss = ranked["loss"], 0
            else:
                self.evals_without_better_loss += 1

    def _should_stop_early(self, metrics: dict | None) -> bool:
        tc = self.cfg.train
        return (metrics is not None and tc.eval_loss_patience > 0 and self.step >= tc.patience_grace_steps
                and self.evals_without_better_loss >= tc.eval_loss_patience)

    def _ema_weights(self):
        return self.ema.swapped_in() if self.ema is not None else contextlib.nullcontext()

    def _lr(self) -> dict:
        """The learning rate and, under a depth curriculum, the depth the last step trained at."""
        out = {"lr": self.trained_lr}
        if self.cfg.train.depth_schedule:
            depth = self.cfg.train.depth_at(self.step - 1) or (self.cfg.model.H_cycles, self.cfg.model.L_cycles)
            out["H_cycles"], out["L_cycles"] = depth
        return out

    def _write(self, metrics_file, record: dict) -> None:
        record = {"step": self.step, **record}
        if metrics_file is not None:
            metrics_file.write(json.dumps(record) + "\n")
            metrics_file.flush()
        self.metrics_logger.log(record_scalars(record), self.step)


def _clip(model: torch.nn.Module, max_norm: float) -> torch.Tensor:
    """The global gradient norm (a device tensor, not read here), clipped to ``max_norm`` when it is > 0."""
    params = [p for p in model.parameters() if p.grad is not None]
    if not params:
        return torch.zeros(())
    if max_norm > 0:
        return torch.nn.utils.clip_grad_norm_(params, max_norm)
    # One multi-tensor norm (as clip_grad_norm_ takes it), not one launch per parameter.
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm([p.grad for p in params])))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _changed_settings(saved: dict, current: dict) -> str:
    """'section.name saved -> current' for each setting that differs (sub-configs flattened; kwargs dicts whole)."""
    def flat(values: dict, prefix: str = "") -> dict:
        out = {}
        for key, value in values.items():
            nested = isinstance(value, dict) and not key.endswith("kwargs")
            out.update(flat(value, f"{prefix}{key}.") if nested else {prefix + key: value})
        return out
    before, after = flat(saved), flat(current)
    return ", ".join(f"{key} {before[key]!r} -> {after[key]!r}" for key in after if key in before and before[key] != after[key])


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
