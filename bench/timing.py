"""Timing a child process for the benchmark programs (wall, CPU, peak memory),
and a line describing the machine. Python 3 standard library only."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Timing:
    wall: float
    cpu: float
    """user + sys seconds of the child."""
    peak_rss_mb: float
    """the child's peak resident set size, MiB (Linux reports it in KiB)."""
    proc: subprocess.CompletedProcess


def timed(cmd: list[str], check: bool = True, cwd=None, env=None, discard_stdout: bool = False) -> Timing:
    """Runs cmd to completion: its wall time, CPU time and peak memory, measured
    with wait4 on that one child. stdout (unless discarded) and stderr are
    captured as text."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL if discard_stdout else out, stderr=err, cwd=cwd, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        p.returncode = code  # reaped here; Popen must not wait again
        out.seek(0)
        err.seek(0)
        proc = subprocess.CompletedProcess(
            cmd, code, out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace")
        )
    if check and code != 0:
        sys.stderr.write(proc.stderr[-5000:])
        raise SystemExit(f"failed (exit {code}): {' '.join(cmd)}")
    return Timing(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, proc)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load() -> str:
    return "%.2f" % os.getloadavg()[0]


def machine() -> str:
    return f"{os.cpu_count()} cores, {cpu_model()}, {platform.system()} {platform.release()}"
