"""The real embedded tokenizer (SmolLM2, pad == EOS) on the real seed tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataformats.jsonl import read_jsonl
from tests.conftest import shared_data
from trainer.dataset import ChatExample
from trainer.tokenization import ChatTokenizer, tokenize_split

MODEL_DIR = Path(__file__).resolve().parents[2] / "data" / "model-cache" / "smollm2-135m"

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def smollm_tokenizer() -> object:
    if not (MODEL_DIR / "tokenizer.json").is_file():
        pytest.skip(f"the embedded model is not prepared under {MODEL_DIR}")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(MODEL_DIR, local_files_only=True)


def seed_examples() -> list[ChatExample]:
    examples = []
    for _, task in read_jsonl(shared_data("self_instruct_seed_tasks.jsonl")):
        instance = task["instances"][0]
        user = (task["instruction"] + "\n\n" + instance["input"]).strip()
        examples.append(
            ChatExample(
                task["id"],
                task["id"],
                "generation",
                [
                    {"role": "user", "content": user},
                    {"role": "assistant", "content": instance["output"].strip()},
                ],
            )
        )
    return examples


def test_seed_tasks_label_exactly_the_answers(smollm_tokenizer: object) -> None:
    tokenizer = smollm_tokenizer
    assert tokenizer.pad_token_id == tokenizer.eos_token_id  # the pad == EOS case, for real
    examples = seed_examples()
    split = tokenize_split(ChatTokenizer(tokenizer), examples, max_length=4096)
    assert len(split.examples) == 175 and not split.truncated_ids
    for example, tokenized in zip(examples, split.examples, strict=True):
        ids = [t for t, m in zip(tokenized.input_ids, tokenized.assistant_mask, strict=True) if m]
        assert ids[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(ids) == example.messages[-1]["content"] + "<|im_end|>"
