"""`hrm bench`: each kind runs on a tiny config and writes its figures as JSON (never asserted as speeds)."""

import json

from cli_helpers import hrm

TINY_PUZZLE = ["model.hidden_size=32", "model.L_layers=1", "model.vocab_size=6", "model.seq_len=16",
               "model.halt_max_steps=2"]
TINY_LM = ["model.hidden_size=32", "model.num_heads=2", "model.encoder_layers=1", "model.decoder_layers=1",
           "model.H_layers=1", "model.L_layers=1", "model.vocab_size=20", "model.seq_len=12"]


def test_bench_train_and_eval_report_figures_for_both_task_families(tmp_path):
    for what, config, overrides in (("train", "quickstart_sudoku4", TINY_PUZZLE), ("eval", "quickstart_sudoku4", TINY_PUZZLE),
                                    ("train", "arithmetic", TINY_LM), ("eval", "arithmetic", TINY_LM)):
        out = tmp_path / f"{what}-{config}.json"
        result = hrm("bench", what, "--config", config, "--batch", "4", "--steps", "2", "--warmup", "1",
                     "--json", str(out), *overrides)
        assert f"{what} {config}" in result.stdout and "samples/s" in result.stdout
        figures = json.loads(out.read_text())
        assert figures["what"] == what and figures["samples_per_s"] > 0 and figures["gflop_per_step"] > 0
        assert figures["mfu"] is None  # only on a GPU whose peak is known


def test_bench_generate_times_cached_and_uncached_decoding(tmp_path):
    out = tmp_path / "generate.json"
    result = hrm("bench", "generate", "--config", "arithmetic", "--new-tokens", "4,8", "--steps", "1",
                 "--json", str(out), *TINY_LM)
    assert result.stdout.count("speed-up") == 2
    rows = json.loads(out.read_text())
    assert [row["new_tokens"] for row in rows] == [4, 8]
    assert all(row["cached_tokens_per_s"] > 0 and row["uncached_tokens_per_s"] > 0 for row in rows)
