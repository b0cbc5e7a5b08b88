"""Inference backends behind one interface; :func:`make_backend` builds one by kind.

Each backend module is imported only when asked for, so ``import generators`` never pulls in
vllm, torch or an HTTP client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from generators.backends.base import Backend
from generators.backends.options import check_backend_options
from generators.embedded_model import resolve_model
from generators.errors import ConfigError

BackendKind = Literal["vllm", "openai", "transformers", "scripted"]


def make_backend(kind: BackendKind, *, model: str, **options: Any) -> Backend:
    """Build a backend.

    Args:
        kind: ``vllm`` | ``openai`` | ``transformers`` | ``scripted``.
        model: for ``vllm`` and ``transformers`` a model directory or the embedded model's name
            (resolved with ``options["cache_dir"]``); for ``openai`` the served model name; for
            ``scripted`` the recorded name.
        **options: the chosen backend's keyword arguments, checked against its options model
            (:mod:`generators.backends.options`); ``cache_dir`` (Path) is taken here for
            ``vllm``/``transformers``; ``openai`` needs ``base_url``; ``scripted`` ``replies``.

    Returns:
        A ready backend (close it when done).

    Raises:
        ConfigError: unknown kind, a missing option, or an unknown or ill-typed one.
        ModelError: the model cannot be resolved.
        BackendError: the backend failed to start.
    """
    options = check_backend_options(kind, options, in_process=True)
    if kind in ("vllm", "transformers"):
        cache_dir = options.pop("cache_dir", None)
        if cache_dir is None and not Path(model).is_dir():
            raise ConfigError(f"{kind}: pass cache_dir to resolve the model name {model!r}")
        model_dir = resolve_model(model, Path(cache_dir or "."))
        if kind == "vllm":
            from generators.backends.vllm import VllmBackend

            return VllmBackend(model_dir, **options)
        from generators.backends.transformers import TransformersBackend

        return TransformersBackend(model_dir, **options)
    if kind == "openai":
        from generators.backends.openai import OpenAIBackend

        if "base_url" not in options:
            raise ConfigError("openai: pass base_url")
        return OpenAIBackend(options.pop("base_url"), model=model, **options)
    if kind == "scripted":
        from generators.backends.scripted import ScriptedBackend

        if "replies" not in options:
            raise ConfigError("scripted: pass replies")
        return ScriptedBackend(options.pop("replies"), model_name=model, **options)
    raise ConfigError(f"unknown backend kind {kind!r}")


__all__ = ["Backend", "BackendKind", "make_backend"]
