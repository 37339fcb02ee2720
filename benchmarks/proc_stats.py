"""What /proc says about a process tree: memory by kind, CPU steal (bench_node.py's probes)."""
from pathlib import Path
from typing import List, Optional


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """Resident memory (KiB): VmRSS in all, RssAnon the process's own (heap, Python objects,
    LevelDB's caches), RssFile file pages mapped in (libraries, LevelDB's mmapped tables)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # exited meanwhile
        return 0
    for line in status.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def process_tree(pid: int) -> List[int]:
    """`pid` and its descendants (the builder process of `--builder process`)."""
    pids, i = [pid], 0
    while i < len(pids):
        for task in Path(f"/proc/{pids[i]}/task").glob("*"):
            try:
                pids += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
        i += 1
    return pids


def memory_mib(pid: int) -> dict:
    """The node's memory, its builder process included."""
    pids = process_tree(pid)
    return {key: round(sum(rss_kib(p, field) for p in pids) / 1024, 1)
            for key, field in (("rss", "VmRSS"), ("anon", "RssAnon"), ("file", "RssFile"))}


def drift_mib_per_min(samples: List[dict], key: str, minutes: float = 5.0) -> Optional[float]:
    """Least-squares slope of the last `minutes` of 10 s samples (None if too few)."""
    tail = samples[-int(minutes * 6):]
    if len(tail) < 6:
        return None
    xs = [i / 6 for i in range(len(tail))]
    mx, my = sum(xs) / len(xs), sum(s[key] for s in tail) / len(tail)
    slope = sum((x - mx) * (s[key] - my) for x, s in zip(xs, tail)) / sum((x - mx) ** 2 for x in xs)
    return round(slope, 2)


def cpu_ticks() -> tuple:
    """(steal, total) jiffies of all CPUs (/proc/stat): how much the hypervisor took."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return fields[7], sum(fields)


def mapped_files(pid: int, suffix: str = ".ldb") -> int:
    """How many distinct files ending in `suffix` the process has memory-mapped (LevelDB's
    open tables)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return 0
    return len({line.split()[-1] for line in maps.splitlines() if line.endswith(suffix)})
