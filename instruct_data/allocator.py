"""Freed memory back to the system: the C allocator's setting for a process whose memory must
stay flat with the rows (a local build's main process, from its dedupe decision on).

    from instruct_data.allocator import return_large_blocks
    return_large_blocks()   # once, before the arrays that grow with the rows are made

glibc gives a block of 128 KiB or more a mapping of its own, unmapped when it is freed. But
each time such a block is freed it raises that threshold to the block's size (up to 32 MiB):
after a build's first few temporary arrays, every array of up to 32 MiB (a column of a few
million items) comes from the heap instead, and the heap keeps the pages of what was freed
whenever anything lives above them. A build's decision makes and frees many such columns, so
the pages it had freed were much of what its main process grew by, on top of what it holds
(100k rows: 101 MiB peak, 78 MiB with the threshold fixed from the start). Fixing the
threshold (mallopt M_MMAP_THRESHOLD, which also stops it moving) returns them. Elsewhere
than glibc: nothing.

It costs a fresh mapping, zeroed page by page, for each large block: a build sets it once
its fingerprint workers are forked (dedupe/find.py), since in them, under the fixed
threshold, every batch's temporaries made one (twice the page faults of the whole build).
When it is set, malloc_trim gives back what the heap kept until then (100k rows: the main
process's peak 90.6 MiB without it, 83.4 with it).
"""

from __future__ import annotations

import ctypes
import sys

_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
LARGE = 256 * 1024  # blocks of this size or more get a mapping of their own, returned when freed
_set = False


def return_large_blocks() -> bool:
    """Fix glibc's mmap threshold at LARGE for this process (and the processes it forks from
    now on); True if it was set (now or earlier), False where there is no glibc mallopt."""
    global _set
    if _set:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # the C library this process already uses
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _set = mallopt(_M_MMAP_THRESHOLD, LARGE) == 1
    if _set:
        # And the pages the heap already keeps of blocks freed before now, back too.
        libc.malloc_trim(0)
    return _set
