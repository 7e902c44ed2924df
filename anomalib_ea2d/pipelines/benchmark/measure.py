"""Measurement utilities of the benchmark: wall-clock timing, peak memory, machine description.

Every study times with these functions, so their numbers are measured the same way: medians over
repetitions with their spread (:func:`summarize`), variants timed in alternation where they are
compared (:func:`interleaved`), peak resident memory of a block (:class:`PeakRSS`).
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Callback


def _read_status_kib(key: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return None
    match = re.search(rf"^{key}:\s+(\d+)\s+kB", text, flags=re.MULTILINE)
    return int(match.group(1)) if match else None


class PeakRSS:
    """Peak resident set size of this process while the ``with`` block runs, in MiB.

    On Linux the kernel's high-water mark is reset on entry (``/proc/self/clear_refs``), so the
    value is the block's own peak. Elsewhere the process-lifetime peak (``ru_maxrss``) is reported
    and :attr:`block_only` is ``False``.

    Example:
        >>> with PeakRSS() as rss:
        ...     buffer = bytearray(64 * 2**20)
        >>> rss.mib > 0
        True
    """

    def __init__(self) -> None:
        self.mib = float("nan")
        self.block_only = False

    def __enter__(self) -> PeakRSS:
        try:
            Path("/proc/self/clear_refs").write_text("5", encoding="ascii")
            self.block_only = _read_status_kib("VmHWM") is not None
        except OSError:
            self.block_only = False
        return self

    def __exit__(self, *exc: object) -> None:
        peak_kib = _read_status_kib("VmHWM") if self.block_only else None
        if peak_kib is None:
            peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        self.mib = peak_kib / 1024


def time_calls(
    function: Callable[[], object],
    repeats: int,
    warmup: int = 1,
    sync: Callable[[], object] | None = None,
) -> list[float]:
    """Wall-clock seconds of ``repeats`` calls of ``function`` after ``warmup`` untimed calls.

    Args:
        function: The call to time.
        repeats: Timed calls.
        warmup: Untimed calls before them.
        sync: Called after the warm-up and inside every timed interval, after the call (e.g.
            ``torch.cuda.synchronize``, so asynchronous device work is counted).

    Example:
        >>> samples = time_calls(lambda: sum(range(1000)), repeats=3)
        >>> len(samples), all(s >= 0 for s in samples)
        (3, True)
    """
    for _ in range(warmup):
        function()
    if sync is not None:
        sync()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        if sync is not None:
            sync()
        samples.append(time.perf_counter() - start)
    return samples


def interleaved(
    functions: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 1,
    cpu_seconds: dict[str, list[float]] | None = None,
) -> dict[str, list[float]]:
    """Time several functions in alternation, so load changes hit them alike; seconds per call, by name.

    Each round calls every function once, starting one further along each round, so that no
    function always runs first or always follows the same one.

    Args:
        functions: The calls, by name.
        repeats: Timed calls of each.
        warmup: Untimed calls of each first.
        cpu_seconds: If given, filled with each call's process CPU seconds (all threads), by name.

    Example:
        >>> samples = interleaved({"a": lambda: None, "b": lambda: None}, repeats=2)
        >>> {name: len(values) for name, values in samples.items()}
        {'a': 2, 'b': 2}
    """
    for function in functions.values():
        for _ in range(warmup):
            function()
    samples: dict[str, list[float]] = {name: [] for name in functions}
    names = list(functions)
    for round_index in range(repeats):
        start = round_index % len(names) if names else 0
        for name in names[start:] + names[:start]:
            function = functions[name]
            cpu_start = time.process_time()
            samples[name] += time_calls(function, repeats=1, warmup=0)
            if cpu_seconds is not None:
                cpu_seconds.setdefault(name, []).append(time.process_time() - cpu_start)
    return samples


def summarize(samples: Sequence[float]) -> dict[str, float]:
    """Median, minimum, maximum and relative spread (``(max - min) / median``) of timing samples.

    Example:
        >>> summarize([1.0, 2.0, 4.0])["median"]
        2.0
    """
    if not samples:
        return {"median": math.nan, "min": math.nan, "max": math.nan, "spread": math.nan}
    median = statistics.median(samples)
    low, high = min(samples), max(samples)
    return {"median": median, "min": low, "max": high, "spread": (high - low) / median if median else math.nan}


def set_threads(threads: int | None) -> int:
    """Use ``threads`` intra-op threads in torch (default: all CPUs) and return the number."""
    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    return threads


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info(threads: int | None = None) -> dict[str, Any]:
    """Machine and software description for the reports (``None`` for a package that is not installed).

    Example:
        >>> machine_info(threads=2)["threads"]
        2
    """
    cpu_model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "threads": threads or torch.get_num_threads(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
        if hasattr(os, "sysconf")
        else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        **{package: _version(package) for package in ("anomalib", "lightning", "timm")},
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "openvino": _version("openvino"),
    }


class StepTimer(Callback):
    """Lightning callback recording the wall time of each training step (batch start to batch end).

    The interval covers the pre-processing transform, forward, loss, backward, gradient clipping
    and optimizer step; data loading is outside it.

    Example:
        >>> timer = StepTimer()
        >>> timer.samples
        []
    """

    def __init__(self) -> None:
        super().__init__()
        self.samples: list[float] = []
        self._start = 0.0

    def on_train_batch_start(self, *args: object) -> None:
        """Start the step clock."""
        del args
        self._start = time.perf_counter()

    def on_train_batch_end(self, *args: object) -> None:
        """Stop the step clock."""
        del args
        self.samples.append(time.perf_counter() - self._start)


__all__ = ["PeakRSS", "StepTimer", "interleaved", "machine_info", "set_threads", "summarize", "time_calls"]
