"""Where and how the work runs: the torch device from the ``device`` param (``auto`` prefers
CUDA, then MPS, then CPU), CPU memory reuse, and seeded deterministic kernels. torch is imported
only when one of these is used."""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .errors import UserError

if TYPE_CHECKING:
    import torch


def pick_device(name: str = "auto") -> torch.device:
    """Resolve ``auto``/``cpu``/``cuda[:N]``/``mps``; asking for an absent accelerator is an error."""
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device: {name!r} requested but CUDA is not available (use auto or cpu)")
    return torch.device(name)


def configure_process() -> None:
    """What every ``lwise-build`` command sets first (the benchmarks too): idle OpenMP threads
    sleep instead of spinning (spinning slows small-tensor work ~3x on shared cores; read when
    torch loads, so call this before importing it), and freed memory is kept for reuse."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    keep_freed_memory()


def keep_freed_memory() -> bool:
    """Have glibc keep freed memory for reuse instead of handing it back to the OS.

    Autograd on a CPU frees and reallocates the same large tensors on every step (a 224-px
    ResNet-50's activations at batch 16: tens of MB each). By default glibc maps blocks over
    32 MiB with ``mmap`` and unmaps them on free, and trims the heap, so every reuse page-faults
    again: 40% of a metamer step's CPU time went to the kernel. Here every block comes from one
    heap (no ``mmap``, one arena for all threads) that is trimmed only past 2 GiB free at its
    top, so steps after the first reuse warm pages (kernel time ~5%, a quarter less CPU per
    step, the same peak). Process-wide, set by ``configure_process`` before any thread starts;
    returns False where the C library is not glibc.
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt  # the running process's own C library
    m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8  # from <malloc.h>
    return all(mallopt(k, v) == 1 for k, v in ((m_mmap_max, 0), (m_arena_max, 1), (m_trim_threshold, 2**31 - 1)))


@contextlib.contextmanager
def deterministic(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch (restored afterwards) and use deterministic kernels (strictly on CPU)."""
    import torch

    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        _set_deterministic(True, warn_only=device.type != "cpu")
        try:
            yield
        finally:
            _set_deterministic(*before)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch's CPU math on exactly ``n`` threads (restored afterwards).

    Reductions such as a convolution's weight gradient are split by thread, so their last bits
    depend on the thread count; fixing it makes the bytes the same on any number of cores
    (docs/architecture.md, "Determinism")."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_platform(device: torch.device, threads: int) -> dict[str, Any]:
    """What a rebuild must match to give the same bytes (README, "Determinism, resumption and
    growing corpora"): torch, the CPU's architecture and vector ISA, the device (the GPU and its
    CUDA/cuDNN), and the declared thread count; the machine's core count is not part of it."""
    import torch

    out: dict[str, Any] = {"torch": torch.__version__, "machine": platform.machine(),
                           "cpu_isa": torch.backends.cpu.get_cpu_capability(), "device": device.type,
                           "threads": threads}
    if device.type == "cuda":
        out.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version())
    return out


def _set_deterministic(mode: bool, warn_only: bool) -> None:
    """``torch.use_deterministic_algorithms`` minus its ~7 s import of inductor when unused."""
    import torch

    if "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    else:  # nothing is compiled: the kernel flag is all that matters
        torch._C._set_deterministic_algorithms(mode, warn_only=warn_only)

