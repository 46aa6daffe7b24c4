"""The trusted first part of every sandboxed program: limits, guard, run, proof of completion.

This file is never imported by the evaluator: ``sandbox.py`` reads its text and each backend
(``sandbox_backends.py``) passes it to ``python -I -c`` inside the sandbox, so it must use the
standard library only and run on any Python >= 3.8 (the Docker image may not be ours). The job
arrives on stdin (nonce, guard flag, resource limits, program); stdin is then replaced by
/dev/null, so the program itself reads an empty, closed input.

Completion proof: the nonce travels only through that stdin pipe (never a file, the command
line or the environment), and is printed on its own line only after the whole program, tests
included, has run to its end. ``sys.exit(0)``, ``os._exit(0)`` or a printed imitation before the
asserts therefore never produce it. Code that searches this interpreter's own memory (frames,
closures) could still find it: see docs/SANDBOX.md.
"""

import os
import sys

EXIT_ASSERTION = 1  # an assert (a test) failed
EXIT_ERROR = 3  # any other exception, the program's or the guard's
EXIT_EARLY = 4  # SystemExit before the program's end: the tests did not all run

# Operations no test of a pure function needs. Blocked by an audit hook (PEP 578), which,
# unlike replacing ``os.kill`` and friends, ``importlib.reload`` cannot undo.
DENIED_EVENTS = frozenset({
    "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.exec", "os.system", "os.startfile",
    "subprocess.Popen", "pty.spawn", "os.kill", "os.killpg", "signal.pthread_kill", "os.link",
    "socket.__new__", "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
    "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr", "socket.getnameinfo",
    "socket.sethostname", "urllib.Request", "webbrowser.open",
    "resource.setrlimit", "resource.prlimit",  # root could raise the hard limits again
    "gc.get_objects", "gc.get_referrers", "gc.get_referents",  # the cheapest road to the nonce
    "sqlite3.enable_load_extension", "sqlite3.load_extension", "os.add_dll_directory", "sys.remote_exec",
})
DENIED_EVENT_PREFIXES = ("ctypes.", "_winapi.", "winreg.", "msvcrt.")
# Modules that reach the operating system below the audited functions.
DENIED_IMPORTS = frozenset({"ctypes", "_ctypes", "cffi", "_cffi_backend", "_posixsubprocess", "_xxsubinterpreters",
                            "_xxinterpchannels", "_interpreters", "_testcapi", "_testinternalcapi"})
# Audited changes to the file system: the positions of their path arguments, and of their
# directory-descriptor arguments (a path relative to an open directory cannot be checked).
PATH_EVENTS = {
    "os.remove": ((0,), (1,)), "os.rmdir": ((0,), (1,)), "os.rename": ((0, 1), (2, 3)),
    "os.mkdir": ((0,), (2,)), "os.chmod": ((0,), (2,)), "os.chown": ((0,), (3,)), "os.truncate": ((0,), ()),
    "os.utime": ((0,), (3,)), "os.symlink": ((1,), (2,)), "os.setxattr": ((0,), ()), "os.removexattr": ((0,), ()),
    "shutil.rmtree": ((0,), (1,)), "shutil.copyfile": ((1,), ()), "shutil.copytree": ((1,), ()),
    "shutil.move": ((0, 1), ()), "shutil.copymode": ((1,), ()), "shutil.copystat": ((1,), ()),
    "shutil.chown": ((0,), ()), "sqlite3.connect": ((0,), ()),
}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def install_guard(sandbox_dir):
    """Refuse processes, signals, sockets and file changes outside ``sandbox_dir``."""
    realpath, join, getcwd, fsdecode = os.path.realpath, os.path.join, os.getcwd, os.fsdecode
    root = realpath(sandbox_dir)
    own_pid = str(os.getpid())

    def resolved(path):
        return realpath(join(getcwd(), fsdecode(path)))

    def inside(path):
        if isinstance(path, int):  # a descriptor: we cannot tell what it points at
            return False
        full = resolved(path)
        return full == root or full.startswith(root + os.sep) or full == os.devnull

    def deny(event):
        raise PermissionError(f"hrmkit sandbox: {event} is not allowed here")

    def check_open(path, mode, flags):
        if isinstance(path, int) or path is None:
            return  # wrapping a descriptor the program already holds
        writing = bool(flags & WRITE_FLAGS) if isinstance(flags, int) and flags >= 0 else any(c in (mode or "") for c in "wax+")
        if writing and not inside(path):
            deny(f"writing {fsdecode(path)!r}")
        full = resolved(path)
        if full.startswith("/proc/"):
            parts = full.split("/")
            if parts[2].isdigit() and parts[2] != own_pid:  # another process's environment, memory, ...
                deny(f"reading {full!r}")
            if parts[2] == own_pid and len(parts) > 3 and parts[3] in ("mem", "pagemap", "map_files"):
                deny(f"reading {full!r}")  # its own memory holds the nonce

    def hook(event, args):
        if event in DENIED_EVENTS or event.startswith(DENIED_EVENT_PREFIXES):
            deny(event)
        if event == "open":
            check_open(*(tuple(args) + (None, None))[:3])
        elif event == "import":
            if args[0] in DENIED_IMPORTS or args[0].split(".")[0] in DENIED_IMPORTS:
                deny(f"import {args[0]}")
        elif event in PATH_EVENTS:
            paths, dir_fds = PATH_EVENTS[event]
            if any(i < len(args) and args[i] not in (None, -1) for i in dir_fds):
                deny(f"{event} relative to a directory descriptor")
            for i in paths:
                if i < len(args) and not inside(args[i]):
                    deny(f"{event} on {args[i]!r}")

    sys.addaudithook(hook)


def set_limits(rlimits):
    """Lower each limit to the requested value (never above the hard limit we already have)."""
    import resource
    for name, value in rlimits:
        kind = getattr(resource, name, None)
        if kind is None:
            continue
        _, hard = resource.getrlimit(kind)
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        try:
            resource.setrlimit(kind, (value, value))
        except (ValueError, OSError) as error:
            sys.stderr.write(f"hrmkit sandbox: could not set {name}: {error}\n")


def read_job():
    """nonce, guard flag, limits and program from stdin; stdin then becomes /dev/null.

    The framing is four parts split at the first three newlines (nonce / 0 or 1 /
    NAME=value,... / program text): no json import, which costs a millisecond per program.
    """
    chunks = []
    while True:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    empty = os.open(os.devnull, os.O_RDONLY)
    os.dup2(empty, 0)
    os.close(empty)
    nonce, guard, limits, program = b"".join(chunks).decode("utf-8").split("\n", 3)
    rlimits = [(name, int(value)) for name, value in (item.split("=") for item in limits.split(",") if item)]
    return {"nonce": nonce, "guard": guard == "1", "rlimits": rlimits, "program": program}


def run_program(source):
    """Exit code of running ``source`` as ``__main__`` (0 only when it ran to its end)."""
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    try:
        exec(compile(source, "program.py", "exec"), namespace)
    except SystemExit as stop:
        sys.stderr.write(f"hrmkit sandbox: the program exited (SystemExit {stop.code!r}) before its end\n")
        return EXIT_EARLY, None
    except AssertionError:
        _print_traceback()
        return EXIT_ASSERTION, None
    except BaseException:  # noqa: B036 - everything, including KeyboardInterrupt and MemoryError
        _print_traceback()
        return EXIT_ERROR, None
    result = namespace.get("__hrmkit_result__")
    return 0, result if isinstance(result, str) else None


def watch_parent(exit_now):
    """End the program soon after the evaluator dies, even one that sleeps (no CPU limit then)."""
    import _thread
    import time
    parent, getppid, sleep = os.getppid(), os.getppid, time.sleep

    def watch():
        while getppid() == parent:
            sleep(0.5)
        exit_now(EXIT_ERROR)

    try:
        _thread.start_new_thread(watch, ())
    except RuntimeError:  # no thread under this process limit: the wall-clock kill remains
        pass


def _print_traceback():
    try:
        import traceback  # only on failure: importing it costs more than a passing program's run
        traceback.print_exc(limit=5)
    except BaseException:  # noqa: B036 - e.g. MemoryError again: the verdict stands without it
        pass


def main():
    write, exit_now = os.write, os._exit  # kept before the program can replace them
    job = read_job()
    set_limits(job["rlimits"])
    watch_parent(exit_now)
    finish = _finisher(job.pop("nonce").encode("ascii"), write, exit_now)
    if job["guard"]:
        install_guard(os.getcwd())
    source = job.pop("program")
    del job
    finish(*run_program(source))


def _finisher(nonce, write, exit_now):
    """Print the proof line (with the output-comparison result, if any) and leave at once."""
    def finish(code, result):
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - the program may have replaced or closed them
                pass
        if code == 0:
            line = b"\n" + nonce + (b" " + result.encode("utf-8", "replace") if result is not None else b"") + b"\n"
            while line:
                line = line[write(1, line):]
        exit_now(code)  # skip atexit handlers and threads the program left behind
    return finish


if __name__ == "__main__":
    main()
