"""benchmarks/refbench_kit.py: the refbench kit's copy times hrmkit's trainer step as this hrmkit builds it."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KIT = Path(os.environ.get("HRM_REFBENCH_DIR") or ROOT.parent / "shared" / "refbench")


def _refbench_kit():
    spec = importlib.util.spec_from_file_location("refbench_kit", ROOT / "benchmarks" / "refbench_kit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_kit_that_changed_is_refused_not_half_adapted():
    kit = _refbench_kit()
    with pytest.raises(SystemExit, match="no longer contains exactly one"):
        kit.adapt("class HrmkitRunner:\n    pass\n")


@pytest.mark.skipif(not (KIT / "side_by_side.py").is_file(), reason=f"no refbench kit at {KIT} (HRM_REFBENCH_DIR)")
@pytest.mark.parametrize("impl, reuse", [("hrmkit", True), ("hrmkit-noreuse", False)])
def test_the_copied_kit_steps_hrmkit(tmp_path, impl, reuse):
    dest = tmp_path / "refbench"
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "refbench_kit.py"), str(KIT), str(dest)], check=True)
    out = tmp_path / "sbs.json"
    env = {**os.environ, "HRMKIT_SRC": str(ROOT / "src")}
    done = subprocess.run([sys.executable, str(dest / "side_by_side.py"), "--family", "hrm", "--impl", impl,
                           "--device", "cpu", "--small", "--batch", "2", "--steps", "1", "--warmup", "1",
                           "--threads", "1", "--isolate", "none", "--skip-flops", "--json", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    result = json.loads(out.read_text())["results"][impl]
    assert result["status"] == "ok", done.stdout[-2000:] + done.stderr[-2000:]
    assert len(result["times_ms"]) == 1
    assert result["info"]["reuse_target_forward"] is reuse
    assert result["info"]["model_cfg"]["reuse_q_target_forward"] is reuse  # what the trainer was built with
