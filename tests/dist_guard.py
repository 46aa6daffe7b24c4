"""`hrm` under torchrun with every torch.distributed collective guarded (used by test_collectives).

    python -m torch.distributed.run ... tests/dist_guard.py train --config ...

A guarded collective stops the process unless
1. it is called from ``hrmkit.train.collectives``, the one module that may run collectives, and
2. every tensor handed to it lives on the device the process group needs. That device is declared
   in HRMKIT_GROUP_DEVICE: gloo needs the CPU; an NCCL group would declare ``cuda:<local rank>``
   (NCCL refuses CPU tensors, which is how a metric left on the CPU crashed the first evaluation on
   GPUs). ``collectives.group_device()`` must report the declared device too.
Each rank writes how many collectives it let through to HRMKIT_GUARD_LOG/rank<R>.json, so the test
knows the guard was in place.
"""

import functools
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

GUARDED = ("all_reduce", "all_gather", "all_gather_object", "all_gather_into_tensor", "broadcast",
           "broadcast_object_list", "barrier", "reduce", "gather", "gather_object", "scatter",
           "scatter_object_list", "reduce_scatter", "reduce_scatter_tensor", "all_to_all", "all_to_all_single")
EXPECTED = torch.device(os.environ["HRMKIT_GROUP_DEVICE"])
ALLOWED_CALLER = "hrmkit.train.collectives"
calls: dict[str, int] = {}


def _tensors(values):
    for value in values:
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, (list, tuple)):
            yield from _tensors(value)


def _guard(name, original):
    @functools.wraps(original)
    def guarded(*args, **kwargs):
        caller = sys._getframe(1).f_globals.get("__name__")
        if caller != ALLOWED_CALLER:
            raise RuntimeError(f"collective guard: dist.{name} called from {caller}, not {ALLOWED_CALLER}")
        from hrmkit.train import collectives
        if collectives.group_device() != EXPECTED:
            raise RuntimeError(f"collective guard: group_device() is {collectives.group_device()}, "
                               f"the group needs {EXPECTED}")
        for tensor in _tensors([*args, *kwargs.values()]):
            if tensor.device != EXPECTED:
                raise RuntimeError(f"collective guard: dist.{name} got a tensor on {tensor.device}, "
                                   f"the group needs {EXPECTED}")
        calls[name] = calls.get(name, 0) + 1
        _write_log()  # after every call: a distributed `hrm train` leaves through os._exit, skipping atexit
        return original(*args, **kwargs)
    return guarded


def _write_log():
    folder = Path(os.environ["HRMKIT_GUARD_LOG"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"rank{os.environ.get('RANK', '0')}.json").write_text(json.dumps(calls))


if __name__ == "__main__":
    for name in GUARDED:
        if hasattr(dist, name):
            setattr(dist, name, _guard(name, getattr(dist, name)))
    from hrmkit.cli import main
    sys.exit(main(sys.argv[1:]))
