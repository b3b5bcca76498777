"""How many CPU threads torch's model work may use.

torch starts one thread per core and, on a core another process is busy on, every parallel op
waits for its slowest thread. `python scripts/bench_threads.py --sizes 256 512 --rounds 3` on a
2-core machine shared with other work (tiny-sd, 2 steps, interleaved rounds), s/request with one
thread / with two: 0.31x at 256x256 and 0.32x at 512x512 as the machine was (load 3.6); 0.09x
and 0.30x with one more core kept busy. An earlier run found one thread 1.45x slower at 512x512
on a truly idle machine, and 3-15x faster with the other core busy (load 3.5-6.7). Leaving one
core to the rest of the machine (the event loop, encoding, other processes) costs little where
there are many and saves the worst case where there are few, so that is the default.
"""

from __future__ import annotations

import os


def cores() -> int:
    """The cores this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_threads(available: int) -> int:
    """One core left to the rest of the machine, at least one thread."""
    return max(1, available - 1)


def use_threads(setting: int | None) -> int:
    """Tell torch how many threads its ops use (`setting`, or the default); returns the number."""
    import torch

    threads = setting or default_threads(cores())
    torch.set_num_threads(threads)
    return threads
