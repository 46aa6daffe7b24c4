"""Choosing a sandbox backend: ``make_sandbox`` builds the one asked for, or for ``auto`` the
strongest that works here (bubblewrap > rlimited subprocess > docker), says which it picked, and
refuses ``off`` without the explicit flag.

It stands alone because it is policy, not mechanism: the order of preference, the once-per-process
probe of each backend and the warning when ``auto`` settles for a weaker one.
"""

from __future__ import annotations

import functools
import os
import sys

from hrmkit.code.sandbox import Sandbox, SandboxError, SandboxLimits
from hrmkit.code.sandbox_backends import (
    BwrapSandbox,
    DockerSandbox,
    InProcessSandbox,
    SubprocessSandbox,
)

BACKENDS = ("bwrap", "subprocess", "docker", "off")
AUTO_ORDER = ("bwrap", "subprocess", "docker")  # strongest first
_warned_weak_backend = False


@functools.lru_cache(maxsize=None)  # probing bwrap or docker costs a process start: once per process
def unavailable_reason(name: str, python: str | None = None, docker_image: str | None = None) -> str | None:
    """None when backend ``name`` can run here, else why not (one line)."""
    if name == "bwrap":
        return BwrapSandbox.unavailable_reason(python)
    if name == "subprocess":
        return None if os.name == "posix" else "the rlimited subprocess backend needs a POSIX system"
    if name == "docker":
        return DockerSandbox.unavailable_reason(docker_image)
    if name == "off":
        return None
    raise SandboxError(f"unknown sandbox {name!r} (choose from auto, {', '.join(BACKENDS)})")


def make_sandbox(name: str = "auto", limits: SandboxLimits | None = None, *, allow_unsandboxed: bool = False,
                 guard: bool = True, python: str | None = None, docker_image: str | None = None,
                 site_packages: bool = False, announce=None) -> Sandbox:
    """The backend called ``name``, or for ``auto`` the strongest that works here.

    ``announce(line)`` receives which backend was picked and, once per process, a warning when
    ``auto`` had to settle for the weaker subprocess backend.
    """
    global _warned_weak_backend
    announce = announce or (lambda line: print(line, file=sys.stderr))
    if name == "off" and not allow_unsandboxed:
        raise SandboxError("--sandbox off runs model-written code inside this process with no protection at all; "
                           "add --i-know-this-runs-untrusted-code if that is really what you want")
    if name == "auto":
        reasons = {}
        for candidate in AUTO_ORDER:
            reasons[candidate] = unavailable_reason(candidate, python, docker_image)
            if reasons[candidate] is None:
                name = candidate
                break
        else:
            raise SandboxError("no sandbox backend works here: " + "; ".join(f"{k}: {v}" for k, v in reasons.items()))
        if name != "bwrap" and not _warned_weak_backend:
            _warned_weak_backend = True
            announce(f"warning: sandbox: bubblewrap is unavailable ({reasons['bwrap']}); using the weaker {name} "
                     "backend, which does not isolate the network, the file system or other processes at the OS level "
                     "(docs/SANDBOX.md)")
    else:
        reason = unavailable_reason(name, python, docker_image)
        if reason is not None:
            raise SandboxError(f"sandbox {name} is unavailable: {reason}")
    sandbox = _build(name, limits, guard, python, docker_image, site_packages)
    announce(f"sandbox: {sandbox.describe()}")
    return sandbox


def _build(name: str, limits, guard: bool, python, docker_image, site_packages: bool = False) -> Sandbox:
    common = {"guard": guard, "python": python, "site_packages": site_packages}
    if name == "bwrap":
        return BwrapSandbox(limits, **common)
    if name == "subprocess":
        return SubprocessSandbox(limits, **common)
    if name == "docker":
        return DockerSandbox(limits, image=docker_image, **common)
    return InProcessSandbox(limits, **{**common, "guard": False})
