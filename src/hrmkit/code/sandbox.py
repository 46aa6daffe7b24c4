"""Running one untrusted program (model-written code and its tests) in a sandbox, and scoring it.

This holds what every backend shares: the limits, the result and its verdict, and the base
``Sandbox``, which runs each program in its own process (in its own session and process group,
stdin closed, stdout/stderr captured and capped, resource limits set before the program starts,
a wall-clock timeout that kills the whole group). The program runs under ``sandbox_runner.py``,
which also installs an audit-hook guard and prints a per-run nonce only once the program, tests
included, has run to its end: that line, not the exit code, is what "passed" means.

The backends themselves (bubblewrap, rlimited subprocess, docker, off) are
``sandbox_backends.py``; picking one is ``sandbox_choice.py``. What each backend does and does
not protect against is in docs/SANDBOX.md.
"""

from __future__ import annotations

import math
import os
import secrets
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

VERDICTS = ("passed", "failed", "timeout", "error", "killed", "output-limit")
RUNNER_SOURCE = (Path(__file__).with_name("sandbox_runner.py")).read_text(encoding="utf-8")
RUNNER_EXIT_FAILED = (1, 4)  # an assert failed / SystemExit before the end (see sandbox_runner.py)


class SandboxError(ValueError):
    """A backend that cannot run here, or a refused configuration (one line, for the CLI)."""


@dataclass
class SandboxLimits:
    timeout_s: float = 10.0
    """Wall-clock seconds per program; the whole process group is killed after it."""
    memory_mb: int = 1024
    """Address-space limit (RLIMIT_AS) of the program."""
    max_processes: int = 64
    """RLIMIT_NPROC. The kernel counts a user's processes, and root ignores the limit (see docs/SANDBOX.md)."""
    max_file_mb: int = 16
    """Largest file the program may write (RLIMIT_FSIZE)."""
    max_open_files: int = 64
    """RLIMIT_NOFILE."""
    max_output_bytes: int = 1 << 20
    """stdout + stderr beyond this kills the program (verdict output-limit)."""
    tmp_size_mb: int = 64
    """bwrap / docker: size of the private writable /tmp (a tmpfs)."""

    def validate(self) -> None:
        if not self.timeout_s > 0:
            raise SandboxError(f"timeout must be > 0 seconds, got {self.timeout_s}")
        for name in ("memory_mb", "max_processes", "max_file_mb", "max_open_files", "max_output_bytes", "tmp_size_mb"):
            if getattr(self, name) < 1:
                raise SandboxError(f"sandbox limit {name} must be >= 1, got {getattr(self, name)}")

    def rlimits(self, extra_processes: int = 0) -> list[tuple[str, int]]:
        cpu = math.ceil(self.timeout_s) + 1  # a backstop: the wall clock normally fires first
        return [("RLIMIT_CPU", cpu), ("RLIMIT_AS", self.memory_mb << 20),
                ("RLIMIT_NPROC", self.max_processes + extra_processes), ("RLIMIT_FSIZE", self.max_file_mb << 20),
                ("RLIMIT_NOFILE", self.max_open_files), ("RLIMIT_CORE", 0)]


@dataclass
class RunResult:
    verdict: str
    """One of VERDICTS."""
    seconds: float
    returncode: int | None = None
    stdout: str = ""
    """The program's output, the proof line removed (capped at the output limit)."""
    stderr: str = ""
    result: str | None = None
    """What the program left in ``__hrmkit_result__`` (output-comparison tasks), only when it passed."""

    @property
    def passed(self) -> bool:
        return self.verdict == "passed"

    @property
    def detail(self) -> str:
        """The last line of stderr: usually the exception that ended the program."""
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[-1][:300] if lines else ""


@dataclass
class ProcessSpec:
    """What the shared runner loop needs from a backend: a command, and how to end it."""
    argv: list[str]
    cwd: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    cleanup: list = field(default_factory=list)  # callables run after the process is gone


class Sandbox:
    """Base: build the job, launch the backend's command, pump I/O, enforce the clock, classify."""

    name = "base"
    summary = ""

    def __init__(self, limits: SandboxLimits | None = None, guard: bool = True, python: str | None = None,
                 site_packages: bool = False):
        self.limits = limits or SandboxLimits()
        self.limits.validate()
        self.guard = guard
        self.python = python or sys.executable
        # -I: no PYTHON* variables, no user site, no script dir on sys.path. -S (default): the
        # standard library only, which also saves the site-packages start-up cost per program.
        self.python_flags = ["-I"] if site_packages else ["-I", "-S"]
        self._user_processes: int | None = None

    def describe(self) -> str:
        guard = "" if self.guard else ", audit-hook guard OFF"
        return f"{self.name} ({self.summary}{guard})"

    def run(self, program: str) -> RunResult:
        nonce = secrets.token_hex(16)
        limits = ",".join(f"{name}={value}" for name, value in self.rlimits())
        job = f"{nonce}\n{int(self.guard)}\n{limits}\n{program}".encode("utf-8")  # read_job in sandbox_runner.py
        process = self.prepare()
        try:
            return self._execute(process, job, nonce)
        finally:
            for cleanup in process.cleanup:
                cleanup()

    # -- backend hooks -----------------------------------------------------------------------------
    def prepare(self) -> ProcessSpec:
        raise NotImplementedError

    def rlimits(self) -> list[tuple[str, int]]:
        # RLIMIT_NPROC counts every process (and thread) of this user, not only the program's
        # (bwrap's user namespace counts its own, but only where it can create one).
        if self._user_processes is None:
            self._user_processes = _count_user_processes()
        return self.limits.rlimits(extra_processes=self._user_processes)

    def terminate(self, proc: subprocess.Popen) -> None:
        """Kill the program and everything it started (the process group; backends add more)."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    # -- the shared loop ---------------------------------------------------------------------------
    def _execute(self, process: ProcessSpec, payload: bytes, nonce: str) -> RunResult:
        started = time.monotonic()
        deadline = started + self.limits.timeout_s
        try:
            proc = subprocess.Popen(process.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    cwd=process.cwd, env=process.env, start_new_session=True, close_fds=True)
        except OSError as error:
            raise SandboxError(f"sandbox {self.name}: cannot start {process.argv[0]}: {error}") from None
        try:
            stop, out, err = self._pump(proc, payload, deadline)
        finally:
            self.terminate(proc)  # also the background children of a program that exited
            proc.wait()  # reaps it: only now may its pid be reused
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                pipe.close()
        seconds = time.monotonic() - started
        return classify(stop, proc.returncode, bytes(out), bytes(err), nonce, seconds)

    def _pump(self, proc: subprocess.Popen, payload: bytes, deadline: float) -> tuple[str | None, bytearray, bytearray]:
        """Feed the job, collect output; returns (why we stopped early or None, stdout, stderr)."""
        selector = selectors.DefaultSelector()
        os.set_blocking(proc.stdin.fileno(), False)
        selector.register(proc.stdin, selectors.EVENT_WRITE)
        selector.register(proc.stdout, selectors.EVENT_READ)
        selector.register(proc.stderr, selectors.EVENT_READ)
        out, err, sent, exited_at = bytearray(), bytearray(), 0, None
        try:
            while selector.get_map():
                now = time.monotonic()
                if now >= deadline:
                    return "timeout", out, err
                if exited_at is None and has_exited(proc):
                    exited_at = now
                    self.terminate(proc)  # stragglers holding our pipes die with their group
                elif exited_at is not None and now - exited_at > 1.0:
                    break  # something outside the group still holds the pipes: stop listening
                for key, _ in selector.select(min(deadline - now, 0.25)):
                    if key.fileobj is proc.stdin:
                        try:
                            sent += os.write(key.fd, payload[sent:sent + (1 << 16)])
                        except (BrokenPipeError, ConnectionResetError):
                            sent = len(payload)
                        if sent >= len(payload):
                            selector.unregister(proc.stdin)
                            proc.stdin.close()
                        continue
                    chunk = os.read(key.fd, 1 << 16)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        continue
                    (out if key.fileobj is proc.stdout else err).extend(chunk)
                    if len(out) + len(err) > self.limits.max_output_bytes:
                        return "output-limit", out, err
            pause = 0.0005
            while not has_exited(proc):  # usually at once: the pipes close as it exits
                if time.monotonic() >= deadline:  # closed its output but kept running
                    return "timeout", out, err
                time.sleep(pause)
                pause = min(pause * 2, 0.02)
            return None, out, err
        finally:
            selector.close()


def has_exited(proc: subprocess.Popen) -> bool:
    """Exited, but not reaped: until ``proc.wait()`` its pid, hence its process group id, stays
    reserved, so killing that group can never hit an unrelated process that reused the number."""
    if proc.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def classify(stop: str | None, returncode: int | None, out: bytes, err: bytes, nonce: str, seconds: float) -> RunResult:
    """The verdict: only the nonce line, printed after the program's end, means passed."""
    stdout, stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    if stop is not None:
        return RunResult(stop, seconds, returncode, stdout, stderr)
    marker = "\n" + nonce
    at = stdout.rfind(marker)
    if returncode == 0 and at >= 0:
        line_end = stdout.find("\n", at + 1)
        line = stdout[at + len(marker):line_end if line_end >= 0 else len(stdout)]
        result = line[1:] if line.startswith(" ") else None
        return RunResult("passed", seconds, returncode, stdout[:at], stderr, result)
    if returncode is not None and (returncode < 0 or returncode >= 128):  # signal (bwrap reports 128 + signal)
        return RunResult("killed", seconds, returncode, stdout, stderr)
    if returncode == 0 or returncode in RUNNER_EXIT_FAILED:
        return RunResult("failed", seconds, returncode, stdout, stderr)
    return RunResult("error", seconds, returncode, stdout, stderr)



def _count_user_processes() -> int:
    uid, count = os.getuid(), 0
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                continue
    return count

