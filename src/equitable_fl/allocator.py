"""Keep freed memory in the process, so that a training step does not fault its buffers in again.

PyTorch's CPU tensors come from the C library's ``malloc``. glibc serves a request above its mmap
threshold with a fresh ``mmap`` and returns it with ``munmap`` on free, and it gives the top of the heap
back to the kernel once more than its trim threshold is free there. A training step allocates and
frees the same few-megabyte buffers (activations, weight gradients, convolution workspaces) every
batch, so with the defaults a step can fault thousands of zeroed pages in again. How many depends on
the process's history, since glibc raises its thresholds as it sees large frees: measured on the FedAvg
CNN at batch 32 (Intel Xeon, this project's VMs), 2,600–3,900 faults per step in a fresh process and
1.15–1.22× slower than with freed memory kept (paired, interleaved), and 470 per step in a training
round after the dataset was loaded, where the time difference is within the machine's noise
(``benchmarks/engine.py`` prints it). With the policy below, 0 faults per step in both.

:func:`retain_freed_memory` tells glibc never to use ``mmap`` for a tensor and never to trim the heap,
through ``mallopt`` (the same settings as the ``MALLOC_MMAP_MAX_`` and ``MALLOC_TRIM_THRESHOLD_``
environment variables, but applied by the job itself). It changes no arithmetic: PyTorch aligns every
CPU buffer to 64 bytes whichever way the memory was obtained, so results are bit-identical. The cost is
that a job's resident memory stays at its peak until it exits, which is what the memory check
(``compute.memory_budget_mb``) budgets for anyway. Forked worker processes inherit the setting.

The setting is the C library's, so it cannot be switched off again for part of a process;
``EQUITABLE_FL_ALLOCATOR=system`` leaves the C library's defaults alone (for comparison, or under another
allocator loaded with ``LD_PRELOAD``). Where the C library is not glibc nothing is changed, and the
job's log says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

ENV_VAR = "EQUITABLE_FL_ALLOCATOR"
CHOICES = ("retain", "system")

# mallopt parameters, from glibc's <malloc.h>
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

# glibc's own environment variables for the same settings: if the user set any, theirs win
_GLIBC_VARS = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")

_state: str | None = None


class AllocatorError(ValueError):
    """``EQUITABLE_FL_ALLOCATOR`` holds a value that is not one of :data:`CHOICES`."""


def requested() -> str:
    """The allocator policy asked for through the environment (default ``retain``)."""
    value = os.environ.get(ENV_VAR, "retain").strip().lower() or "retain"
    if value not in CHOICES:
        raise AllocatorError(
            f"{ENV_VAR}={os.environ[ENV_VAR]!r}: choose one of {CHOICES} (retain = keep freed memory in the "
            "process, the default; system = the C library's defaults)"
        )
    return value


def retain_freed_memory() -> str:
    """Apply the policy once per process; return one line for the job's log saying what holds."""
    global _state
    if _state is not None:
        return _state
    policy = requested()
    user_set = [v for v in _GLIBC_VARS if v in os.environ]
    if policy == "system":
        _state = f"allocator: C library defaults ({ENV_VAR}=system)"
    elif user_set:
        _state = f"allocator: left as set by {', '.join(user_set)}"
    elif platform.libc_ver()[0] != "glibc":
        _state = f"allocator: unchanged (C library {platform.libc_ver()[0] or 'unknown'}, not glibc)"
    else:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        # keep the largest trim threshold mallopt takes (an int): the heap is then never trimmed
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
        _state = (
            "allocator: glibc keeps freed memory (no mmap per tensor, heap never trimmed)"
            if ok
            else "allocator: glibc refused mallopt; its defaults hold"
        )
    return _state
