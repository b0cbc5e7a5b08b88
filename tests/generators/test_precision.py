"""dtype=auto: bf16 only where the CPU computes it natively (issue #20's AVX2-only EPYC)."""

from __future__ import annotations

from pathlib import Path

import pytest

from generators.backends.precision import cpu_dtype, cpu_flags, resolve_dtype

EPYC_AVX2 = "fpu vme sse sse2 avx avx2 fma bmi2 sha_ni"
SAPPHIRE_RAPIDS = "avx2 avx512f avx512bw avx512_bf16 amx_bf16 amx_tile amx_int8"
ICELAKE = "avx2 avx512f avx512bw avx512_vnni"  # AVX-512 without BF16: emulated, so fp32
COOPER_LAKE = "avx2 avx512f avx512bw avx512_bf16"


@pytest.mark.parametrize(
    ("flags", "dtype"),
    [
        (EPYC_AVX2, "float32"),
        (ICELAKE, "float32"),
        (COOPER_LAKE, "bfloat16"),
        (SAPPHIRE_RAPIDS, "bfloat16"),
        ("amx_bf16", "bfloat16"),
        ("", "float32"),
    ],
)
def test_cpu_dtype_follows_the_native_bf16_flags(tmp_path: Path, flags: str, dtype: str) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    two_cores = f"processor\t: 0\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n"
    cpuinfo.write_text(two_cores)
    assert cpu_dtype(cpu_flags(cpuinfo)) == dtype


@pytest.mark.parametrize(
    ("features", "dtype"), [("fp asimd bf16 sve", "bfloat16"), ("fp asimd", "float32")]
)
def test_arm_features_line(tmp_path: Path, features: str, dtype: str) -> None:
    arm = tmp_path / "cpuinfo"
    arm.write_text(f"processor\t: 0\nFeatures\t: {features}\n")
    assert cpu_dtype(cpu_flags(arm)) == dtype


def test_a_missing_cpuinfo_reads_no_flags(tmp_path: Path) -> None:
    assert cpu_flags(tmp_path / "absent") == frozenset()


@pytest.mark.parametrize(("gpu_bf16", "dtype"), [(True, "bfloat16"), (False, "float16")])
def test_auto_on_a_gpu_and_explicit_choices(gpu_bf16: bool, dtype: str) -> None:
    assert resolve_dtype("auto", on_gpu=True, gpu_bf16=gpu_bf16) == dtype
    for explicit in ("float32", "bfloat16", "float16"):
        assert resolve_dtype(explicit, on_gpu=False) == explicit


@pytest.mark.model
def test_transformers_backend_device(embedded_model_dir: Path) -> None:
    """`device="auto"` is the CPU where no CUDA device is visible (dtype auto picks for the CPU);
    a CUDA device that is not there is a BackendError, not a crash later in generate."""
    import torch

    from generators.backends.transformers import TransformersBackend
    from generators.errors import BackendError

    if torch.cuda.is_available():
        pytest.skip("this checks the CPU-only answers")
    backend = TransformersBackend(embedded_model_dir, device="auto")
    try:
        assert backend.model_info.dtype == resolve_dtype("auto", on_gpu=False)
        assert str(next(backend._model.parameters()).device) == "cpu"
    finally:
        backend.close()
    with pytest.raises(BackendError, match="could not load"):
        TransformersBackend(embedded_model_dir, device="cuda")
