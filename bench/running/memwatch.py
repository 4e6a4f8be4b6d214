"""Evidence for an out-of-memory label. A worker killed by SIGKILL was out of memory only when
something says so: the kernel's OOM killer counter of its cgroup went up while it ran, or memory
was nearly exhausted (system-wide or against the cgroup's limit) at the last sample before it died.
A plain `kill -9` with memory to spare is `failed`, and the record says what was measured."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024
NEAR_FRACTION = 0.95  # memory in use at death, of what was there to use, that counts as exhausted


def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _kb_field(text: str | None, name: str) -> int | None:
    m = re.search(rf"^{name}:\s+(\d+) kB", text or "", re.MULTILINE)
    return int(m.group(1)) * 1024 if m else None


def cgroup_memory_dir(pid: int) -> Path | None:
    """The memory cgroup folder of `pid` (cgroup v1 'memory' controller, or the v2 unified one)."""
    for line in (_read(f"/proc/{pid}/cgroup") or "").splitlines():
        _, controllers, path = line.split(":", 2)
        for root, match in (("/sys/fs/cgroup/memory", "memory" in controllers.split(",")),
                            ("/sys/fs/cgroup", controllers == "")):
            folder = Path(root + path)
            if match and folder.is_dir() and ((folder / "memory.oom_control").exists()
                                              or (folder / "memory.events").exists()):
                return folder
    return None


def oom_kills(folder: Path | None) -> int | None:
    """The cgroup's count of OOM-killer kills (v1 memory.oom_control, v2 memory.events)."""
    if folder is None:
        return None
    for name in ("memory.events", "memory.oom_control"):
        m = re.search(r"^oom_kill (\d+)", _read(folder / name) or "", re.MULTILINE)
        if m:
            return int(m.group(1))
    return None


def cgroup_limit_and_usage(folder: Path | None) -> tuple[int | None, int | None]:
    if folder is None:
        return None, None
    for limit_name, usage_name in (("memory.max", "memory.current"),
                                   ("memory.limit_in_bytes", "memory.usage_in_bytes")):
        limit, usage = _read(folder / limit_name), _read(folder / usage_name)
        if limit is not None and usage is not None:
            limit = limit.strip()
            if limit == "max" or int(limit) >= 1 << 60:  # no limit set
                return None, int(usage)
            return int(limit), int(usage)
    return None, None


@dataclass
class MemoryWatch:
    """Sampled by the parent while its worker runs (every few hundred ms)."""

    pid: int
    cgroup: Path | None = None
    kills_at_start: int | None = None
    peak_rss: int = 0
    last_rss: int | None = None
    last_available: int | None = None
    total: int | None = None
    near_limit: bool = False

    @classmethod
    def start(cls, pid: int) -> "MemoryWatch":
        folder = cgroup_memory_dir(pid)
        watch = cls(pid, folder, oom_kills(folder))
        watch.sample()
        return watch

    def sample(self) -> None:
        rss = _kb_field(_read(f"/proc/{self.pid}/status"), "VmRSS")
        if rss is None:  # gone already
            return
        meminfo = _read("/proc/meminfo")
        self.last_rss, self.peak_rss = rss, max(self.peak_rss, rss)
        self.last_available, self.total = _kb_field(meminfo, "MemAvailable"), _kb_field(meminfo, "MemTotal")
        limit, usage = cgroup_limit_and_usage(self.cgroup)
        system_full = (self.last_available is not None and self.total
                       and self.total - self.last_available >= NEAR_FRACTION * self.total)
        cgroup_full = bool(limit and usage and usage >= NEAR_FRACTION * limit)
        self.near_limit = bool(system_full or cgroup_full)

    def killed_verdict(self, code: int) -> tuple[str, str]:
        """(status, why) for a worker that died of SIGKILL without writing its record."""
        kills = oom_kills(self.cgroup)
        peak = f"peak RSS {self.peak_rss / MB:,.0f} MB"
        if kills is not None and self.kills_at_start is not None and kills > self.kills_at_start:
            return "oom", (f"worker killed by SIGKILL (exit {code}) by the kernel's OOM killer (its cgroup's "
                           f"oom_kill count went from {self.kills_at_start} to {kills}); {peak}")
        if self.near_limit:
            avail = f"{self.last_available / MB:,.0f} MB" if self.last_available is not None else "?"
            return "oom", (f"worker killed by SIGKILL (exit {code}) with memory nearly exhausted "
                           f"({peak}, {avail} available at the last sample): out of memory")
        avail = f", {self.last_available / MB:,.0f} MB still available" if self.last_available is not None else ""
        return "failed", (f"worker killed by SIGKILL (exit {code}); not out of memory ({peak}{avail}, no OOM kill "
                          "counted): killed by another process or a time limit")
