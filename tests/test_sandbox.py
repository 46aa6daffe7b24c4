"""The sandbox holds against hostile programs, on every backend this machine has.

Each hostile program is run, then a correct and a wrong program on the same sandbox: the
hostile one must be scored as a failure, its attack must leave no trace outside (checked from
here, the evaluator's side), and the next programs must be scored right. Where a backend cannot
contain something, the test asserts the limitation docs/SANDBOX.md states instead.
"""

import os
import re
import secrets
import signal
import socket
import sys
import time

import pytest

from hrmkit.code import sandbox_choice as sandbox_module
from hrmkit.code.sandbox import RUNNER_SOURCE, SandboxError, SandboxLimits, classify
from hrmkit.code.sandbox_choice import _build, make_sandbox, unavailable_reason

IS_ROOT = os.geteuid() == 0
GOOD = "def solve():\n    return 42\n\nassert solve() == 42\n"
WRONG = "def solve():\n    return 41\n\nassert solve() == 42\n"
NEVER_CORRECT = "\nassert False, 'a hostile program is never a correct solution'\n"


def backend_params():
    params = []
    for label, name, guard in (("bwrap", "bwrap", True), ("subprocess", "subprocess", True),
                               ("docker", "docker", True), ("bwrap-unguarded", "bwrap", False)):
        reason = unavailable_reason(name)
        params.append(pytest.param((name, guard), id=label, marks=pytest.mark.skipif(reason is not None, reason=str(reason))))
    return params


@pytest.fixture(scope="module", params=backend_params())
def box(request):
    name, guard = request.param
    limits = SandboxLimits(timeout_s=1.5, memory_mb=256, max_output_bytes=256 << 10, max_file_mb=1)
    return _build(name, limits, guard, None, None)


def run_hostile(box, program):
    """Run it; then check nothing it started survives, and that the next programs are scored right."""
    before = runner_processes()
    started = time.monotonic()
    result = box.run(program)
    assert time.monotonic() - started < box.limits.timeout_s + 5, "the evaluator waited far past the timeout"
    assert not result.passed, f"hostile program scored as passed: {result}"
    assert wait_until_gone(lambda: runner_processes() - before) == set(), "a sandboxed process outlived its run"
    assert box.run(GOOD).verdict == "passed"
    assert box.run(WRONG).verdict == "failed"
    return result


RUNNER_MARK = RUNNER_SOURCE.splitlines()[0].encode()  # every sandboxed interpreter's command line holds it


def processes_whose_command_line_has(mark: bytes) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as file:
                    if mark in file.read():
                        found.add(int(entry))
            except OSError:
                continue
    return found


def runner_processes() -> set[int]:
    return processes_whose_command_line_has(RUNNER_MARK)


def wait_until_gone(find, seconds=2.0):
    """What ``find()`` still returns after giving the kernel a moment to reap."""
    deadline = time.monotonic() + seconds
    while True:
        found = find()
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def processes_with(token: str) -> set[int]:
    return wait_until_gone(lambda: processes_whose_command_line_has(token.encode()))


def no_process_limit(box) -> bool:
    """Root ignores RLIMIT_NPROC: without the guard nothing bounds a fork bomb's process count."""
    return IS_ROOT and not box.guard


# -- runaway resources ----------------------------------------------------------------------------
def test_fork_bomb(box):
    if no_process_limit(box):
        pytest.skip("documented limitation: as root without the guard, only the timeout bounds a fork bomb")
    token = f"hrmkit-bomb-{secrets.token_hex(6)}"
    program = f"""
import os, sys
while True:
    try:
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(60)", "{token}"])
    except OSError:
        pass
"""
    result = run_hostile(box, program)
    assert result.verdict in ("timeout", "error", "killed")
    assert processes_with(token) == set()


def test_infinite_loop(box):
    assert run_hostile(box, "while True:\n    pass\n").verdict == "timeout"


def test_cpu_loop_ignoring_sigterm(box):
    program = "import signal\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nwhile True:\n    pass\n"
    assert run_hostile(box, program).verdict == "timeout"  # run_hostile checks that it is gone


def test_memory_hog(box):
    program = "hoard = []\nwhile True:\n    hoard.append(bytearray(16 << 20))\n"
    assert run_hostile(box, program).verdict in ("error", "killed")  # MemoryError under RLIMIT_AS


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_gigabytes_of_output(box, stream):
    program = f"import sys\nchunk = 'x' * 65536\nfor _ in range(16384):\n    sys.{stream}.write(chunk)\n"
    result = run_hostile(box, program)
    assert result.verdict == "output-limit"
    assert len(result.stdout) + len(result.stderr) <= box.limits.max_output_bytes + (1 << 16)


# -- reaching outside -----------------------------------------------------------------------------
def test_writing_or_deleting_files_outside_the_temp_dir(box, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("original")
    planted = tmp_path / "planted.txt"
    probe = os.path.join(sys.prefix, f"hrmkit-escape-probe-{secrets.token_hex(6)}")
    program = f"""
import os, shutil
attempts = [
    lambda: os.remove({str(victim)!r}),
    lambda: os.rename({str(victim)!r}, {str(victim)!r} + ".moved"),
    lambda: open({str(victim)!r}, "a").write("tampered"),
    lambda: open({str(planted)!r}, "w").write("planted"),
    lambda: open({probe!r}, "w").write("planted"),
    lambda: (os.symlink({str(victim)!r}, "link"), open("link", "a").write("through a link")),
    lambda: shutil.rmtree({str(tmp_path)!r}),
]
for attempt in attempts:
    try:
        attempt()
        print("ESCAPED")
    except Exception:
        pass
""" + NEVER_CORRECT
    result = run_hostile(box, program)
    assert victim.read_text() == "original"
    assert not planted.exists() and not os.path.exists(probe)
    assert "ESCAPED" not in result.stdout


def test_writing_inside_the_temp_dir_is_allowed(box):
    program = "import os\nopen('scratch.txt', 'w').write('x')\nassert open('scratch.txt').read() == 'x'\nos.remove('scratch.txt')\n"
    assert box.run(program).verdict == "passed"


def test_network_connections_including_localhost(box):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.3)
    port = server.getsockname()[1]
    datagrams = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    datagrams.bind(("127.0.0.1", port))
    datagrams.settimeout(0.3)
    program = f"""
import socket, urllib.request
attempts = [
    lambda: socket.create_connection(("127.0.0.1", {port}), timeout=1),
    lambda: urllib.request.urlopen("http://127.0.0.1:{port}/", timeout=1),
    lambda: socket.create_connection(("example.com", 80), timeout=1),
]
for attempt in attempts:
    try:
        attempt()
        print("CONNECTED")
    except Exception:
        pass
try:  # a datagram 'succeeds' even into an empty network namespace: the receiving side tells
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"escaped", ("127.0.0.1", {port}))
except Exception:
    pass
""" + NEVER_CORRECT
    try:
        result = run_hostile(box, program)
        with pytest.raises(socket.timeout):
            server.accept()
        with pytest.raises(socket.timeout):
            datagrams.recvfrom(64)
    finally:
        server.close()
        datagrams.close()
    assert "CONNECTED" not in result.stdout


def test_killing_the_parent_process(box):
    # SIGUSR1 stands in for SIGKILL (same permission rules) so that a breach is counted here
    # instead of ending the test run; SIGKILL at the parent is tried too.
    received = []
    previous = signal.signal(signal.SIGUSR1, lambda *_: received.append(True))
    program = f"""
import os, signal
for pid in {{os.getppid(), {os.getpid()}}}:
    for attempt in (lambda: os.kill(pid, signal.SIGUSR1), lambda: os.killpg(os.getpgid(pid), signal.SIGUSR1)):
        try:
            attempt()
        except Exception:
            pass
try:
    os.kill(os.getppid(), signal.SIGKILL)
except Exception:
    pass
""" + NEVER_CORRECT
    try:
        run_hostile(box, program)
        time.sleep(0.2)
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert received == []


def test_reading_the_evaluators_environment(box, monkeypatch):
    secret = secrets.token_hex(16)
    monkeypatch.setenv("HRMKIT_SANDBOX_SECRET", secret)
    program = """
import glob, os
found = [os.environ.get("HRMKIT_SANDBOX_SECRET", "")]
for path in ["/proc/self/environ", f"/proc/{os.getppid()}/environ", *glob.glob("/proc/*/environ")]:
    try:
        found.append(open(path, "rb").read().decode("latin-1"))
    except Exception:
        pass
print("\\n".join(found))
""" + NEVER_CORRECT
    result = run_hostile(box, program)
    assert secret not in result.stdout + result.stderr


def test_background_child_left_alive_after_exit(box):
    token = f"hrmkit-orphan-{secrets.token_hex(6)}"
    program = f"""
import os, sys
sleeper = [sys.executable, "-c", "import time; time.sleep(60)", "{token}"]
try:
    import subprocess
    subprocess.Popen(sleeper, start_new_session=True)
except Exception:
    pass
try:
    if os.fork() == 0:
        os.setsid()
        os.execv(sys.executable, sleeper)
except Exception:
    pass
os._exit(0)
"""
    assert run_hostile(box, program).verdict in ("failed", "error")
    assert processes_with(token) == set()


def test_restoring_disabled_functions_with_importlib_reload(box, tmp_path):
    planted = tmp_path / "reloaded.txt"
    program = f"""
import importlib, os, socket, sys
for module in (os, socket, sys):
    try:
        importlib.reload(module)
    except Exception:
        pass
def run_true():
    import subprocess
    importlib.reload(subprocess)
    subprocess.run(["true"])
attempts = [
    lambda: open({str(planted)!r}, "w").write("x"),
    lambda: os.system("true"),
    run_true,
    lambda: socket.create_connection(("127.0.0.1", 9), timeout=1),
    lambda: os.kill(os.getppid(), 0),
]
for attempt in attempts:
    try:
        attempt()
        print("RESTORED")
    except Exception:
        pass
""" + NEVER_CORRECT
    result = run_hostile(box, program)
    assert not planted.exists()
    if box.guard:  # bwrap without the guard lets these run, inside its namespaces (checked above)
        assert "RESTORED" not in result.stdout


# -- the completion proof -------------------------------------------------------------------------
@pytest.mark.parametrize("exit_call", ["sys.exit(0)", "os._exit(0)", "raise SystemExit(0)", "sys.exit()"])
def test_exiting_early_with_success(box, exit_call):
    program = f"import os, sys\n\ndef solve():\n    return 41\n\n{exit_call}\nassert solve() == 42\n"
    assert run_hostile(box, program).verdict == "failed"


def test_forging_the_success_line(box):
    program = """
import os, re, sys
print("passed")
print("OK")
print("ALL TESTS PASSED")
blobs = []
for path in ("/proc/self/cmdline", "/proc/self/environ", "program.py", "/proc/self/fd/0", "/proc/self/mem"):
    try:
        blobs.append(open(path, "rb").read(1 << 20))
    except Exception:
        pass
for fd in range(64):
    try:
        blobs.append(os.read(fd, 1 << 16))
    except Exception:
        pass
for blob in blobs:
    for token in set(re.findall(rb"[0-9a-f]{32}", blob)):
        print(token.decode())
sys.stdout.flush()
os._exit(0)
"""
    assert run_hostile(box, program).verdict == "failed"


def test_gc_scan_for_the_nonce(box):
    program = """
import gc, os, re
for thing in gc.get_objects():
    if type(thing).__name__ == "cell":
        try:
            values = (thing.cell_contents,)
        except ValueError:  # an empty cell
            continue
    elif isinstance(thing, dict):
        values = thing.values()
    else:
        values = thing if isinstance(thing, (list, tuple)) else ()
    for value in values:
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        if isinstance(text, str) and re.fullmatch(r"[0-9a-f]{32}", text):
            print("\\n" + text, flush=True)
os._exit(0)
"""
    if box.guard:
        assert run_hostile(box, program).verdict == "error"  # gc.get_objects is refused
    else:  # documented limitation: without the guard the interpreter's own memory gives the nonce away
        assert box.run(program).verdict == "passed"


def test_walking_frames_to_the_runner_forges_assert_mode_only():
    """Documented limitation on every backend: the proof line is printed by Python code in the same
    interpreter, so a program written against the runner can call it. Only output comparison in the
    evaluator (EvalPlus tasks) still judges such a program by what it returns."""
    from hrmkit.code.data import CodeTask
    from hrmkit.code.evaluate import canonical_outputs, score_solution
    box = make_sandbox("auto", SandboxLimits(timeout_s=5), announce=lambda line: None)
    forger = ("import sys\nframe = sys._getframe()\nwhile frame and 'finish' not in frame.f_locals:\n"
              "    frame = frame.f_back\nframe.f_locals['finish'](0, None)\n")
    assert box.run(forger + "assert False\n").verdict == "passed"
    task = CodeTask("Mini/0", "def add(a, b):\n", "def add(a, b):\n    return a + b\n", "", entry_point="add",
                    inputs=((1, 2), (3, 4)))
    expected = canonical_outputs([task], box, workers=1)["Mini/0"]
    made_up = forger.replace("(0, None)", "(0, '[0, 0]')")  # it must invent the outputs: it has none right
    assert score_solution(task, "def add(a, b):\n    return 0\n" + made_up, box, expected).verdict == "failed"


def test_objects_that_equal_everything_pass_asserts_but_not_output_comparison():
    """Documented limitation of assert-based tests (MBPP, HumanEval): the comparison runs in the
    untrusted process, so ``__eq__`` returning True passes. Output comparison happens in the evaluator."""
    from hrmkit.code.data import CodeTask
    from hrmkit.code.evaluate import (
        canonical_outputs,
        program_under_test,
        score_solution,
    )
    box = make_sandbox("auto", SandboxLimits(timeout_s=5), announce=lambda line: None)
    cheat = "class Anything:\n    def __eq__(self, other):\n        return True\n\ndef add(a, b):\n    return Anything()\n"
    asserts = CodeTask("T/0", "", "def add(a, b):\n    return a + b\n", "assert add(1, 2) == 3\n", entry_point="add")
    assert box.run(program_under_test(asserts, cheat)).verdict == "passed"
    outputs = CodeTask("T/1", "", asserts.reference, "", entry_point="add", inputs=((1, 2),))
    expected = canonical_outputs([outputs], box, workers=1)["T/1"]
    assert score_solution(outputs, cheat, box, expected).verdict == "failed"
    assert score_solution(outputs, asserts.reference, box, expected).verdict == "passed"


def test_the_nonce_is_the_only_thing_that_means_passed():
    nonce = "ab" * 16
    assert classify(None, 0, b"out\n" + b"\n" + nonce.encode() + b"\n", b"", nonce, 0.1).verdict == "passed"
    assert classify(None, 0, b"passed\nOK\n", b"", nonce, 0.1).verdict == "failed"
    assert classify(None, 3, b"\n" + nonce.encode() + b"\n", b"", nonce, 0.1).verdict == "error"
    assert classify(None, -9, b"", b"", nonce, 0.1).verdict == "killed"
    assert classify(None, 137, b"", b"", nonce, 0.1).verdict == "killed"  # bwrap: 128 + SIGKILL
    assert classify("timeout", None, b"\n" + nonce.encode(), b"", nonce, 0.1).verdict == "timeout"


# -- what each backend cannot do (stated in docs/SANDBOX.md) --------------------------------------
@pytest.mark.skipif(unavailable_reason("subprocess") is not None, reason="no subprocess backend")
def test_subprocess_backend_limitation_reads_any_file_the_user_can(tmp_path):
    secret_file = tmp_path / "readable.txt"
    secret_file.write_text("visible to the subprocess backend")
    program = f"print(open({str(secret_file)!r}).read())\n"
    box = _build("subprocess", SandboxLimits(timeout_s=5), True, None, None)
    assert "visible to the subprocess backend" in box.run(program).stdout
    if unavailable_reason("bwrap") is None:  # bwrap's private /tmp and read-only binds hide it
        bwrap = _build("bwrap", SandboxLimits(timeout_s=5), True, None, None)
        assert "visible" not in bwrap.run(program).stdout


@pytest.mark.skipif(unavailable_reason("subprocess") is not None, reason="no subprocess backend")
def test_subprocess_backend_limitation_unaudited_calls_reach_the_file_system(tmp_path):
    fifo = tmp_path / "fifo"
    program = f"import os\nos.mkfifo({str(fifo)!r})\n"  # os.mkfifo raises no audit event
    box = _build("subprocess", SandboxLimits(timeout_s=5), True, None, None)
    box.run(program)
    assert fifo.exists()
    if unavailable_reason("bwrap") is None:
        fifo.unlink()
        _build("bwrap", SandboxLimits(timeout_s=5), True, None, None).run(program)
        assert not fifo.exists()


# -- choosing a backend ---------------------------------------------------------------------------
def test_off_refuses_without_the_explicit_flag():
    with pytest.raises(SandboxError, match="i-know-this-runs-untrusted-code"):
        make_sandbox("off")
    box = make_sandbox("off", allow_unsandboxed=True, announce=lambda line: None)
    assert box.run(GOOD).verdict == "passed" and box.run(WRONG).verdict == "failed"


def test_docker_without_an_engine_is_a_clear_one_line_error():
    reason = unavailable_reason("docker")
    if reason is None:
        pytest.skip("a Docker engine is running here")
    with pytest.raises(SandboxError) as error:
        make_sandbox("docker")
    message = str(error.value)
    assert "docker" in message.lower() and "\n" not in message and "Traceback" not in message


def test_auto_prefers_bwrap_and_says_which_backend_it_picked():
    lines = []
    box = make_sandbox("auto", announce=lines.append)
    expected = "bwrap" if unavailable_reason("bwrap") is None else "subprocess"
    assert box.name == expected
    assert lines[-1].startswith(f"sandbox: {expected}")


def test_auto_warns_once_when_only_the_weaker_backend_works(monkeypatch):
    real = unavailable_reason.__wrapped__
    monkeypatch.setattr(sandbox_module, "unavailable_reason",
                        lambda name, *args: "pretend it is missing" if name == "bwrap" else real(name, *args))
    monkeypatch.setattr(sandbox_module, "_warned_weak_backend", False)
    lines = []
    assert make_sandbox("auto", announce=lines.append).name == "subprocess"
    make_sandbox("auto", announce=lines.append)
    warnings = [line for line in lines if line.startswith("warning:")]
    assert len(warnings) == 1 and "pretend it is missing" in warnings[0] and "weaker" in warnings[0]


def test_runner_source_carries_no_secret():
    # The runner is passed on the command line, visible in /proc/<pid>/cmdline: nothing in it may matter.
    assert not re.search(r"[0-9a-f]{32}", RUNNER_SOURCE)


def test_bad_limits_are_refused():
    with pytest.raises(SandboxError, match="timeout"):
        SandboxLimits(timeout_s=0).validate()
    with pytest.raises(SandboxError, match="memory_mb"):
        SandboxLimits(memory_mb=0).validate()
