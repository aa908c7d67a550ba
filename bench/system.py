"""Starting the CPMS under test as real processes, and reading their memory and CPU."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

import aiohttp

CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int | str) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_cpu_seconds() -> dict[int, tuple[str, float]]:
    """CPU seconds so far of every Postgres and RabbitMQ process and of this one (the load
    generator), by pid; `machine_cpu_between` turns two of these into the CPU each kind took."""
    seconds = {os.getpid(): ("generator", process_cpu_seconds(os.getpid()))}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                command = f.read().strip()
            kind = "postgres" if command.startswith("postgres") else "rabbitmq" if command == "beam.smp" else None
            if kind:
                seconds[int(pid)] = (kind, process_cpu_seconds(pid))
        except OSError:  # gone meanwhile
            continue
    return seconds


def machine_cpu_between(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds by kind between two samples. A process that ended in between is left out (its
    last seconds are lost), one that started counts whole: Postgres starts and ends a backend per
    connection."""
    taken = {"postgres": 0.0, "rabbitmq": 0.0, "generator": 0.0}
    for pid, (kind, seconds) in after.items():
        taken[kind] += seconds - before.get(pid, (kind, 0.0))[1]
    return taken


def listen_overflows() -> int:
    """Connections the kernel dropped so far because a listener's accept queue was full (every
    listener of this network namespace: TcpExt ListenOverflows)."""
    with open("/proc/net/netstat") as f:
        names, values = [line.split() for line in f if line.startswith("TcpExt:")][:2]
    return int(values[names.index("ListenOverflows")])


def free_port() -> int:
    """A port nobody listens on now: runs of the benchmark side by side never meet."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def rss_bytes(pid: int, field: str = "VmHWM") -> int:
    """A memory figure of /proc/PID/status in bytes (VmHWM: the peak RSS); 0 for a process gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def worker_role(pid: int) -> str:
    """What a worker of `cpms run` does (shared/workers.py): "http" or "consumers"."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            for variable in f.read().split(b"\0"):
                if variable.startswith(b"CPMS_WORKER_ROLE="):
                    return variable.split(b"=", 1)[1].decode()
    except OSError:
        pass
    return "worker"


@dataclass
class Process:
    """One CPMS command; under CPMS_WORKERS its workers are its children."""

    name: str
    port: int
    popen: subprocess.Popen

    def pids(self) -> list[int]:
        return [self.popen.pid, *children_of(self.popen.pid)]

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.pids():
            try:
                total += process_cpu_seconds(pid)
            except OSError:  # a worker gone meanwhile
                pass
        return total

    def cpu_seconds_by_worker(self) -> dict[str, float]:
        """The CPU seconds of each worker apart, named by its role (`all/http`, `all/consumers`),
        or of the process alone when it has none."""
        workers = children_of(self.popen.pid)
        if not workers:
            return {self.name: self.cpu_seconds()}
        found: dict[str, float] = {}
        for i, pid in enumerate(workers, 1):
            name = f"{self.name}/{worker_role(pid)}"
            try:
                found[name if name not in found else f"{name}{i}"] = process_cpu_seconds(pid)
            except OSError:  # a worker gone meanwhile
                pass
        return found

    def rss_bytes(self) -> int:
        """The resident memory now (VmRSS) of the process and its workers together."""
        return sum(rss_bytes(pid, "VmRSS") for pid in self.pids())

    def peak_rss_bytes(self) -> dict[str, int]:
        workers = children_of(self.popen.pid)
        return {self.name: rss_bytes(self.popen.pid),
                **{f"{self.name}/worker{i}": rss_bytes(pid) for i, pid in enumerate(workers, 1)}}


@dataclass
class System:
    """One deployment under test: `cpms run all`, or one process per service with replicas."""

    env: dict[str, str]
    processes: list[Process] = field(default_factory=list)

    def base_url(self, service: str) -> str:
        """The service's own process, else the all-in-one one that serves it."""
        for name in (service, "all"):
            for p in self.processes:
                if p.name == name:
                    return f"http://127.0.0.1:{p.port}"
        raise KeyError(service)

    def process(self, name: str) -> Process:
        return next(p for p in self.processes if p.name == name)

    def start(self, service: str, replica: int = 0, *, env: dict[str, str] | None = None) -> None:
        """`cpms run SERVICE` on a free port; `env`: settings of this process alone, over the system's.
        Its log: /tmp/cpms-PREFIX-SERVICE-REPLICA.log (PREFIX: the run's broker prefix)."""
        env = {**self.env, **(env or {})}
        port = free_port()
        key = "CPMS_LISTEN_ADDR" if service == "all" else f"CPMS_{service.upper()}_LISTEN_ADDR"
        env[key] = f"127.0.0.1:{port}"
        log = f"/tmp/cpms-{env.get('CPMS_AMQP_PREFIX', 'bench')}-{service}-{replica}.log"
        popen = subprocess.Popen([sys.executable, "-m", "services.cli", "run", service], env=env,
                                 stdout=subprocess.DEVNULL, stderr=open(log, "w"))
        self.processes.append(Process(service if replica == 0 else f"{service}#{replica}", port, popen))

    async def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            for p in self.processes:
                while True:
                    if p.popen.poll() is not None:
                        raise RuntimeError(f"{p.name} exited with {p.popen.returncode}")
                    try:
                        async with http.get(f"http://127.0.0.1:{p.port}/readyz") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{p.name} not ready")
                    await asyncio.sleep(0.2)

    def cpu_seconds(self) -> dict[str, float]:
        return {p.name: p.cpu_seconds() for p in self.processes}

    def cpu_seconds_by_worker(self) -> dict[str, float]:
        return {name: seconds for p in self.processes for name, seconds in p.cpu_seconds_by_worker().items()}

    def peak_rss(self) -> dict[str, int]:
        return {name: rss for p in self.processes for name, rss in p.peak_rss_bytes().items()}

    def profile(self, directory: str | None, label: str) -> "Profiles":
        """py-spy sampling every CPMS process until `Profiles.stop` (nothing when `directory` is None)."""
        return Profiles.start(directory, label, self.processes)

    def stop(self, name: str | None = None) -> None:
        """SIGTERM to every process (or to the one named), and wait for their graceful shutdown."""
        stopping = [p for p in self.processes if name in (None, p.name)]
        for p in stopping:
            if p.popen.poll() is None:
                p.popen.send_signal(signal.SIGTERM)
        for p in stopping:
            try:
                p.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.popen.kill()
            self.processes.remove(p)


@dataclass
class Profiles:
    """One `py-spy record` per process, written as collapsed stacks (`DIR/LABEL-PROCESS.txt`);
    `python -m bench.profile FILE` lists its top functions."""

    recorders: list[subprocess.Popen]

    @classmethod
    def start(cls, directory: str | None, label: str, processes: list[Process]) -> "Profiles":
        if directory is None:
            return cls([])
        os.makedirs(directory, exist_ok=True)
        py_spy = os.path.join(os.path.dirname(sys.executable), "py-spy")
        return cls([
            subprocess.Popen([py_spy, "record", "--pid", str(p.popen.pid), "--subprocesses", "--format", "raw", "--rate", "200", "--nonblocking",
                              "--output", os.path.join(directory, f"{label}-{p.name}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for p in processes
        ])

    def stop(self) -> None:
        for recorder in self.recorders:
            recorder.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        for recorder in self.recorders:
            recorder.wait(timeout=60)
