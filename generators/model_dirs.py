"""Facts about a model directory on disk: its fingerprint and whether it serves a chat model.

A model directory is what ``save_pretrained`` writes (``config.json``, safetensors weights,
tokenizer files). Nothing here loads weights: both functions only read small files, so the
provenance of every generation can name its model cheaply.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

from generators.errors import ModelNotFoundError

# Files whose bytes define the model's behaviour without reading the weights themselves.
_FINGERPRINT_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
)


def _safetensors_header(path: Path) -> bytes:
    """Return the JSON header of a safetensors file (tensor names, dtypes, shapes, offsets)."""
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        return handle.read(length)


def fingerprint_model_dir(model_dir: Path) -> str:
    """Hash a model directory's config, tokenizer and weights index.

    The weights index is ``model.safetensors.index.json`` when present plus the header and size
    of every ``*.safetensors`` file, so a changed tensor layout or re-saved weights of another
    size change the hash, while no gigabytes are read.

    Args:
        model_dir: a directory written by ``save_pretrained``.

    Returns:
        ``"sha256:<hex>"``.

    Raises:
        ModelNotFoundError: the directory has no ``config.json``.
    """
    if not (model_dir / "config.json").is_file():
        raise ModelNotFoundError(f"{model_dir} is not a model directory (no config.json)")
    digest = hashlib.sha256()
    for name in _FINGERPRINT_FILES:
        path = model_dir / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    for weights in sorted(model_dir.glob("*.safetensors")):
        digest.update(weights.name.encode() + b"\0")
        digest.update(str(weights.stat().st_size).encode() + b"\0")
        digest.update(_safetensors_header(weights))
    return "sha256:" + digest.hexdigest()


def has_chat_template(model_dir: Path) -> bool:
    """Tell whether the directory's tokenizer carries a chat template (an instruction-tuned model).

    Args:
        model_dir: a directory written by ``save_pretrained``.

    Returns:
        True when ``chat_template.jinja`` exists or ``tokenizer_config.json`` has a
        ``chat_template`` entry.
    """
    if (model_dir / "chat_template.jinja").is_file():
        return True
    config = model_dir / "tokenizer_config.json"
    if not config.is_file():
        return False
    return bool(json.loads(config.read_text(encoding="utf-8")).get("chat_template"))
