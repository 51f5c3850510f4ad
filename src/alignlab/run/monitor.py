"""Watching a run while it executes: the kernel's peak memory, a heartbeat, and whether a
recorded runner process is still alive.

A runner starts the kernel as its child (jupyter_client puts it in a session of its own, so a
Ctrl-C at the terminal reaches the runner only). `RunMonitor` samples the resident memory of the
runner's child processes (the kernel and anything it starts) every `SAMPLE_S` seconds and keeps
the largest total, also taking each process's own high-water mark (`VmHWM`, Linux) so a spike
shorter than the interval still counts. Every `heartbeat_s` seconds it calls `beat(peak_mb)`,
which rewrites the run's `run.json`: a run on another machine (a Slurm job) is known to be alive
while its heartbeat is fresh.

`runner_alive(host, pid, started_at)` answers for a run recorded on this host: is that pid
still the process that started the run (a reused pid started later does not count)?
"""

from __future__ import annotations

import datetime
import os
import signal
import socket
import threading
import time
from collections.abc import Callable

import psutil

SAMPLE_S = 0.5


def heartbeat_seconds() -> float:
    """How often a running run rewrites its run.json (`$ALIGNLAB_HEARTBEAT_S`, default 30)."""
    return float(os.environ.get("ALIGNLAB_HEARTBEAT_S", "30"))


def stale_after_seconds() -> float:
    """A heartbeat older than this means the run's process is gone (four missed beats)."""
    return 4 * heartbeat_seconds() + 10


def hostname() -> str:
    return socket.gethostname()


def _high_water_mark(pid: int) -> int:
    """Peak resident bytes of one process (`VmHWM` in /proc/<pid>/status); 0 where unknown."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


class RunMonitor:
    """A daemon thread: peak memory of this process's children, and a periodic `beat`."""

    def __init__(self, beat: Callable[[float], None] | None = None, heartbeat_s: float | None = None):
        self.beat = beat
        self.heartbeat_s = heartbeat_seconds() if heartbeat_s is None else heartbeat_s
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="alignlab-run-monitor", daemon=True)

    @property
    def peak_mb(self) -> float | None:
        return round(self.peak_bytes / 2**20, 1) if self.peak_bytes else None

    def sample(self) -> None:
        total = 0
        for child in child_processes():
            try:
                total += child.memory_info().rss
                self.peak_bytes = max(self.peak_bytes, _high_water_mark(child.pid))
            except psutil.Error:  # it ended between listing and reading
                continue
        self.peak_bytes = max(self.peak_bytes, total)

    def _loop(self) -> None:
        last_beat = time.monotonic()
        while not self._stop.wait(SAMPLE_S):
            self.sample()
            if self.beat is not None and time.monotonic() - last_beat >= self.heartbeat_s:
                last_beat = time.monotonic()
                try:
                    self.beat(self.peak_mb)
                except OSError:  # a full or vanished disk must not kill the run
                    pass

    def __enter__(self) -> RunMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def child_processes() -> list[psutil.Process]:
    """This process's descendants (the kernel and whatever it started)."""
    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def signal_children(signum: int = signal.SIGTERM) -> None:
    """Send a signal to every descendant now, without waiting (safe inside a signal handler)."""
    for proc in child_processes():
        try:
            proc.send_signal(signum)
        except psutil.Error:
            pass


def stop_children(grace_s: float = 3.0) -> None:
    """SIGTERM every descendant (the kernel runs in its own session, so a Ctrl-C never reached
    it), then SIGKILL whatever is left after `grace_s` seconds."""
    procs = child_processes()
    for proc in procs:
        try:
            proc.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=grace_s)


def runner_alive(host: str | None, pid: int | None, started_at: str | None) -> bool | None:
    """True/False for a run recorded on this host; None when it ran elsewhere or nothing was
    recorded (then only its heartbeat can tell)."""
    if not host or not pid or host != hostname():
        return None
    try:
        proc = psutil.Process(int(pid))
        created = proc.create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:  # exists, but not ours to inspect
        return True
    if proc.status() == psutil.STATUS_ZOMBIE:
        return False
    if started_at:
        try:
            started = datetime.datetime.fromisoformat(started_at).timestamp()
        except ValueError:
            return True
        if created > started + 2:  # the pid was reused by a later process
            return False
    return True


def heartbeat_fresh(heartbeat_at: str | None, now: datetime.datetime | None = None) -> bool:
    """Whether an ISO time (with UTC offset) is within `stale_after_seconds` of now."""
    if not heartbeat_at:
        return False
    try:
        beat = datetime.datetime.fromisoformat(heartbeat_at)
    except ValueError:
        return False
    now = now or datetime.datetime.now().astimezone()
    return (now - beat).total_seconds() < stale_after_seconds()


def gone_reason(host: str | None, pid: int | None, started_at: str | None,
                heartbeat_at: str | None) -> str | None:
    """Why a run recorded as running is not running any more, or None if it may be: on this
    host its runner pid decides; elsewhere (or with no pid), a heartbeat no older than
    `stale_after_seconds`."""
    alive = runner_alive(host, pid, started_at)
    if alive is None:
        beat = heartbeat_at or started_at
        return None if heartbeat_fresh(beat) else f"no heartbeat from {host or 'its host'} since {beat}"
    return None if alive else f"runner process {pid} on {host} is gone"
