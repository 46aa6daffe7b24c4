"""The sandbox backends: bubblewrap (namespaces, read-only system, no network), an rlimited
subprocess, a throwaway docker container, and ``off`` (in the evaluator's own process).

Each says how to launch the runner (``prepare``): in a fresh temporary directory, with an
environment that holds none of the evaluator's variables; how to end it; and, where it needs
something the machine may lack, why it cannot run here (``unavailable_reason``). Everything they share, the
process loop and the scoring, is ``sandbox.py``; picking one is ``sandbox_choice.py``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hrmkit.code.sandbox import (
    RUNNER_SOURCE,
    ProcessSpec,
    RunResult,
    Sandbox,
    SandboxLimits,
    has_exited,
)

MINIMAL_PATH = "/usr/local/bin:/usr/bin:/bin"


def _minimal_env(home: str) -> dict[str, str]:
    return {"PATH": MINIMAL_PATH, "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8"}


def _remove_tree(path: str) -> None:
    def writable_then_retry(function, target, _):
        try:
            os.chmod(os.path.dirname(target), 0o700)
            os.chmod(target, 0o700)
            function(target)
        except OSError:
            pass
    shutil.rmtree(path, onerror=writable_then_retry)


class SubprocessSandbox(Sandbox):
    """Plain child process with rlimits in a fresh temporary directory; shares the host's view of everything."""

    name = "subprocess"
    summary = "rlimits + audit-hook guard; no OS isolation of network, files or processes"

    def prepare(self) -> ProcessSpec:
        directory = tempfile.mkdtemp(prefix="hrmkit-sandbox-")
        return ProcessSpec([self.python, *self.python_flags, "-c", RUNNER_SOURCE], cwd=directory, env=_minimal_env(directory),
                        cleanup=[lambda: _remove_tree(directory)])



class BwrapSandbox(Sandbox):
    """bubblewrap: read-only view of the system parts Python needs, private tmpfs, no network, own PID namespace."""

    name = "bwrap"
    summary = "read-only system, private /tmp, no network, own PID namespace, rlimits + audit-hook guard"

    def __init__(self, *args, bwrap: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.bwrap = bwrap or shutil.which("bwrap") or "bwrap"
        self.argv = self._argv()

    def _argv(self) -> list[str]:
        argv = [self.bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
                "--hostname", "sandbox", "--clearenv", "--setenv", "PATH", MINIMAL_PATH, "--setenv", "HOME", "/tmp",
                "--setenv", "TMPDIR", "/tmp", "--setenv", "LANG", "C.UTF-8"]
        for top in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            path = Path("/") / top
            if path.is_symlink():  # merged /usr: /lib -> usr/lib
                argv += ["--symlink", os.readlink(path), str(path)]
            elif path.is_dir():
                argv += ["--ro-bind", str(path), str(path)]
        # The private /tmp first: an interpreter or virtual environment living under /tmp is bound
        # on top of it afterwards (read-only), instead of being hidden by it.
        argv += ["--size", str(self.limits.tmp_size_mb << 20), "--tmpfs", "/tmp"]
        for path in self._python_dirs():
            argv += ["--ro-bind", path, path]
        argv += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache", "--proc", "/proc", "--dev", "/dev",
                 "--chdir", "/tmp", self.python, *self.python_flags, "-c", RUNNER_SOURCE]
        return argv

    def _python_dirs(self) -> list[str]:
        """The interpreter's installation (and virtual environment), when it lives outside /usr."""
        candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                      str(Path(self.python).parent.parent), str(Path(os.path.realpath(self.python)).parent.parent)}
        dirs = sorted({os.path.realpath(path) for path in candidates if os.path.isdir(path)})
        dirs = [d for d in dirs if not d.startswith(("/usr/", "/bin", "/lib")) and d not in ("/", "/usr")]
        return [d for d in dirs if not any(d != other and d.startswith(other + "/") for other in dirs)]

    def prepare(self) -> ProcessSpec:
        return ProcessSpec(self.argv, env={"PATH": MINIMAL_PATH})

    @staticmethod
    def unavailable_reason(python: str | None = None) -> str | None:
        if sys.platform != "linux":
            return "bubblewrap needs Linux"
        if not shutil.which("bwrap"):
            return "bwrap is not installed (Debian/Ubuntu: apt-get install -y bubblewrap)"
        probe = BwrapSandbox(SandboxLimits(timeout_s=20), python=python)
        argv = probe.argv[:-1] + ["pass"]
        try:
            result = subprocess.run(argv, capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"bwrap could not start: {error}"
        if result.returncode != 0:
            message = result.stderr.decode("utf-8", "replace").strip().splitlines()
            return f"bwrap cannot create its namespaces here: {message[-1] if message else result.returncode}"
        return None


class DockerSandbox(Sandbox):
    """A throwaway container per program: no network, read-only root, pids/memory/CPU caps, unprivileged user."""

    name = "docker"
    summary = "container: no network, read-only root, private /tmp, pids/memory/CPU limits, unprivileged user"
    default_image = "python:3.11-slim"

    def __init__(self, *args, image: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.image = image or self.default_image
        self.docker = shutil.which("docker") or "docker"

    def prepare(self) -> ProcessSpec:
        self.container = f"hrmkit-sandbox-{secrets.token_hex(8)}"
        limits = self.limits
        argv = [self.docker, "run", "--rm", "-i", "--pull", "never", "--name", self.container, "--network", "none",
                "--read-only", "--tmpfs", f"/tmp:rw,size={limits.tmp_size_mb}m,mode=1777", "--workdir", "/tmp",
                "--user", "65534:65534", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                "--pids-limit", str(limits.max_processes), "--memory", f"{limits.memory_mb}m",
                "--memory-swap", f"{limits.memory_mb}m", "--cpus", "1", "--env", "HOME=/tmp",
                self.image, "python", *self.python_flags, "-c", RUNNER_SOURCE]
        return ProcessSpec(argv, env={"PATH": os.environ.get("PATH", MINIMAL_PATH)})

    def terminate(self, proc: subprocess.Popen) -> None:
        # Killing the docker client leaves the container running: ask the engine.
        if not has_exited(proc):
            subprocess.run([self.docker, "kill", self.container], capture_output=True, timeout=30)
        super().terminate(proc)

    @staticmethod
    def unavailable_reason(image: str | None = None) -> str | None:
        docker = shutil.which("docker")
        if not docker:
            return "docker is not installed"
        try:
            info = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=15)
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"docker engine did not answer: {error}"
        if info.returncode != 0:
            lines = info.stderr.decode("utf-8", "replace").strip().splitlines()
            return f"no Docker engine is running ({lines[-1] if lines else 'docker info failed'})"
        image = image or DockerSandbox.default_image
        found = subprocess.run([docker, "image", "inspect", image], capture_output=True, timeout=30)
        if found.returncode != 0:
            return f"the image {image} is not present (docker pull {image}; the sandbox never pulls)"
        return None


class InProcessSandbox(Sandbox):
    """No sandbox: the program runs inside the evaluator. For debugging trusted code only."""

    name = "off"
    summary = "NO isolation: runs inside the evaluator, no limits, no timeout"

    def run(self, program: str) -> RunResult:
        import contextlib
        import io
        import traceback
        started = time.monotonic()
        out, err = io.StringIO(), io.StringIO()
        namespace = {"__name__": "__main__"}
        verdict = "passed"
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                exec(compile(program, "program.py", "exec"), namespace)
            except SystemExit:
                verdict = "failed"
            except AssertionError:
                verdict = "failed"
                traceback.print_exc(limit=5)
            except Exception:  # noqa: BLE001 - the program's error is the verdict
                verdict = "error"
                traceback.print_exc(limit=5)
        result = namespace.get("__hrmkit_result__") if verdict == "passed" else None
        return RunResult(verdict, time.monotonic() - started, 0, out.getvalue(), err.getvalue(),
                         result if isinstance(result, str) else None)
