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


@pytest.mark.parametrize("make_dest", ["folder", "file"])
def test_a_destination_that_is_not_an_earlier_copy_is_refused_and_left_alone(tmp_path, make_dest):
    kit = tmp_path / "kit"
    kit.mkdir()
    (kit / "side_by_side.py").write_text("".join(old for old, _ in _refbench_kit().EDITS))
    dest = tmp_path / "dest"
    if make_dest == "folder":
        dest.mkdir()
        (dest / "notes.txt").write_text("keep me")
    else:
        dest.write_text("keep me")
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "refbench_kit.py"), str(kit), str(dest)],
                          capture_output=True, text=True)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == [f"refbench_kit: {dest} exists and is not an earlier copy of the kit; "
                                               "name a new folder or remove it first"]
    assert (dest / "notes.txt" if make_dest == "folder" else dest).read_text() == "keep me"
