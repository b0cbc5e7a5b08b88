"""Keeping freed memory: takes effect on glibc, changes no result, and stays out of the hash."""

from __future__ import annotations

import ctypes
import sys

import pytest

from trainer.config import TrainConfig, config_hash
from trainer.memory import keep_freed_memory


def glibc() -> bool:
    return sys.platform.startswith("linux") and hasattr(ctypes.CDLL(None), "gnu_get_libc_version")


@pytest.mark.skipif(not glibc(), reason="mallopt is glibc's")
def test_keep_freed_memory_takes_effect_on_glibc() -> None:
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # idempotent


def test_keep_freed_memory_is_not_part_of_the_config_hash() -> None:
    on, off = TrainConfig(model="m"), TrainConfig(model="m", keep_freed_memory=False)
    assert on.keep_freed_memory and config_hash(on) == config_hash(off)
