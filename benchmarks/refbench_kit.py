"""Copy the refbench kit (``../shared/refbench``, read-only) to a folder of this checkout and point its
hrmkit runner at this hrmkit.

    python benchmarks/refbench_kit.py ../shared/refbench .refbench
    HRMKIT_SRC=$PWD/src python .refbench/side_by_side.py --family trm_att --impl both --device cpu ...

The kit times the reference's own model and loss head; its hrmkit side builds hrmkit's trainer on a
synthetic task, through a class hrmkit no longer has (``bench.SyntheticPuzzleTask``). The copy builds
the task with ``hrmkit.bench.synthetic_task`` (what ``hrm bench train`` times) and sets
``model.reuse_q_target_forward`` from the kit's ``hrmkit`` (reuse) / ``hrmkit-noreuse`` (the reference's
math, hrmkit's default) choice. Nothing on the reference side changes. The copy is also what
``REFBENCH=.refbench bash benchmarks/gpu_suite.sh`` carries to a GPU machine.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

# (what the kit says, what the copy says): each must occur exactly once, or the kit has changed and this
# script must be adapted rather than silently produce a harness that times something else.
EDITS = [
    ("        from hrmkit.bench import SyntheticPuzzleTask\n",
     "        from hrmkit.bench import synthetic_task\n"),
    ("        self.trainer = Trainer(cfg, functools.partial(SyntheticPuzzleTask, reuse_target_forward=reuse), log=lambda *_: None)\n",
     "        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, reuse_q_target_forward=reuse))\n"
     "        self.cfg = cfg\n"
     "        self.trainer = Trainer(cfg, synthetic_task(cfg), log=lambda *_: None)\n"),
]


def adapt(source: str) -> str:
    for old, new in EDITS:
        if source.count(old) != 1:
            raise SystemExit(f"refbench_kit: the kit's side_by_side.py no longer contains exactly one {old.strip()!r}; "
                             "adapt EDITS in benchmarks/refbench_kit.py")
        source = source.replace(old, new)
    return source


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        raise SystemExit("usage: python benchmarks/refbench_kit.py KIT DEST   (e.g. ../shared/refbench .refbench)")
    kit, dest = Path(argv[0]), Path(argv[1])
    if not (kit / "side_by_side.py").is_file():
        raise SystemExit(f"refbench_kit: {kit} holds no side_by_side.py (is it the refbench kit?)")
    adapted = adapt((kit / "side_by_side.py").read_text())
    if dest.exists():  # replace an earlier copy only: never delete a folder (or file) that is something else
        if not (dest / "side_by_side.py").is_file():
            raise SystemExit(f"refbench_kit: {dest} exists and is not an earlier copy of the kit; "
                             "name a new folder or remove it first")
        shutil.rmtree(dest)
    shutil.copytree(kit, dest)
    for path in [dest, *dest.rglob("*")]:  # the kit is read-only; its copy is ours to rewrite and delete
        path.chmod(path.stat().st_mode | 0o200)
    (dest / "side_by_side.py").write_text(adapted)
    print(f"{dest}: the refbench kit, its hrmkit runner on hrmkit.bench.synthetic_task")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
