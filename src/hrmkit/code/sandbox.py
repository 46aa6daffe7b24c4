"""Running untrusted programs (model-written code and its tests): bubblewrap > rlimited subprocess > docker.

Every backend but ``off`` runs each program in its own process, in a fresh temporary directory,
in its own session and process group, with stdin closed, stdout/stderr captured and capped, an
environment that holds none of the evaluator's variables, resource limits (CPU seconds, address
space, processes, file size, open files, no core dumps) set before the program starts, and a
wall-clock timeout that kills the whole group. The program runs under ``sandbox_runner.py``,
which also installs an audit-hook guard and prints a per-run nonce only once the program, tests
included, has run to its end: that line, not the exit code, is what "passed" means.

What each backend does and does not protect against is in docs/SANDBOX.md.
"""

from __future__ import annotations

import functools
import math
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BACKENDS = ("bwrap", "subprocess", "docker", "off")
AUTO_ORDER = ("bwrap", "subprocess", "docker")  # strongest first
VERDICTS = ("passed", "failed", "timeout", "error", "killed", "output-limit")
RUNNER_SOURCE = (Path(__file__).with_name("sandbox_runner.py")).read_text(encoding="utf-8")
RUNNER_EXIT_FAILED = (1, 4)  # an assert failed / SystemExit before the end (see sandbox_runner.py)
MINIMAL_PATH = "/usr/local/bin:/usr/bin:/bin"


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
class _Process:
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
    def prepare(self) -> _Process:
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
    def _execute(self, process: _Process, payload: bytes, nonce: str) -> RunResult:
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
                if exited_at is None and _has_exited(proc):
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
            while not _has_exited(proc):  # usually at once: the pipes close as it exits
                if time.monotonic() >= deadline:  # closed its output but kept running
                    return "timeout", out, err
                time.sleep(pause)
                pause = min(pause * 2, 0.02)
            return None, out, err
        finally:
            selector.close()


def _has_exited(proc: subprocess.Popen) -> bool:
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


# -- backends -------------------------------------------------------------------------------------
class SubprocessSandbox(Sandbox):
    """Plain child process with rlimits in a fresh temporary directory; shares the host's view of everything."""

    name = "subprocess"
    summary = "rlimits + audit-hook guard; no OS isolation of network, files or processes"

    def prepare(self) -> _Process:
        directory = tempfile.mkdtemp(prefix="hrmkit-sandbox-")
        return _Process([self.python, *self.python_flags, "-c", RUNNER_SOURCE], cwd=directory, env=_minimal_env(directory),
                        cleanup=[lambda: _remove_tree(directory)])


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

    def prepare(self) -> _Process:
        return _Process(self.argv, env={"PATH": MINIMAL_PATH})

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

    def prepare(self) -> _Process:
        self.container = f"hrmkit-sandbox-{secrets.token_hex(8)}"
        limits = self.limits
        argv = [self.docker, "run", "--rm", "-i", "--pull", "never", "--name", self.container, "--network", "none",
                "--read-only", "--tmpfs", f"/tmp:rw,size={limits.tmp_size_mb}m,mode=1777", "--workdir", "/tmp",
                "--user", "65534:65534", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                "--pids-limit", str(limits.max_processes), "--memory", f"{limits.memory_mb}m",
                "--memory-swap", f"{limits.memory_mb}m", "--cpus", "1", "--env", "HOME=/tmp",
                self.image, "python", *self.python_flags, "-c", RUNNER_SOURCE]
        return _Process(argv, env={"PATH": os.environ.get("PATH", MINIMAL_PATH)})

    def terminate(self, proc: subprocess.Popen) -> None:
        # Killing the docker client leaves the container running: ask the engine.
        if not _has_exited(proc):
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


# -- choosing a backend ---------------------------------------------------------------------------
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
