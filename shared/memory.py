"""Resident memory (RSS) of this process: the peak so far, and the peak over a block of code.

Benchmarks and the month-3 reader state memory figures; they all measure them here, the same way.
"""

from __future__ import annotations

import resource
import threading
from pathlib import Path

MIB = 1024 * 1024


def peak_rss_bytes() -> int:
    """This process's peak resident memory so far.

    Linux's VmHWM belongs to this process image. getrusage's ru_maxrss (the fallback elsewhere)
    also counts a parent's peak from before exec, which overstates a small child of a big parent."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # the file says kB, meaning KiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss_bytes() -> int:
    """This process's resident memory now."""
    import psutil

    return psutil.Process().memory_info().rss


class PeakRSS:
    """The largest RSS seen while the `with` block runs (`peak`, bytes), sampled every `interval`
    seconds by a background thread: VmHWM cannot be reset, so a phase's own peak is sampled."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval, self.peak = interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self.peak = rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())
