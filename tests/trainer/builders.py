"""Builders for trainer tests: the exported dataset layout, a small tokenizer, a tiny Llama.

Nothing here touches a hub: the tokenizer is trained on the spot from the test's own texts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dataformats.jsonl import encode_jsonl_line

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Llama-2 style: the template writes BOS itself while the tokenizer also adds one by habit.
BOS_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'assistant' %}"
    "{{ ' ' + message['content'] + eos_token }}{% else %}{{ '[INST] ' + message['content'] "
    "+ ' [/INST]' }}{% endif %}{% endfor %}"
)
# Breaks the prefix property: the generation prompt differs from how a finished turn renders.
BROKEN_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + ':' + message['content']"
    " + '<|im_end|>' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>", "<s>", "</s>"]


def chat_row(
    index: int,
    user: str,
    assistant: str,
    task_type: str = "generation",
    extra_turns: Sequence[tuple[str, str]] = (),
    system: str | None = None,
) -> dict[str, Any]:
    """One line of a `*.messages.jsonl` file."""
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    for u, a in extra_turns:
        messages += [{"role": "user", "content": u}, {"role": "assistant", "content": a}]
    return {
        "id": f"task-{index}:0",
        "task_id": f"task-{index}",
        "task_type": task_type,
        "messages": messages,
    }


def write_dataset_version(
    root: Path,
    name: str,
    version: int,
    train: Sequence[dict[str, Any]],
    validation: Sequence[dict[str, Any]] = (),
) -> Path:
    """Write `<root>/<name>/v<version>/` exactly as the service's export lays it out."""
    directory = root / name / f"v{version}"
    directory.mkdir(parents=True)
    files: dict[str, bytes] = {
        "train.messages.jsonl": b"".join(map(encode_jsonl_line, train)),
        "train.alpaca.jsonl": b"".join(
            encode_jsonl_line(
                {
                    "instruction": r["messages"][0]["content"],
                    "input": "",
                    "output": r["messages"][-1]["content"],
                }
            )
            for r in train
        ),
        "README.md": f"# {name} v{version}\n".encode(),
    }
    if validation:
        files["validation.messages.jsonl"] = b"".join(map(encode_jsonl_line, validation))
    listing = {}
    for file_name, data in files.items():
        (directory / file_name).write_bytes(data)
        rows = data.count(b"\n") if file_name.endswith(".jsonl") else 0
        listing[file_name] = {
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "rows": rows,
        }
    content_hash = hashlib.sha256(
        "".join(f"{k}:{v['sha256']}" for k, v in sorted(listing.items())).encode()
    ).hexdigest()
    manifest = {
        "dataset": name,
        "version": version,
        "content_hash": content_hash,
        "spec": {"splits": {"train": 0.9, "validation": 0.1}},
        "spec_hash": "0" * 64,
        "counts": {"train": len(train), "validation": len(validation)},
        "lineage": {"runs": []},
        "files": listing,
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return directory


def build_tokenizer(
    corpus: Sequence[str],
    *,
    template: str = CHATML,
    pad: str | None = "<|pad|>",
    eos: str = "<|im_end|>",
    bos: str | None = None,
    add_bos: bool = False,
) -> Any:
    """Train a tiny byte-level BPE on `corpus` and wrap it as a transformers tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIAL, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    backend.train_from_iterator(corpus, trainer=trainer)
    if add_bos and bos:
        bos_id = backend.token_to_id(bos)
        backend.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, bos_id)]
        )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token=eos, pad_token=pad, bos_token=bos, unk_token=None
    )
    tokenizer.chat_template = template
    return tokenizer


def build_tiny_model(tokenizer: Any, directory: Path, *, seed: int = 0) -> Path:
    """A randomly initialised 2-layer Llama (hidden 64, 4 heads) saved with its tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    model = LlamaForCausalLM(config).to(torch.float32)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def toy_rows(n: int = 12) -> list[dict[str, Any]]:
    """A tiny memorisable task mix: colours (classification) and echo (generation)."""
    colours = ["red", "blue", "green", "gold"]
    words = ["apple", "river", "stone", "cloud", "tiger", "piano", "maple", "ocean"]
    rows = []
    for i in range(n):
        if i % 2:
            word = words[i % len(words)]
            rows.append(chat_row(i, f"Echo the word {word}.", f"{word} {word}"))
        else:
            rows.append(
                chat_row(
                    i, f"Which colour is number {i}?", colours[i % 4], task_type="classification"
                )
            )
    return rows


def corpus_for(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Texts to train the test tokenizer on."""
    texts = [m["content"] for r in rows for m in r["messages"]]
    return [*texts, "user assistant system", "[INST] [/INST]"] * 3
