"""What the Python benchmarks share: the machine's description and summary statistics."""
import os
import platform
import statistics


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu": model, "kernel": platform.release(),
            "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")}


def stats(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}
