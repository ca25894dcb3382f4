"""The training process keeps freed memory: a buffer freed and allocated again faults no pages in."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from equitable_fl import allocator

# a 64 MiB tensor: above glibc's largest dynamic mmap threshold (32 MiB), so under the C library's
# defaults every allocation is a fresh mmap whose pages fault in again when written
PROBE = """
import resource, sys, torch
from equitable_fl.allocator import retain_freed_memory
print(retain_freed_memory(), file=sys.stderr)
def fill():
    t = torch.empty(16 * 2**20)
    t.fill_(1.0)
for _ in range(20):  # the heap settles after a few rounds of growth
    fill()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    fill()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

needs_glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the policy is glibc's mallopt")


def _faults(policy: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env[allocator.ENV_VAR] = policy
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return int(done.stdout.strip()), done.stderr.strip()


@needs_glibc
def test_retained_memory_is_reused_without_faults() -> None:
    retained, line = _faults("retain")
    system, system_line = _faults("system")
    pages = 64 * 2**20 // 4096
    assert "keeps freed memory" in line and "C library defaults" in system_line
    assert system >= 5 * pages * 0.9  # every fill faulted its 16,384 pages in again
    assert retained < pages * 0.1  # the freed buffer came back with its pages


def test_a_bad_policy_names_the_variable_value_and_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(allocator.ENV_VAR, "jemalloc")
    with pytest.raises(allocator.AllocatorError, match=r"EQUITABLE_FL_ALLOCATOR='jemalloc'.*retain.*system"):
        allocator.requested()


def test_glibc_variables_set_by_the_user_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "_state", None)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    monkeypatch.delenv(allocator.ENV_VAR, raising=False)
    assert allocator.retain_freed_memory() == "allocator: left as set by MALLOC_TRIM_THRESHOLD_"
