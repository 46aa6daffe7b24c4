"""Run the ``hrm`` command in a real subprocess, as a user would."""

import contextlib
import io
import os
import socket
import subprocess
import sys
from pathlib import Path

# A model small enough that a CLI training step takes milliseconds.
TINY_MODEL = ["model.hidden_size=32", "model.L_layers=1", "model.H_cycles=2", "model.L_cycles=2",
              "model.halt_max_steps=4", "train.global_batch_size=16", "train.progress=false", "train.log_steps=1"]


def hrm(*args, check=True):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-m", "hrmkit", *args], capture_output=True, text=True, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"hrm {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result


def hrm_here(*args, check=True):
    """``hrm ARGS`` inside this process: for a test's setup (training the run it looks at), where a fresh
    interpreter adds seconds and tests nothing; tests of the command itself use :func:`hrm`."""
    from hrmkit.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(arg) for arg in args])
    if check and code != 0:
        raise AssertionError(f"hrm {' '.join(map(str, args))} failed:\n{err.getvalue()[-3000:]}")
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def final_weights(run_dir):
    """The tensors a run's final/ weights folder holds, read straight from the safetensors file."""
    from safetensors.torch import load_file
    return load_file(Path(run_dir) / "final" / "model.safetensors")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(*args, nproc=2, script=None, env=None, check=True):
    """``hrm ARGS`` in ``nproc`` real processes under torchrun (gloo on the CPU); ``script`` runs a
    wrapper (such as tests/dist_guard.py) in place of ``-m hrmkit``."""
    env = dict(os.environ, OMP_NUM_THREADS="1", **(env or {}))
    target = [str(script)] if script else ["-m", "hrmkit"]
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(nproc),
              "--master_addr", "127.0.0.1", "--master_port", str(free_port()), *target, *args]
    result = subprocess.run(launch, capture_output=True, text=True, env=env, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"torchrun {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result


# MBPP (CC BY 4.0) as the workplace provides it beside the repository; HRM_MBPP_DIR points elsewhere.
MBPP_DIR = Path(os.environ.get("HRM_MBPP_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data" / "mbpp")


def tiny_code_checkpoint(folder: Path, precision: str = "bf16") -> Path:
    """An untrained HRM-LM with a character tokenizer: its samples are noise, the pipeline is real."""
    import torch

    from hrmkit.config import RunConfig
    from hrmkit.config_base import build_config, config_to_dict
    from hrmkit.lm.tokenizers import SimpleTokenizer
    from hrmkit.model.seq2seq import Seq2SeqHRM
    tokenizer = SimpleTokenizer.for_texts(["".join(chr(c) for c in range(32, 127)) + "\n"])
    cfg = build_config(RunConfig, {"task": "seq2seq", "model": {
        "hidden_size": 32, "num_heads": 2, "expansion": 2, "H_layers": 1, "L_layers": 1, "H_cycles": 1, "L_cycles": 1,
        "halt_max_steps": 1, "encoder_layers": 1, "decoder_layers": 1, "vocab_size": tokenizer.vocab_size, "seq_len": 64},
        "train": {"precision": precision}})  # as a run trained in that precision records it
    torch.manual_seed(0)
    model = Seq2SeqHRM(cfg.model)
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"format": "hrmkit", "step": 0, "model": model.checkpoint_module.state_dict(),
                "config": config_to_dict(cfg), "metrics": None}, folder / "final.pt")
    tokenizer.save(folder / "tokenizer.json")
    return folder / "final.pt"
