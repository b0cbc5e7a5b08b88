"""Dataset verification, chat-template labels and packing layout."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests.trainer.builders import (
    BOS_TEMPLATE,
    BROKEN_TEMPLATE,
    build_tokenizer,
    chat_row,
    corpus_for,
    write_dataset_version,
)
from trainer.dataset import ChatExample, load_dataset_version, read_examples
from trainer.errors import ChatTemplateError, DatasetIntegrityError, TruncationError
from trainer.packing import (
    best_fit_decreasing,
    collate,
    pack_rows,
    packing_efficiency,
    repack_slack,
)
from trainer.tokenization import IGNORE_INDEX, ChatTokenizer, tokenize_split


def as_example(row: dict[str, Any]) -> ChatExample:
    return ChatExample(row["id"], row["task_id"], row["task_type"], row["messages"])


def supervised_text(tokenizer: Any, row: dict[str, Any]) -> str:
    tokenized = ChatTokenizer(tokenizer).tokenize(as_example(row))
    ids = [t for t, m in zip(tokenized.input_ids, tokenized.assistant_mask, strict=True) if m]
    return tokenizer.decode(ids)


def test_dataset_version_loads_and_verifies(dataset_dir: Path) -> None:
    dataset = load_dataset_version(dataset_dir)
    assert (dataset.name, dataset.version, len(dataset.train), len(dataset.validation)) == (
        "toy",
        1,
        12,
        4,
    )
    assert dataset.train[0].messages[-1]["role"] == "assistant"


@pytest.mark.parametrize("victim", ["train.messages.jsonl", "train.alpaca.jsonl", "README.md"])
def test_any_changed_file_is_refused(dataset_dir: Path, victim: str) -> None:
    path = dataset_dir / victim
    data = bytearray(path.read_bytes())
    data[3] ^= 0x01  # same size, other bytes
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetIntegrityError, match=victim):
        load_dataset_version(dataset_dir)


def test_missing_file_and_bad_line_are_refused(dataset_dir: Path, tmp_path: Path) -> None:
    (dataset_dir / "README.md").unlink()
    with pytest.raises(DatasetIntegrityError, match="missing"):
        load_dataset_version(dataset_dir)
    bad = write_dataset_version(tmp_path / "b", "bad", 1, [chat_row(0, "q", "a")])
    manifest = json.loads((bad / "manifest.json").read_text())
    (bad / "train.messages.jsonl").write_text('{"id": 1}\n')
    import hashlib

    data = (bad / "train.messages.jsonl").read_bytes()
    manifest["files"]["train.messages.jsonl"] |= {
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
    }
    (bad / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetIntegrityError, match="line 1"):
        load_dataset_version(bad)


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\x85", "\x1c", "\r"])
def test_unicode_line_breaks_stay_inside_their_example(tmp_path: Path, char: str) -> None:
    rows = [chat_row(0, f"{char}q", f"a{char}b"), chat_row(1, "q2", f"a2{char}")]
    dataset = load_dataset_version(write_dataset_version(tmp_path, "u", 1, rows))
    assert [[m["content"] for m in e.messages] for e in dataset.train] == [
        [m["content"] for m in r["messages"]] for r in rows
    ]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b'{"id": "x", "messages": [{"role": "user", "content": "\\udc00"}]}', "surrogate"),
        (b'{"id": "x", "messages": NaN}', "invalid JSON"),
        (b'["x"]', "JSON object"),
        (b'{"id": "x", "messages": [{"role": "assistant", "content": 3}]}', "string"),
    ],
)
def test_a_bad_split_line_names_its_number(tmp_path: Path, line: bytes, problem: str) -> None:
    directory = write_dataset_version(tmp_path, "bad", 1, [chat_row(0, "q", "a")])
    path = directory / "train.messages.jsonl"
    path.write_bytes(path.read_bytes() + b"\n" + line + b"\n")
    with pytest.raises(DatasetIntegrityError, match=f"line 3: .*{problem}"):
        read_examples(path)


def test_no_validation_file_is_an_empty_split(tmp_path: Path) -> None:
    directory = write_dataset_version(tmp_path, "nv", 2, [chat_row(0, "q", "a")])
    assert load_dataset_version(directory).validation == []


def test_labels_cover_every_assistant_turn_only(tokenizer: Any) -> None:
    row = chat_row(
        0,
        "Echo the word apple.",
        "apple apple",
        system="Be brief.",
        extra_turns=[("Echo the word river.", "river river")],
    )
    text = supervised_text(tokenizer, row)
    assert text == "apple apple<|im_end|>river river<|im_end|>"


@pytest.mark.parametrize("pad", ["<|im_end|>", None], ids=["pad-is-eos", "no-pad"])
def test_eos_is_supervised_whatever_the_pad(rows: list[dict[str, Any]], pad: str | None) -> None:
    tokenizer = build_tokenizer(corpus_for(rows), pad=pad)
    example = ChatTokenizer(tokenizer).tokenize(as_example(rows[1]))
    last = max(i for i, m in enumerate(example.assistant_mask) if m)
    assert example.input_ids[last] == tokenizer.eos_token_id
    batch = collate([example], [[0]], pad_id=tokenizer.eos_token_id)
    assert tokenizer.eos_token_id in batch.targets[batch.loss_mask].tolist()


def test_eos_is_added_when_the_template_does_not_write_it(rows: list[dict[str, Any]]) -> None:
    tokenizer = build_tokenizer(corpus_for(rows), eos="</s>")
    text = supervised_text(tokenizer, rows[1])
    assert text.startswith("river river<|im_end|>") and text.endswith("</s>")


def test_exactly_one_bos(rows: list[dict[str, Any]]) -> None:
    tokenizer = build_tokenizer(
        corpus_for(rows), template=BOS_TEMPLATE, bos="<s>", eos="</s>", add_bos=True
    )
    example = ChatTokenizer(tokenizer).tokenize(as_example(rows[1]))
    assert example.input_ids[0] == tokenizer.bos_token_id
    assert example.input_ids.count(tokenizer.bos_token_id) == 1
    assert supervised_text(tokenizer, rows[1]) == " river river</s>"


def test_template_that_breaks_the_prefix_fails_loudly(rows: list[dict[str, Any]]) -> None:
    tokenizer = build_tokenizer(corpus_for(rows), template=BROKEN_TEMPLATE)
    with pytest.raises(ChatTemplateError, match="prefix"):
        ChatTokenizer(tokenizer).tokenize(as_example(rows[0]))


def test_truncation_is_counted_and_aborts_above_threshold(
    tokenizer: Any, rows: list[dict[str, Any]]
) -> None:
    chat = ChatTokenizer(tokenizer)
    long_row = chat_row(99, "Echo " * 30, "done")
    examples = [as_example(r) for r in [*rows[:4], long_row]]
    split = tokenize_split(chat, examples, max_length=40, max_truncated_fraction=0.5)
    assert split.dropped_ids == ["task-99:0"] and len(split.examples) == 4
    assert split.report()["dropped_no_supervision"] == 1
    with pytest.raises(TruncationError, match="1 of 5"):
        tokenize_split(chat, examples, max_length=40, max_truncated_fraction=0.1)


def test_best_fit_decreasing_places_every_item_once() -> None:
    rng = random.Random(0)
    lengths = [rng.randint(1, 100) for _ in range(300)]
    bins = best_fit_decreasing(lengths, 128)
    assert sorted(i for b in bins for i in b) == list(range(300))
    assert all(sum(lengths[i] for i in b) <= 128 for b in bins)
    assert len(bins) <= -(-sum(lengths) // 128) * 1.05 + 1
    assert bins == best_fit_decreasing(lengths, 128)
    with pytest.raises(ValueError):
        best_fit_decreasing([129], 128)


def test_repacking_the_slack_tail_saves_bins() -> None:
    rng = random.Random(3)
    lengths = [rng.randint(40, 300) for _ in range(200)]
    bfd = best_fit_decreasing(lengths, 512)
    repacked = repack_slack(bfd, lengths, 512)
    assert sorted(i for b in repacked for i in b) == list(range(200))
    assert all(sum(lengths[i] for i in b) <= 512 for b in repacked)
    assert len(repacked) <= len(bfd)
    assert len(repacked) <= -(-sum(lengths) // 512) + 1


def test_packed_row_layout(tokenizer: Any, rows: list[dict[str, Any]]) -> None:
    chat = ChatTokenizer(tokenizer)
    examples = [chat.tokenize(as_example(r)) for r in rows[:5]]
    rows_ = pack_rows(examples, 64)
    assert 0 < packing_efficiency(examples, rows_, 64) <= 1
    batch = collate(examples, [[0, 1, 2]], pad_id=3)
    starts, cursor = [], 0
    for i in range(3):
        n = len(examples[i].input_ids)
        # Position ids restart at 0 for each example.
        assert batch.position_ids[0, cursor : cursor + n].tolist() == list(range(n))
        starts.append(cursor)
        cursor += n
    for start in starts[1:]:
        # The first token of an example is never the target of the previous example's last one.
        assert not batch.loss_mask[0, start - 1]
        assert batch.targets[0, start - 1] == IGNORE_INDEX
    assert batch.n_real_tokens == cursor
    supervised = sum(e.n_supervised for e in examples[:3])
    assert batch.n_supervised == supervised
