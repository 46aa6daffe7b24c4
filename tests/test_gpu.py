"""CUDA: the same model gives the CPU's numbers, a default run trains and its weights load anywhere.

Skipped where torch.cuda.is_available() is false (tests/conftest.py); run them on a lent GPU with
``python -m pytest -m gpu``.
"""

import pytest
import torch

from hrmkit.config import ModelConfig, load_run_config
from hrmkit.lm.generate import SamplingConfig, generate
from hrmkit.loading import load_checkpoint
from hrmkit.model.act import ACTModel
from hrmkit.model.seq2seq import Seq2SeqHRM
from hrmkit.puzzles.evaluate import evaluate_puzzles
from hrmkit.puzzles.format import load_split
from hrmkit.puzzles.task import PuzzleTask
from hrmkit.train.task import metric_means
from hrmkit.train.trainer import Trainer

pytestmark = pytest.mark.gpu

TINY = dict(hidden_size=64, num_heads=2, expansion=2, L_layers=1, H_cycles=2, L_cycles=2, halt_max_steps=4)


@pytest.mark.parametrize("variant", ["hrm", "trm"])
def test_fp32_forward_on_cuda_matches_the_cpu(variant):
    torch.manual_seed(0)
    model = ACTModel(ModelConfig(variant=variant, vocab_size=11, seq_len=16, **TINY)).eval()
    batch = {"inputs": torch.randint(1, 11, (4, 16), dtype=torch.int32),
             "puzzle_identifiers": torch.zeros(4, dtype=torch.int32)}
    with torch.no_grad():
        carry = model.initial_carry(batch)
        _, cpu = model(carry, batch)
        cuda_model = model.to("cuda")
        cuda_batch = {k: v.cuda() for k, v in batch.items()}
        _, gpu = cuda_model(cuda_model.initial_carry(cuda_batch), cuda_batch)
    torch.testing.assert_close(gpu["logits"].float().cpu(), cpu["logits"].float(), atol=2e-4, rtol=2e-4)


def test_a_default_run_on_cuda_trains_and_its_weights_load_on_the_cpu(sudoku4, tmp_path):
    cfg = load_run_config("quickstart_sudoku4", {
        "data": {"path": str(sudoku4)}, "runs_dir": str(tmp_path), "run_name": "gpu",
        "train": {"steps": 20, "eval_interval": 20, "device": "cuda", "progress": False}})
    result = Trainer(cfg, PuzzleTask).train()
    assert 0 <= result["eval"]["accuracy"] <= 1
    # The weights the GPU run evaluated score the same on the CPU (bf16 on the GPU may move a token or two).
    model, _ = load_checkpoint(tmp_path / "gpu" / "final", device="cpu")
    on_cpu = metric_means(evaluate_puzzles(model, load_split(sudoku4, "test"), 64, torch.device("cpu")))
    assert abs(on_cpu["accuracy"] - result["eval"]["accuracy"]) < 0.02


def test_kv_cached_decoding_on_cuda_matches_recomputing(tmp_path):
    torch.manual_seed(0)
    model = Seq2SeqHRM(ModelConfig(variant="hrm", vocab_size=24, seq_len=20, encoder_layers=1, decoder_layers=2,
                                   **TINY)).cuda().eval()
    ids = torch.randint(4, 24, (3, 9), device="cuda")
    mask = torch.ones(3, 9, dtype=torch.bool, device="cuda")
    sampling = SamplingConfig(max_new_tokens=12)
    cached = generate(model, ids, mask, 1, 2, 0, sampling, use_cache=True)
    uncached = generate(model, ids, mask, 1, 2, 0, sampling, use_cache=False)
    assert torch.equal(cached.tokens, uncached.tokens)
