"""HotSpot's own counters of a running JVM, read from its hsperfdata file (what `jcmd PerfCounter.print`
and `jstat` show), without attaching to it: JIT compilations, deoptimisations, classes loaded.

    from bench.hsperf import counters
    counters(pid)["sun.ci.totalCompiles"]

The file is `<tmpdir>/hsperfdata_<user>/<pid>`, a memory-mapped table of named longs and strings
that the JVM updates as it runs (on unless the JVM runs with -XX:-UsePerfData).
"""

from __future__ import annotations

import getpass
import struct
import tempfile
from pathlib import Path

# The counters worth a per-micro-batch difference (longs only).
JIT = (
    "sun.ci.totalCompiles",
    "sun.ci.osrCompiles",
    "sun.ci.standardCompiles",
    "sun.ci.totalInvalidates",
    "sun.ci.totalBailouts",
    "java.ci.totalTime",
    "sun.cls.loadedBytes",
    "java.cls.loadedClasses",
    "java.cls.unloadedClasses",
    "sun.rt.safepoints",
)


def _file(pid: int) -> Path:
    return Path(tempfile.gettempdir()) / f"hsperfdata_{getpass.getuser()}" / str(pid)


def counters(pid: int, names: tuple[str, ...] = JIT) -> dict[str, int]:
    """The long counters `names` of the JVM `pid` (absent ones left out)."""
    data = _file(pid).read_bytes()
    order = ">" if data[4] == 0 else "<"
    (magic,) = struct.unpack(">I", data[:4])
    if magic != 0xCAFEC0C0:
        raise ValueError(f"not an hsperfdata file: {_file(pid)}")
    entry_offset, num_entries = struct.unpack(order + "ii", data[24:32])
    wanted = set(names)
    out: dict[str, int] = {}
    offset = entry_offset
    for _ in range(num_entries):
        length, name_offset, vector_length, kind, _flags, _units, _variability, data_offset = struct.unpack(
            order + "iiibbbbi", data[offset : offset + 20]
        )
        start = offset + name_offset
        name = data[start : data.index(b"\0", start)].decode()
        if name in wanted and kind == ord("J") and vector_length == 0:
            (out[name],) = struct.unpack(order + "q", data[offset + data_offset : offset + data_offset + 8])
        offset += length
    return out
