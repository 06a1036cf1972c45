"""What every benchmark records about the process and the machine it ran on."""

from __future__ import annotations

import os
import platform
import resource


def peak_rss_bytes() -> int:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss_bytes() -> int:
    """Resident set size now (``/proc/self/statm``; 0 where it does not exist)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # pragma: no cover - non-Linux
        return 0


def blas_info() -> str:
    try:
        import numpy  # noqa: F401  (load the BLAS libraries so that they are listed)
        import scipy.linalg  # noqa: F401
        from threadpoolctl import threadpool_info

        return ", ".join(f"{i['internal_api']} {i.get('version')} ({i['num_threads']} threads, "
                         f"{i.get('architecture')})" for i in threadpool_info())
    except Exception:  # pragma: no cover - informational only
        return "unknown"


def machine_info() -> dict:
    """Cores, load average (a loaded machine skews timings: say so next to them), Python and platform."""
    try:
        load = os.getloadavg()
    except OSError:  # pragma: no cover
        load = (float("nan"),) * 3
    return {"cpus": os.cpu_count(), "load_avg_1_5_15": [round(x, 2) for x in load],
            "python": platform.python_version(), "platform": platform.platform(), "blas": blas_info()}
