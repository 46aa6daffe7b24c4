"""HRM-LM: the model (masking, bridge gate, deep supervision, MoE), KV-cached generation,
token losses by name, and the seq2seq task on the one trainer (resume, early stop, CLI)."""

import json
import shutil

import pytest
import torch
import torch.nn.functional as F
from cli_helpers import hrm, hrm_here
from safetensors.torch import load_file

from hrmkit.config import ModelConfig, MoEConfig, load_run_config
from hrmkit.lm.arithmetic import build_arithmetic_corpus
from hrmkit.lm.generate import (
    SamplingConfig,
    apply_repetition_penalty,
    generate,
    pick_next,
)
from hrmkit.lm.task import Seq2SeqTask, generated_matches
from hrmkit.model.moe import MoEFeedForward
from hrmkit.model.seq2seq import Seq2SeqHRM
from hrmkit.train.known_names import list_names
from hrmkit.train.token_losses import build_token_loss
from hrmkit.train.trainer import Trainer

VOCAB = 24


def tiny_config(**overrides) -> ModelConfig:
    values = dict(variant="hrm", hidden_size=32, num_heads=2, expansion=2, H_layers=1, L_layers=1, H_cycles=2,
                  L_cycles=2, halt_max_steps=2, vocab_size=VOCAB, seq_len=20, encoder_layers=1, decoder_layers=2)
    values.update(overrides)
    return ModelConfig(**values)


def prompts(batch=3, length=9, seed=0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, VOCAB, (batch, length), generator=generator)
    mask = torch.ones(batch, length, dtype=torch.bool)
    mask[0, length - 3:] = False  # a shorter prompt, right-padded
    return ids.masked_fill(~mask, 0), mask


@pytest.mark.parametrize("overrides", [{}, {"variant": "trm"}, {"core": "none"},
                                       {"moe": MoEConfig(num_experts=4, top_k=2)}])
def test_cached_and_uncached_decoding_agree(overrides):
    torch.manual_seed(0)
    model = Seq2SeqHRM(tiny_config(**overrides))
    ids, mask = prompts()
    sampling = SamplingConfig(max_new_tokens=12)
    cached = generate(model, ids, mask, 1, 2, 0, sampling, use_cache=True, keep_logits=True)
    uncached = generate(model, ids, mask, 1, 2, 0, sampling, use_cache=False, keep_logits=True)
    assert torch.equal(cached.tokens, uncached.tokens)
    torch.testing.assert_close(cached.step_logits, uncached.step_logits, atol=1e-4, rtol=1e-4)


def test_padding_does_not_change_the_answer():
    """Masked prompt padding is invisible to the encoder, the core and the cross-attention."""
    torch.manual_seed(0)
    model = Seq2SeqHRM(tiny_config()).eval()
    ids, mask = prompts(batch=1, length=6)
    padded_ids = F.pad(ids, (0, 5), value=0)
    padded_mask = F.pad(mask, (0, 5), value=False)
    decoder = torch.tensor([[1, 5, 6, 7]])
    with torch.no_grad():
        short = model({"encoder_ids": ids, "encoder_mask": mask, "decoder_input_ids": decoder})
        long = model({"encoder_ids": padded_ids, "encoder_mask": padded_mask, "decoder_input_ids": decoder})
    torch.testing.assert_close(short["segment_logits"][-1], long["segment_logits"][-1], atol=1e-5, rtol=1e-5)


def test_gate_warmup_keeps_the_core_out_while_the_decoder_trains():
    torch.manual_seed(0)
    model = Seq2SeqHRM(tiny_config())
    ids, mask = prompts()
    batch = {"encoder_ids": ids, "encoder_mask": mask, "decoder_input_ids": torch.randint(4, VOCAB, (3, 5))}
    model.set_gate_open(False)
    model(batch)["segment_logits"][-1].square().sum().backward()
    assert model.bridge_proj.weight.grad.abs().sum() == 0
    assert model.core.L_level.layers[0].mlp.down_proj.weight.grad.abs().sum() == 0
    assert model.decoder[0].mlp.down_proj.weight.grad.abs().sum() > 0
    model.zero_grad()
    model.set_gate_open(True)
    model(batch)["segment_logits"][-1].square().sum().backward()
    assert model.bridge_proj.weight.grad.abs().sum() > 0
    assert model.core.L_level.layers[0].mlp.down_proj.weight.grad.abs().sum() > 0


def test_deep_supervision_scores_every_segment():
    model = Seq2SeqHRM(tiny_config(halt_max_steps=3, deep_supervision=True))
    ids, mask = prompts()
    out = model({"encoder_ids": ids, "encoder_mask": mask, "decoder_input_ids": torch.randint(4, VOCAB, (3, 5))})
    assert len(out["segment_logits"]) == 3 and len(out["segment_q_halt"]) == 3
    assert not torch.equal(out["segment_logits"][0], out["segment_logits"][-1])


def test_halting_stops_reasoning_once_every_row_halts():
    model = Seq2SeqHRM(tiny_config(halt_max_steps=5)).eval()
    with torch.no_grad():
        model.core.q_head.bias.copy_(torch.tensor([5.0, 0.0]))  # q_halt > 0 everywhere: halt after one segment
        ids, mask = prompts()
        x, _ = model.encode(ids, mask)
        assert model.reason(x, mask, halt=True).segments == 1
        assert model.reason(x, mask, halt=False).segments == 5


def test_too_long_prompt_is_refused():
    model = Seq2SeqHRM(tiny_config(seq_len=8))
    ids, mask = prompts(length=9)
    with pytest.raises(ValueError, match="seq_len"):
        model.encode(ids, mask)


# -- mixture of experts ----------------------------------------------------------------------------
def test_moe_routes_each_token_to_top_k_experts_within_capacity():
    torch.manual_seed(0)
    moe = MoEFeedForward(hidden_size=16, num_experts=4, top_k=2, capacity_factor=100.0, ff_multiplier=2)
    x = torch.randn(2, 5, 16)
    out, balance = moe(x)
    # With room for every token, the output is the probability-weighted sum of the chosen experts.
    tokens = x.reshape(-1, 16)
    probs = torch.softmax(moe.router(tokens), -1)
    weights, chosen = probs.topk(2, -1)
    weights = weights / weights.sum(-1, keepdim=True)
    expected = torch.stack([sum(w * moe.experts[e](t[None])[0] for w, e in zip(ws, es))
                            for t, ws, es in zip(tokens, weights, chosen)])
    torch.testing.assert_close(out.reshape(-1, 16), expected, atol=1e-5, rtol=1e-5)
    assert balance >= 0.99  # 1 is perfectly even routing; the Switch loss is never below it by much
    out.sum().backward()
    assert moe.router.weight.grad.abs().sum() > 0


def test_moe_drops_overflow_and_skips_padding():
    torch.manual_seed(0)
    moe = MoEFeedForward(hidden_size=8, num_experts=2, top_k=1, capacity_factor=0.5, ff_multiplier=2)
    x = torch.randn(1, 8, 8)
    mask = torch.ones(1, 8, dtype=torch.bool)
    mask[0, 6:] = False
    out, _ = moe(x, mask)
    assert torch.all(out[0, 6:] == 0)  # padding is never routed
    served = (out[0, :6].abs().sum(-1) > 0).sum()
    assert served <= 2 * moe.capacity(6)  # each expert serves at most its capacity


# -- sampling ---------------------------------------------------------------------------------------
def test_sampling_controls():
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0], [0.1, 3.0, 0.2, 0.0]])
    assert torch.equal(pick_next(logits, SamplingConfig(temperature=0), None), torch.tensor([0, 1]))
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(pick_next(logits, SamplingConfig(temperature=1.0, top_k=1), generator), torch.tensor([0, 1]))
    assert torch.equal(pick_next(logits, SamplingConfig(temperature=1.0, top_p=0.01), generator), torch.tensor([0, 1]))
    draws = {tuple(pick_next(logits, SamplingConfig(temperature=5.0, top_k=2), generator).tolist()) for _ in range(200)}
    assert {row[0] for row in draws} == {0, 1}  # top-2 only
    seen = torch.tensor([[True, False, False, True], [False, False, False, False]])
    penalised = apply_repetition_penalty(logits, seen, 2.0)
    assert penalised[0].tolist() == [1.0, 1.0, 0.5, -2.0] and torch.equal(penalised[1], logits[1])


def test_seeded_sampling_is_reproducible():
    torch.manual_seed(0)
    model = Seq2SeqHRM(tiny_config())
    ids, mask = prompts()
    sampling = SamplingConfig(max_new_tokens=8, temperature=1.0, top_p=0.9, repetition_penalty=1.3, seed=7)
    assert torch.equal(generate(model, ids, mask, 1, 2, 0, sampling).tokens,
                       generate(model, ids, mask, 1, 2, 0, sampling).tokens)


def test_generated_matches_compares_up_to_eos():
    labels = torch.tensor([[5, 6, 2, -100], [5, 2, -100, -100]])
    generated = torch.tensor([[5, 6, 2, 0], [5, 7, 0, 0]])
    assert generated_matches(generated, labels).tolist() == [True, False]
    assert generated_matches(generated[:, :2], labels).tolist() == [False, False]  # stopped before EOS


# -- losses by name ---------------------------------------------------------------------------------
def test_every_listed_loss_builds_or_says_why():
    logits = torch.randn(2, 3, 5, requires_grad=True)
    labels = torch.tensor([[0, 1, -100], [-100, -100, -100]])
    for name in list_names()["losses"]:
        try:
            loss_fn = build_token_loss(name)
        except ValueError as error:
            assert name in str(error)
            continue
        rows = loss_fn(logits, labels)
        assert rows.shape == (2,) and torch.isfinite(rows).all() and rows[1] == 0, name
    expected = F.cross_entropy(logits[0, :2], labels[0, :2])  # the row's mean over its labelled tokens
    torch.testing.assert_close(build_token_loss("cross_entropy")(logits, labels)[0], expected)
    torch.testing.assert_close(build_token_loss("cross_entropy", {"label_smoothing": 0.1})(logits, labels)[0],
                               F.cross_entropy(logits[0, :2], labels[0, :2], label_smoothing=0.1))


# -- the task on the trainer --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def arithmetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus") / "arith"
    build_arithmetic_corpus(root, digits=1, train=150, val=30, test=0, seed=0)
    return root


def seq2seq_config(data, runs, **train):
    overrides = {"task": "seq2seq", "runs_dir": str(runs), "run_name": "r",
                 "model": {"hidden_size": 32, "num_heads": 2, "expansion": 2, "H_layers": 1, "L_layers": 1,
                           "H_cycles": 1, "L_cycles": 2, "halt_max_steps": 2, "encoder_layers": 1, "decoder_layers": 1,
                           "loss": "cross_entropy", "hrm_gate_warmup_steps": 2},
                 "data": {"path": str(data), "eval_split": "val"},
                 "train": {"steps": 6, "global_batch_size": 8, "lr_warmup_steps": 1, "eval_interval": 3,
                           "progress": False, "log_steps": 1, "device": "cpu", **train}}
    return load_run_config(None, overrides)


def final_weights(runs):
    return load_file(runs / "r" / "final" / "model.safetensors")


def test_interrupted_run_resumes_to_the_same_weights(arithmetic, tmp_path):
    Trainer(seq2seq_config(arithmetic, tmp_path / "straight"), Seq2SeqTask).train()
    Trainer(seq2seq_config(arithmetic, tmp_path / "resumed", steps=3), Seq2SeqTask).train()
    shutil.rmtree(tmp_path / "resumed" / "r" / "final")
    resumed = Trainer(seq2seq_config(arithmetic, tmp_path / "resumed"), Seq2SeqTask)
    assert resumed.step == 3
    resumed.train()
    straight, again = final_weights(tmp_path / "straight"), final_weights(tmp_path / "resumed")
    for key in straight:
        torch.testing.assert_close(straight[key], again[key], msg=key)
    run = tmp_path / "resumed" / "r"
    for folder in (run / "final", run / "best-model", run / "checkpoints"):
        assert (folder / "tokenizer.json").exists() and (folder / "meta.json").exists()
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if r["kind"] == "eval"]
    assert {"loss", "exact_accuracy", "accuracy"} <= set(evals[-1])
    assert all(r["tokens_per_s"] > r["samples_per_s"] for r in records if r["kind"] == "train")


def test_gate_is_shut_during_warmup_steps(arithmetic, tmp_path):
    trainer = Trainer(seq2seq_config(arithmetic, tmp_path), Seq2SeqTask)  # model.hrm_gate_warmup_steps=2
    trainer.task.before_step(trainer.model, 1)
    assert trainer.model.gate_open.item() == 0.0
    trainer.task.before_step(trainer.model, 2)
    assert trainer.model.gate_open.item() == 1.0


def test_early_stop_when_validation_loss_stalls(arithmetic, tmp_path):
    # A learning rate too small to move any weight: the validation loss never improves.
    cfg = seq2seq_config(arithmetic, tmp_path, steps=30, lr=1e-12, eval_interval=2, eval_loss_patience=2,
                         patience_grace_steps=4, weight_decay=0.0)
    result = Trainer(cfg, Seq2SeqTask).train()
    assert result["step"] == 6  # evals at 2 (best), 4 (1 without), 6 (2 without, past the grace steps)


def test_epochs_set_the_steps(arithmetic, tmp_path):
    trainer = Trainer(seq2seq_config(arithmetic, tmp_path, epochs=2.0), Seq2SeqTask)
    assert trainer.cfg.train.steps == 2 * 19  # ceil(150 / 8) steps per epoch


@pytest.mark.cli
def test_cli_trains_generates_and_refuses_bad_input(arithmetic, tmp_path):
    runs = tmp_path / "runs"
    common = ["--dataset", str(arithmetic), "--save_dir", str(runs), "--run_name", "cli", "task=seq2seq",
              "data.eval_split=val", "model.hidden_size=32", "model.encoder_layers=1", "model.decoder_layers=1",
              "model.H_layers=1", "model.L_layers=1", "train.progress=false"]
    first = ["--steps", "4", "--batch_size", "8", "--learning_rate", "3e-3", "--val_every", "2",
             "--optimizer_kwargs", "{'eps': 1e-7}", "--lr_scheduler", "linear", "--mixed_precision", "no"]
    out = hrm("train", *common, *first)
    assert "exact match of generated answers" in out.stdout
    saved = (runs / "cli" / "config.yaml").read_text()
    assert "eps: 1.0e-07" in saved and "lr_schedule: linear" in saved
    again = hrm_here("train", *common, *first)
    assert "already finished" in again.stdout + again.stderr
    answer = hrm("generate", "--run_name", "cli", "--save_dir", str(runs), "--prompt", "What is 3 + 4?",
                 "--prompt", "What is 9 - 2?", "--jsonl")
    lines = [json.loads(line) for line in answer.stdout.splitlines()]
    assert [line["prompt"] for line in lines] == ["What is 3 + 4?", "What is 9 - 2?"]
    bad = hrm_here("train", *common, "--optimizer_kwargs", "{eps: nope", check=False)
    assert bad.returncode == 2 and "optimizer_kwargs" in bad.stderr
    bad = hrm_here("train", *common, "--loss", "no_such_loss", check=False)
    assert bad.returncode == 2 and "no_such_loss" in bad.stderr
    bad = hrm_here("train", *common, "--run_name", "x", "--optimizer", "adamw_8bit", "--steps", "1", check=False)
    assert bad.returncode == 2 and "bitsandbytes" in bad.stderr
    zero = hrm_here("generate", "--run_name", "cli", "--save_dir", str(runs), "--prompt", "x", "--max_new_tokens", "0",
                    check=False)  # not "the default length"
    assert zero.returncode == 2 and "max_new_tokens" in zero.stderr and not zero.stdout
    one = hrm_here("generate", "--run_name", "cli", "--save_dir", str(runs), "--prompt", "What is 3 + 4?")
    assert one.stderr.startswith("(1 prompt,")
    bad = hrm_here("generate", "--run_name", "missing", "--save_dir", str(runs), "--prompt", "x", check=False)
    assert bad.returncode == 2 and "missing" in bad.stderr
    missing = hrm_here("train", *common, "--dataset", str(tmp_path / "nowhere"), "--run_name", "y", check=False)
    assert missing.returncode == 2 and "meta.json" in missing.stderr


@pytest.mark.cli
def test_dry_run_prints_a_loss_without_data():
    out = hrm("train", "--config", "arithmetic", "--dry_run", "data.path=", "model.seq_len=16", "model.vocab_size=20")
    assert "dry run (seq2seq): lm loss" in out.stdout
    out = hrm_here("train", "--config", "quickstart_sudoku4", "--dry_run", "data.path=", "model.seq_len=16", "model.vocab_size=11")
    assert "dry run (puzzle): lm loss" in out.stdout


@pytest.mark.cli
def test_generate_answers_in_the_precision_the_run_evaluated_in(arithmetic, tmp_path):
    """hrm generate runs a bf16 run's model under bf16 autocast, as the run's own evaluation generated its
    answers; in fp32 some answers come out otherwise."""
    from hrmkit.lm.generate import SamplingConfig, generate_text
    from hrmkit.loading import load_hrm_lm
    Trainer(seq2seq_config(arithmetic, tmp_path, steps=150, precision="bf16", lr=3e-3), Seq2SeqTask).train()
    prompts = [f"What is {a} {op} {b}?" for a in range(10) for op in "+-" for b in range(10)]
    out = hrm_here("generate", "--checkpoint", str(tmp_path / "r" / "final"), "--jsonl", "--device", "cpu",
                   *[arg for prompt in prompts for arg in ("--prompt", prompt)])
    answered = [json.loads(line)["answer"] for line in out.stdout.splitlines()]
    model, _, tokenizer = load_hrm_lm(tmp_path / "r" / "final", torch.device("cpu"), "test")
    greedy = SamplingConfig(max_new_tokens=model.config.seq_len + 1)  # hrm generate's default
    with torch.autocast("cpu", dtype=torch.bfloat16):
        in_bf16 = generate_text(model, tokenizer, prompts, greedy)
    in_fp32 = generate_text(model, tokenizer, prompts, greedy)
    assert in_bf16 != in_fp32  # else this test could not tell the precisions apart
    assert answered == in_bf16


@pytest.mark.cli
def test_generate_says_when_the_model_does_not_read_a_prompt_as_written(tmp_path):
    """A prompt longer than the encoder takes was cut to its last seq_len tokens, and characters the
    tokenizer does not know became <unk>, both without a word."""
    from cli_helpers import tiny_code_checkpoint
    checkpoint = tiny_code_checkpoint(tmp_path / "run", precision="fp32")  # seq_len 64, printable ASCII
    out = hrm_here("generate", "--checkpoint", str(checkpoint), "--device", "cpu", "--max_new_tokens", "2",
                   "--prompt", "short", "--prompt", "y" * 100, "--prompt", "5 × 5")
    notes = [line for line in out.stderr.splitlines() if line.startswith("note:")]
    assert notes == ["note: prompt 2 is 100 tokens; the model reads its last 64 (model.seq_len)",
                     "note: prompt 3 has characters the tokenizer does not know; they read as <unk>"]


def test_an_moe_layer_in_eval_mode_gives_each_row_the_same_output_whatever_else_is_in_its_batch():
    """Capacity applied at evaluation dropped tokens by batch: a 2-process run and a 1-process run with the
    same weights logged different validation losses (a user audit)."""
    from hrmkit.model.moe import MoEFeedForward
    torch.manual_seed(0)
    layer = MoEFeedForward(hidden_size=16, num_experts=4, top_k=2, capacity_factor=0.5, ff_multiplier=2).eval()
    rows = torch.randn(6, 5, 16)
    with torch.no_grad():
        together, _ = layer(rows)
        alone = torch.cat([layer(rows[i:i + 1])[0] for i in range(len(rows))])
    assert torch.allclose(together, alone, atol=1e-6)
    layer.train()  # training keeps the capacity: there it is a budget, and rows do share it
    with torch.no_grad():
        assert not torch.allclose(layer(rows)[0], torch.cat([layer(rows[i:i + 1])[0] for i in range(len(rows))]))
