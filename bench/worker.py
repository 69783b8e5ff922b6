"""A long-lived worker for `python -m bench` (issue 11: `dvc repro` runs ~50 stage commands;
each new process paid ~3 s of CPU to import pandas, torch, OpenCV, onnxruntime, deepface and
Hydra before doing any work).

With `BENCH_WORKER=auto` in the environment (the Makefile's `repro` sets it), a `python -m bench
...` call does not import any of that: it hands its command line, working directory,
environment and its stdin/stdout/stderr (file descriptors, over a Unix socket) to a worker
process that imported everything once, and exits with the command's exit code. The worker
forks one child per call (a fork server, like multiprocessing's "forkserver" start method):
the child takes the caller's descriptors, directory and environment and runs
`bench.cli.main(argv)` as the caller would have, so each command still runs in its own
process, writes the same files and prints the same lines; nothing of one command's state
reaches the next. The first call starts the worker (detached); it exits after `BENCH_WORKER_IDLE`
seconds (default 120) without a call.

The worker serves only callers that would import the very same code: its socket's name holds
a fingerprint of the `bench` package (every file's path, size and mtime), the Python executable
and the environment variables libraries read when imported (thread counts, model homes). Edit a
file and the next call starts a fresh worker; the old one times out.

Without BENCH_WORKER (the default), or where the worker cannot be reached, a call runs in its
own process as before: the worker changes speed, never results (tests/test_worker.py).

Only the standard library is imported by the calling side (`forward`).
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = "BENCH_WORKER"
IDLE_ENV = "BENCH_WORKER_IDLE"
DEFAULT_IDLE_S = 120.0
START_TIMEOUT_S = 60.0
PACKAGE = Path(__file__).resolve().parent
# Read by libraries at import time: a worker that imported them under other values is not used.
IMPORT_TIME_ENV_PREFIXES = ("OMP_", "MKL_", "OPENBLAS_", "NUMEXPR_", "TORCH", "ORT_", "OPENCV_", "DEEPFACE",
                            "INSIGHTFACE", "PYTHON", "HYDRA_", "BENCH_SHARED", "LD_", "CUDA_")
MAX_MESSAGE = 1 << 22
MAX_SOCKET_PATH = 100  # AF_UNIX: sun_path holds 108 bytes on Linux, 104 on macOS


# ---- the calling side --------------------------------------------------------------------

def fingerprint() -> str:
    """sha256 (16 hex) of the bench package's files (path, size, mtime), the interpreter and the
    import-time environment: a worker serves only callers with the same."""
    h = hashlib.sha256()
    h.update(sys.executable.encode())
    h.update(str(PACKAGE).encode())
    for path in sorted(PACKAGE.rglob("*.py")):
        st = path.stat()
        h.update(f"{path.relative_to(PACKAGE)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    for key in sorted(k for k in os.environ if k.startswith(IMPORT_TIME_ENV_PREFIXES)):
        h.update(f"{key}={os.environ[key]}\n".encode())
    return h.hexdigest()[:16]


def socket_path(key: str | None = None) -> Path:
    """The worker's socket for this code and environment (short: AF_UNIX paths are < 108 bytes)."""
    name = f"bench-worker-{os.getuid()}-{key or fingerprint()}.sock"
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    if len(str(base / name)) > MAX_SOCKET_PATH:
        base = Path(tempfile.gettempdir())
    return base / name


def forward(argv: list[str]) -> int | None:
    """Runs `python -m bench <argv>` in the worker when BENCH_WORKER=auto; returns its exit code,
    or None when this call should run in its own process (no BENCH_WORKER, the worker command
    itself, or no worker could be reached: the caller then runs it as usual)."""
    if os.environ.get(ENV, "") != "auto" or (argv[:1] == ["worker"]):
        return None
    path = socket_path()
    conn = connect(path) or start(path)
    if conn is None:
        return None
    with conn:
        return call(conn, argv)


def connect(path: Path) -> socket.socket | None:
    if not path.exists():
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(str(path))
    except OSError:
        conn.close()
        return None
    return conn


def start(path: Path) -> socket.socket | None:
    """Starts a detached worker on `path` and connects to it (None if it did not come up)."""
    log = path.with_suffix(".log")
    try:
        with open(log, "ab") as out:
            process = subprocess.Popen([sys.executable, "-m", "bench.worker", str(path)], stdin=subprocess.DEVNULL,
                                       stdout=out, stderr=out, start_new_session=True, cwd=str(PACKAGE.parent),
                                       env=os.environ.copy())
    except OSError:
        return None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:  # a worker that failed: run here
        conn = connect(path)
        if conn is not None:
            return conn
        time.sleep(0.05)
    return None


def call(conn: socket.socket, argv: list[str]) -> int | None:
    """Sends the request with this process's stdin/stdout/stderr; waits for the exit code,
    passing SIGINT/SIGTERM on to the command's process."""
    request = json.dumps({"argv0": sys.argv[0], "argv": argv, "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        socket.send_fds(conn, [len(request).to_bytes(8, "big") + request], [0, 1, 2])
        pid = int(read_line(conn))
    except (OSError, ValueError):
        return None  # the worker went away before taking the call: run it here
    previous = {}

    def pass_on(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        previous[signum] = signal.signal(signum, pass_on)
    try:
        line = read_line(conn)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return int(line) if line else 1  # the command's process died without an exit code


def read_line(conn: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(64)
        if not chunk:
            break
        data += chunk
    return data.decode().strip()


# ---- the worker --------------------------------------------------------------------------

def preload() -> None:
    """Imports what the commands import (bench.cli's COMMANDS modules and their libraries):
    the work every process used to repeat. No model is loaded: a forked child builds its own."""
    import importlib

    from bench.cli import COMMANDS

    for module, _ in COMMANDS.values():
        if module:
            try:
                importlib.import_module(module)
            except Exception as err:  # noqa: BLE001 - the child imports it again and reports
                print(f"bench worker: preloading {module} failed: {err}", file=sys.stderr, flush=True)
    importlib.import_module("hydra._internal.utils")  # what bench.cli.hydra_app imports per call


def serve(path: Path, idle_s: float) -> None:
    """Accepts calls on `path` until idle for `idle_s` seconds; forks one child per call."""
    preload()
    tmp = path.with_name(path.name + f".{os.getpid()}")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp))
    server.listen(16)
    os.replace(tmp, path)  # callers connect only once it listens
    mine = os.stat(path).st_ino
    server.settimeout(idle_s)
    children: set[int] = set()
    try:
        while True:
            try:
                conn, _ = server.accept()
            except socket.timeout:
                children = reap(children)
                if not children:
                    break
                continue
            pid = os.fork()
            if pid == 0:
                server.close()
                child(conn)  # never returns
            conn.close()
            children.add(pid)
            children = reap(children)
    finally:
        server.close()
        try:
            if os.stat(path).st_ino == mine:  # not a newer worker's socket on the same path
                path.unlink()
        except OSError:
            pass


def reap(children: set[int]) -> set[int]:
    left = set()
    for pid in children:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            continue
        if not done:
            left.add(pid)
    return left


def child(conn: socket.socket) -> None:
    """One call in a forked child: the caller's descriptors, directory, environment and
    command line; sends the pid, then the exit code; ends with os._exit."""
    code = 1
    try:
        header, fds, _, _ = socket.recv_fds(conn, 8 + MAX_MESSAGE, 3)
        size = int.from_bytes(header[:8], "big")
        body = header[8:]
        while len(body) < size:
            chunk = conn.recv(size - len(body))
            if not chunk:
                raise ConnectionError("the caller went away")
            body += chunk
        request = json.loads(body)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        reopen_standard_streams()
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.setsid()  # the caller's signals reach this process through the caller (call)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        conn.sendall(f"{os.getpid()}\n".encode())
        watch_caller(conn)
        sys.argv = [request["argv0"], *request["argv"]]
        from bench.cli import main

        code = main(list(request["argv"]))
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except KeyboardInterrupt:
        code = 130
    except BaseException:  # noqa: BLE001 - report as the process would, then exit non-zero
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # noqa: BLE001
            pass
        try:
            conn.sendall(f"{code}\n".encode())
        except OSError:
            pass
        os._exit(code)


def reopen_standard_streams() -> None:
    """sys.stdin/stdout/stderr anew on descriptors 0-2 (the worker's own were /dev/null and a
    log file): buffering and isatty() as a process started on the caller's would have."""
    import io

    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    for fd, name in ((1, "stdout"), (2, "stderr")):
        raw = io.FileIO(fd, "w", closefd=False)
        tty = os.isatty(fd)
        stream = io.TextIOWrapper(raw if tty or fd == 2 else io.BufferedWriter(raw), write_through=fd == 2,
                                  line_buffering=tty)
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def watch_caller(conn: socket.socket) -> None:
    """Ends this process when the caller goes away (killed: its socket end closes), so that a
    killed `python -m bench` call never leaves its command running."""
    import threading

    def watch():
        try:
            while conn.recv(64):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, daemon=True, name="bench-worker-caller").start()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.worker SOCKET_PATH (started by `python -m bench` itself)", file=sys.stderr)
        return 2
    serve(Path(argv[0]), float(os.environ.get(IDLE_ENV, DEFAULT_IDLE_S)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
