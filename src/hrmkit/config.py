"""The run configuration: dataclasses whose field docs double as ``--help``.

A run is ``RunConfig(model, data, train)``. Presets live in ``configs/*.yaml``; any field can be
overridden from the command line as ``train.lr=3e-4`` or ``--train.lr 3e-4``. Unknown keys and
bad values are reported together (see ``config_base.build_config``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hrmkit.config_base import (
    ConfigError,
    build_config,
    deep_merge,
    field_doc,
    load_yaml,
)

PRESETS_DIR = Path(__file__).parent / "configs"
_DEVICE_NAME = re.compile(r"auto|(cpu|cuda|mps)(:[0-9]+)?")


def device_problem(name: str) -> str | None:
    """What is wrong with a device name (train.device, --device), or None: auto, cpu, cuda, cuda:N or mps.
    Checked before torch sees it, whose own error is a traceback listing every device type it knows."""
    if _DEVICE_NAME.fullmatch(name):
        return None
    return f"device must be auto, cpu, cuda[:N] or mps, got '{name}'"


@dataclass
class MoEConfig:
    """Mixture-of-experts feed-forward for the HRM-LM encoder (num_experts 0 = a plain SwiGLU)."""

    num_experts: int = field_doc(0, "experts per MoE layer; 0 disables MoE")
    top_k: int = field_doc(2, "experts each token is routed to")
    capacity_factor: float = field_doc(1.25, "expert capacity = factor * tokens * top_k / experts; overflow tokens skip the layer")
    ff_multiplier: float = field_doc(2.0, "expert SwiGLU expansion factor")
    dropout: float = field_doc(0.0, "dropout on expert outputs (training only)")
    aux_loss_weight: float = field_doc(0.01, "weight of the load-balancing loss")

    def validate(self) -> list[str]:
        problems = []
        if self.num_experts < 0:
            problems.append("num_experts must be >= 0")
        if self.num_experts and not 1 <= self.top_k <= self.num_experts:
            problems.append(f"top_k must be in [1, num_experts={self.num_experts}]")
        if self.capacity_factor <= 0 or self.ff_multiplier <= 0:
            problems.append("capacity_factor and ff_multiplier must be > 0")
        if not 0.0 <= self.dropout < 1.0:
            problems.append("dropout must be in [0, 1)")
        return problems


@dataclass
class ModelConfig:
    """Architecture of the recursive core and its ACT wrapper (names follow the reference)."""

    variant: Literal["hrm", "trm"] = field_doc("trm", "hrm: separate H and L modules; trm: one shared net")
    hidden_size: int = field_doc(128, "width of every token state")
    num_heads: int = field_doc(2, "attention heads (ignored with mlp_t)")
    expansion: float = field_doc(4.0, "SwiGLU expansion factor")
    H_layers: int = field_doc(2, "blocks in the H (slow, planning) module; unused by trm")
    L_layers: int = field_doc(2, "blocks in the L (fast) module; trm's single net")
    H_cycles: int = field_doc(2, "hrm: H updates per segment; trm: recursions T per segment")
    L_cycles: int = field_doc(3, "L updates per H update (hrm) or latent updates n per recursion (trm)")
    halt_max_steps: int = field_doc(8, "maximum ACT segments per example; evaluation runs all of them")
    halt_exploration_prob: float = field_doc(0.1, "probability of forcing a random minimum number of segments")
    no_ACT_continue: bool | None = field_doc(None, "true: halt when q_halt > 0 without a continue target (trm default); false: hrm-style Q-learning; null: the variant's default")
    reuse_q_target_forward: bool = field_doc(False, "hrm-style Q-learning: reuse the no-grad part of the Q-target forward as the next segment's start (saves one no-grad pass per segment); it was computed before the optimizer step, so it is an approximation of the reference, which recomputes it")
    state_dtype: Literal["auto", "float32", "autocast"] = field_doc("auto", "dtype of the ACT carry and the residual stream under autocast (train.precision bf16/fp16); autocast: that dtype, as the reference's bf16 forward keeps them (half the bytes); float32: full precision, matmuls still in the autocast dtype; auto = autocast on CUDA, float32 on the CPU (measured: bf16 states trained the CPU quickstart slower and no better); HRM-LM's states follow its encoder's")
    pos_encodings: Literal["rope", "rope2d", "learned", "none"] = field_doc("rope", "position encoding; rope2d: RoPE over grid rows and columns (see grid_width)")
    rope_theta: float = field_doc(10000.0, "RoPE base")
    grid_alibi: bool = field_doc(False, "add -2^-h * (grid distance) to head h's attention scores (ALiBi on the grid; no parameters)")
    grid_width: int = field_doc(0, "rope2d and grid_alibi: cells per grid row; 0 = the integer square root of seq_len (a square grid, plus any trailing tokens such as routing's vehicle)")
    mlp_t: bool = field_doc(False, "token-mixing MLP instead of attention (trm Sudoku variant)")
    puzzle_emb_ndim: int = field_doc(0, "width of the per-puzzle embedding; 0 disables it")
    puzzle_emb_len: int = field_doc(0, "prefix positions for the puzzle embedding; 0 = ceil(ndim / hidden)")
    rms_norm_eps: float = field_doc(1e-5, "RMSNorm epsilon")
    loss: str = field_doc("stablemax_cross_entropy", "token loss: stablemax_cross_entropy (float64, as the reference), softmax_cross_entropy, or a pytorch-optimizer loss name", flag="loss")
    loss_kwargs: dict[str, Any] = field_doc({}, "extra keyword arguments for the loss", flag="loss_kwargs")
    vocab_size: int = field_doc(0, "token vocabulary; 0 = read from the dataset")
    seq_len: int = field_doc(0, "tokens per example; 0 = read from the dataset", flag="max_seq_len")
    num_puzzle_identifiers: int = field_doc(0, "rows of the puzzle-embedding table; 0 = read from the dataset")
    # HRM-LM (task: seq2seq) only; seq_len is then the longest prompt or answer in tokens.
    core: Literal["recursive", "none"] = field_doc("recursive", "seq2seq: recursive core between encoder and decoder, or none (a plain encoder-decoder baseline)")
    encoder_layers: int = field_doc(2, "seq2seq: transformer blocks in the token encoder")
    decoder_layers: int = field_doc(2, "seq2seq: blocks in the causal decoder")
    hrm_gate_warmup_steps: int = field_doc(0, "seq2seq: hold the bridge gate shut for this many optimizer steps while the decoder trains", flag="hrm_gate_warmup_steps")
    deep_supervision: bool = field_doc(False, "seq2seq: decoder loss after every core segment (carry detached between), not only the last")
    moe: MoEConfig = field(default_factory=MoEConfig)

    @property
    def halts_on_q_halt_alone(self) -> bool:
        return self.variant == "trm" if self.no_ACT_continue is None else self.no_ACT_continue

    @property
    def prefix_len(self) -> int:
        """Positions prepended for the puzzle embedding (none without one: the reference TRM would
        still drop ``puzzle_emb_len`` real positions from its logits there)."""
        if self.puzzle_emb_ndim == 0:
            return 0
        if self.puzzle_emb_len > 0 and self.variant == "trm":
            return self.puzzle_emb_len
        return -(self.puzzle_emb_ndim // -self.hidden_size)

    def validate(self) -> list[str]:
        problems = []
        for name in ("hidden_size", "num_heads", "L_layers", "H_cycles", "L_cycles", "halt_max_steps"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        if self.variant == "hrm" and self.H_layers < 1:
            problems.append("H_layers must be >= 1 for hrm")
        if not self.mlp_t and self.num_heads > 0 and self.hidden_size % self.num_heads:
            problems.append(f"hidden_size {self.hidden_size} must be divisible by num_heads {self.num_heads}")
        if not 0.0 <= self.halt_exploration_prob <= 1.0:
            problems.append("halt_exploration_prob must be in [0, 1]")
        if self.puzzle_emb_ndim < 0 or self.puzzle_emb_len < 0:
            problems.append("puzzle_emb_ndim and puzzle_emb_len must be >= 0")
        if self.encoder_layers < 1 or self.decoder_layers < 1:
            problems.append("encoder_layers and decoder_layers must be >= 1")
        if self.grid_width < 0:
            problems.append("grid_width must be >= 0")
        if self.pos_encodings == "rope2d":
            if not self.mlp_t and self.num_heads > 0 and (self.hidden_size // self.num_heads) % 4:
                problems.append(f"pos_encodings rope2d needs hidden_size / num_heads divisible by 4, "
                                f"got {self.hidden_size} / {self.num_heads}")
        if self.hrm_gate_warmup_steps < 0:
            problems.append("hrm_gate_warmup_steps must be >= 0")
        if self.rope_theta <= 0 or self.rms_norm_eps <= 0:  # either one turned every loss into NaN
            problems.append("rope_theta and rms_norm_eps must be > 0")
        from hrmkit.train.token_losses import loss_name_problem
        problem = loss_name_problem(self.loss)
        if problem:
            problems.append(problem)
        return problems


@dataclass
class DataConfig:
    """Where the dataset lives."""

    path: str = field_doc("", "dataset folder: the reference puzzle format (puzzle) or a processed corpus (seq2seq)", flag="dataset")
    train_split: str = field_doc("train", "split used for training")
    eval_split: str = field_doc("test", "split used for evaluation (seq2seq corpora call it val); '' = train without evaluating")
    workers: Literal["auto"] | int = field_doc(
        "auto", "worker processes preparing training batches ahead of the step, in order and resumable; "
                "0 prepares them in the training process; auto = 1 on CUDA, 0 on the CPU and MPS", flag="dataset_workers")
    build: Literal["", "arithmetic"] = field_doc("", "seq2seq: generate this synthetic corpus at data.path when it does not exist")
    arithmetic_digits: int = field_doc(2, "arithmetic corpus: operands have 1..digits digits")
    arithmetic_train: int = field_doc(16000, "arithmetic corpus: training problems")
    arithmetic_val: int = field_doc(1000, "arithmetic corpus: held-out problems in val, and as many in test (never in train)")


@dataclass
class TrainConfig:
    """The one training loop: optimisation, precision, schedule, checkpoints and logging."""

    steps: int = field_doc(1000, "optimizer steps to train for", flag="steps")
    global_batch_size: int = field_doc(64, "examples per optimizer step, summed over processes and accumulation", flag="batch_size")
    grad_accum_steps: int = field_doc(1, "micro-batches per optimizer step", flag="grad_accum_steps")
    optimizer: str = field_doc("adamw", "adamw, adam_atan2, or a pytorch-optimizer name hrmkit can train with "
                                                  "(hrm info --names)", flag="optimizer")
    optimizer_kwargs: dict[str, Any] = field_doc({}, "extra keyword arguments for the optimizer", flag="optimizer_kwargs")
    lr: float = field_doc(1e-3, "peak learning rate", flag="learning_rate")
    lr_min_ratio: float = field_doc(1.0, "final lr as a fraction of the peak (cosine floor); 1.0 = constant", flag="lr_min_ratio")
    lr_warmup_steps: int = field_doc(50, "linear warmup, in optimizer steps", flag="warmup_steps")
    lr_schedule: str = field_doc("cosine", "cosine, linear, constant, or a pytorch-optimizer scheduler name", flag="lr_scheduler")
    lr_schedule_kwargs: dict[str, Any] = field_doc({}, "extra keyword arguments for a pytorch-optimizer scheduler", flag="lr_scheduler_kwargs")
    weight_decay: float = field_doc(0.1, "decoupled weight decay")
    beta1: float = field_doc(0.9, "Adam beta1")
    beta2: float = field_doc(0.95, "Adam beta2")
    puzzle_emb_lr: float = field_doc(1e-2, "SignSGD learning rate of the sparse puzzle embeddings")
    puzzle_emb_weight_decay: float = field_doc(0.1, "weight decay of the puzzle embeddings")
    grad_clip: float = field_doc(0.0, "clip the global grad norm to this; 0 disables", flag="grad_clip")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = field_doc(
        "auto", "autocast precision; auto = bf16 on CUDA (fp32 matmuls outside autocast in TF32) and on CPUs "
                "that multiply bf16 natively (AVX-512 BF16 or AMX), else fp32; fp32 = exact fp32 everywhere",
        flag="mixed_precision")
    device: str = field_doc("auto", "auto, cpu, cuda, cuda:N or mps")
    threads: int = field_doc(0, "CPU threads for torch; 0 = torch's default")
    compile: Literal["auto", True, False] = field_doc("auto", "wrap the model in torch.compile; auto = on CUDA only")
    depth_schedule: list[tuple[float, int, int]] = field_doc(
        [], "recursion-depth curriculum: [[until, H_cycles, L_cycles], ...] trains at that depth until that fraction "
            "of train.steps, then at the model's own; evaluation always runs the model's depth; [] = off")
    segment_loss_decay: float = field_doc(
        1.0, "puzzles: weight each row's token loss by decay^(segment-1), normalised to mean 1 over halt_max_steps "
             "segments (the segment counted per row); 1.0 = every segment alike, as the reference")
    ema: bool = field_doc(False, "keep an exponential moving average of the weights and evaluate it")
    ema_rate: float = field_doc(0.999, "EMA decay per optimizer step")
    seed: int = field_doc(0, "seed for weights, sampling and exploration")
    eval_interval: int = field_doc(0, "evaluate every N optimizer steps (0 = only at the end)", flag="val_every")
    eval_batch_size: int = field_doc(0, "evaluation batch size; 0 = global_batch_size", flag="eval_batch_size")
    eval_max_examples: int = field_doc(0, ("the interim evaluations score the first this many examples (0 = all); the final one "
                                                 "scores all and is ranked for best-model/ on the same first ones"), flag="max_val_samples")
    checkpoint_interval: int = field_doc(0, "save a resumable checkpoint every N optimizer steps (0 = only at eval and end)")
    checkpoint_limit: int = field_doc(3, "keep at most this many step checkpoints; 0 keeps all", flag="checkpoint_limit")
    save_best_model: bool = field_doc(True, "keep best-model/ with the weights of the best evaluation: highest exact accuracy, a tie going to the "
                                                 "lower validation loss, else the higher token accuracy (lowest loss where no exact accuracy is scored)", flag="save_best_model")
    epochs: float = field_doc(0.0, "when > 0, train for this many passes over the training data (sets steps); a "
                                   "puzzle pass is the reference's: one puzzle of every group, all its examples", flag="epochs")
    eval_interval_epochs: int = field_doc(
        0, "when > 0, evaluate every this many passes over the training data (replaces eval_interval), as the "
           "reference's eval_interval; puzzles also shuffle that many passes at a time, as the reference's sampler")
    eval_loss_patience: int = field_doc(0, "HRM-LM: stop after this many evaluations without a better validation loss; 0 never stops early", flag="eval_loss_patience")
    patience_grace_steps: int = field_doc(0, "never stop early before this optimizer step", flag="patience_grace_steps")
    log_steps: int = field_doc(10, "write a metrics line every N optimizer steps", flag="log_steps")
    progress: bool = field_doc(True, "show a progress bar")
    logger: Literal["none", "tensorboard", "wandb"] = field_doc("none", "also log metrics.jsonl's scalars to TensorBoard (<run>/tensorboard/) or W&B (offline unless WANDB_MODE is set)", flag="logger")

    def validate(self) -> list[str]:
        problems = []
        if self.steps < 1:
            problems.append("steps must be >= 1")
        if self.global_batch_size < 1 or self.grad_accum_steps < 1:
            problems.append("global_batch_size and grad_accum_steps must be >= 1")
        elif self.global_batch_size % self.grad_accum_steps:
            problems.append(f"global_batch_size {self.global_batch_size} must be divisible by grad_accum_steps {self.grad_accum_steps}")
        if self.epochs < 0 or self.eval_interval_epochs < 0 or self.eval_interval < 0:
            problems.append("epochs, eval_interval and eval_interval_epochs must be >= 0")
        if self.log_steps < 1:
            problems.append(f"log_steps must be >= 1, got {self.log_steps}")
        negative = [name for name in ("eval_batch_size", "eval_max_examples", "checkpoint_interval", "checkpoint_limit",
                                      "grad_clip", "lr_warmup_steps", "threads", "eval_loss_patience",
                                      "patience_grace_steps") if getattr(self, name) < 0]
        if negative:  # each one's 0 means "off" or "all"; below it they meant nothing and were taken as 0
            problems.append(f"{', '.join(negative)} must be >= 0")
        if self.lr <= 0:
            problems.append("lr must be > 0")
        if not 0.0 <= self.lr_min_ratio <= 1.0:
            problems.append("lr_min_ratio must be in [0, 1]")
        if not 0.0 < self.ema_rate < 1.0:
            problems.append("ema_rate must be in (0, 1)")
        if problem := device_problem(self.device):
            problems.append(problem)
        untils = [stage[0] for stage in self.depth_schedule]
        if any(not 0 < until <= 1 for until in untils) or untils != sorted(set(untils)):
            problems.append(f"depth_schedule: each stage's fraction must be in (0, 1] and larger than the one before, got {untils}")
        if any(h < 1 or l < 1 for _, h, l in self.depth_schedule):
            problems.append("depth_schedule: H_cycles and L_cycles must be >= 1 in every stage")
        if not 0 < self.segment_loss_decay <= 1:
            problems.append(f"segment_loss_decay must be in (0, 1], got {self.segment_loss_decay}")
        problems += self._optimizer_kwargs_problems()
        return problems

    def _optimizer_kwargs_problems(self) -> list[str]:
        """optimizer_kwargs are the optimizer's other arguments: one that has its own field here would
        silently win over that field (lr: 10 trained at 10 while config.yaml said lr: 0.001)."""
        kwargs = self.optimizer_kwargs if isinstance(self.optimizer_kwargs, dict) else {}
        problems = [f"optimizer_kwargs: {name} is train.{field}; set it there"
                    for name, field in (("lr", "lr"), ("weight_decay", "weight_decay")) if name in kwargs]
        betas = kwargs.get("betas")
        if betas is not None and (not isinstance(betas, (list, tuple)) or list(betas[:2]) != [self.beta1, self.beta2]):
            problems.append(f"optimizer_kwargs: betas must start with train.beta1 and train.beta2 ({self.beta1}, "
                            f"{self.beta2}): set those, and give betas only for an optimizer's further ones, got {betas}")
        return problems

    def depth_at(self, step: int) -> tuple[int, int] | None:
        """The (H_cycles, L_cycles) of the depth curriculum for the step about to run; None: the model's own."""
        fraction = step / self.steps
        return next(((h, l) for until, h, l in self.depth_schedule if fraction < until), None)


@dataclass
class RunConfig:
    """Everything a training run needs; saved as ``config.yaml`` in the run folder."""

    task: Literal["puzzle", "seq2seq"] = field_doc("puzzle", "puzzle: fixed-length grids with ACT; seq2seq: HRM-LM, prompt in, answer out")
    run_name: str = field_doc("", "folder name under runs_dir; empty = derived from the config name", flag="run_name")
    runs_dir: str = field_doc("runs", "parent folder of run folders", flag="save_dir")
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> list[str]:
        from hrmkit.model.losses import TOKEN_LOSSES
        problems = []
        if self.run_name != self.run_name.strip() or self.run_name in (".", "..") or any(
                separator in self.run_name for separator in "/\\"):  # it would land outside runs_dir, or in it
            problems.append(f"run_name must be one folder name (no '/', '..' or surrounding spaces), got {self.run_name!r}")
        if self.task == "puzzle" and self.model.loss not in TOKEN_LOSSES:
            problems.append(f"model.loss: the puzzle task's ACT loss takes {' or '.join(TOKEN_LOSSES)}, not '{self.model.loss}'")
        if self.task == "puzzle" and self.train.eval_loss_patience:  # it would never stop the run
            problems.append("train.eval_loss_patience watches the validation loss HRM-LM's evaluations score; puzzle "
                            "evaluations score exact accuracy, not a loss: leave it 0")
        deeper = [(h, l) for _, h, l in self.train.depth_schedule if h > self.model.H_cycles or l > self.model.L_cycles]
        if deeper:  # the curriculum is less depth early; a stage deeper than the model trained deeper than it evaluates
            problems.append(f"train.depth_schedule: stages {deeper} are deeper than the model's H_cycles/L_cycles "
                            f"{self.model.H_cycles}/{self.model.L_cycles}")
        return problems


def resolve_preset(name_or_path: str) -> Path:
    """A YAML path, or the name of a shipped preset (``hrm_v1`` → ``configs/hrm_v1.yaml``)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    if len(path.parts) > 1 and not path.exists():  # a path, not a preset's name: the preset of its stem is not it
        raise ConfigError([f"config file not found: {name_or_path}"])
    preset = PRESETS_DIR / f"{path.stem}.yaml"
    if preset.exists():
        return preset
    if path.is_file():  # a file that is there but not named as a config: say so, not that it is missing
        raise ConfigError([f"{name_or_path}: a config file's name ends in .yaml or .yml"])
    available = ", ".join(sorted(p.stem for p in PRESETS_DIR.glob("*.yaml")))
    raise ConfigError([f"no config file or preset named '{name_or_path}' (presets: {available})"])


def load_run_config(config: str | None, overrides: dict | None = None) -> RunConfig:
    data = load_yaml(resolve_preset(config)) if config else {}
    cfg = build_config(RunConfig, deep_merge(data, overrides or {}))
    if not cfg.run_name:
        cfg.run_name = Path(config).stem if config else "run"
    return cfg
