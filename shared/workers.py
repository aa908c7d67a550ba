"""Several worker processes of one `cpms run`, so one machine's cores are used (`CPMS_WORKERS`).
The first `CPMS_CONSUMER_WORKERS` (1) apply the queues: every consumer, relay and task, no port.
The others serve HTTP behind the one port (SO_REUSEPORT: the kernel spreads the connections over
them), with every relay and task but no consumer. So a consumer's batch never holds up the
gateway's requests, and each side has a core of its own; several workers on one side compete
as replicas do. The parent only supervises:

- it passes SIGTERM and SIGINT on to the workers and waits for their graceful shutdown;
- a worker that dies is started again, after a pause that doubles with each death in a row
  (up to 30 s), so a crash never turns into a busy loop;
- a worker refused by a dependency (exit code 2: a wrong password) stops them all with code 2;
- metrics live in one file per worker under a directory of their own (prometheus_client's
  multiprocess mode), so whichever worker answers /metrics answers for all of them;
- it may give the workers one block of memory to share (an anonymous memfd, never a file on
  disk), which begins with a key that only they know: what they remember of verified secrets."""
from __future__ import annotations

import logging
import mmap
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from shared.startup import EXIT_REFUSED

log = logging.getLogger(__name__)

WORKER = "CPMS_WORKER"  # in a worker's environment: its number, 1 to N
ROLE = "CPMS_WORKER_ROLE"  # in a worker's environment: "consumers" or "http"
METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus_client when it is first imported
SHARED_MEMORY_FD = "CPMS_WORKER_SHARED_MEMORY_FD"  # in a worker's environment: the inherited memfd
KEY_BYTES = 32
_MAX_PAUSE = 30.0


def is_worker() -> bool:
    return bool(os.environ.get(WORKER))


def role() -> str:
    """What this process does: "all" (alone), "consumers" or "http" (a worker)."""
    return os.environ.get(ROLE, "all") if is_worker() else "all"


def shared_memory(size: int) -> tuple[bytes, memoryview | mmap.mmap]:
    """(key, `size` bytes): the block the parent gave the workers, or, in a process of its own,
    a block of its own. The key is random, and the same in every worker of one parent."""
    fd = os.environ.get(SHARED_MEMORY_FD) if is_worker() else None
    if fd is None:
        return os.urandom(KEY_BYTES), memoryview(bytearray(size))
    block = mmap.mmap(int(fd), 0)
    if len(block) < KEY_BYTES + size:
        raise RuntimeError(f"the workers' shared memory holds {len(block)} bytes, {KEY_BYTES + size} are needed")
    return bytes(block[:KEY_BYTES]), memoryview(block)[KEY_BYTES:KEY_BYTES + size]


def _new_shared_memory(size: int) -> int:
    fd = os.memfd_create("cpms-workers", 0)  # inheritable by the workers, and no flag closes it on exec
    os.ftruncate(fd, KEY_BYTES + size)
    os.pwrite(fd, os.urandom(KEY_BYTES), 0)
    return fd


def supervise(argv: list[str], workers: int, consumer_workers: int, *, shared_bytes: int = 0) -> int:
    """Run `argv` (a `cpms run` command line) as `workers` processes until told to stop, the first
    `consumer_workers` of them applying the queues and the others serving HTTP; `shared_bytes`:
    the size of the memory they share (see `shared_memory`)."""
    metrics_dir = tempfile.mkdtemp(prefix="cpms-metrics-")
    env = {**os.environ, METRICS_DIR: metrics_dir}
    memory_fd = _new_shared_memory(shared_bytes) if shared_bytes else None
    if memory_fd is not None:
        env[SHARED_MEMORY_FD] = str(memory_fd)
    stopping = False
    exit_code = 0

    def start(number: int) -> subprocess.Popen:
        # A session of its own: a terminal's Ctrl-C reaches the parent alone, which passes it on.
        worker_role = "consumers" if number <= consumer_workers else "http"
        return subprocess.Popen([sys.executable, "-m", "services.cli", *argv], env={**env, WORKER: str(number), ROLE: worker_role},
                                start_new_session=True, pass_fds=() if memory_fd is None else (memory_fd,))

    running = {number: start(number) for number in range(1, workers + 1)}
    started_at = dict.fromkeys(running, time.monotonic())
    log.info("workers started", extra={"workers": workers, "pids": [p.pid for p in running.values()]})

    def stop_all(signum: int, _frame=None) -> None:
        nonlocal stopping
        stopping = True
        for process in running.values():
            if process.poll() is None:
                process.send_signal(signum)

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    deaths_in_a_row: dict[int, int] = {}
    try:
        while running:
            time.sleep(0.2)
            for number, process in list(running.items()):
                code = process.poll()
                if code is None:
                    if deaths_in_a_row.get(number) and time.monotonic() - started_at[number] > _MAX_PAUSE:
                        deaths_in_a_row[number] = 0  # it has stayed up: the next death starts the count again
                    continue
                _forget_metrics(metrics_dir, process.pid)
                del running[number]
                if stopping:
                    continue
                if code == EXIT_REFUSED:
                    log.error("a worker was refused by a dependency: stopping every worker", extra={"worker": number})
                    exit_code = EXIT_REFUSED
                    stop_all(signal.SIGTERM)
                    continue
                deaths_in_a_row[number] = deaths_in_a_row.get(number, 0) + 1
                pause = min(_MAX_PAUSE, 0.5 * 2 ** (deaths_in_a_row[number] - 1))
                log.error("a worker died: starting it again", extra={"worker": number, "exit_code": code, "retry_in": pause})
                time.sleep(pause)
                if not stopping:
                    running[number], started_at[number] = start(number), time.monotonic()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return exit_code


def _forget_metrics(metrics_dir: str, pid: int) -> None:
    """A dead worker's gauges leave the live aggregates (its counters stay counted)."""
    from prometheus_client import multiprocess

    try:
        multiprocess.mark_process_dead(pid, metrics_dir)
    except OSError:
        pass
