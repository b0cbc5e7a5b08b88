"""Pack tokenized examples into fixed-length rows and collate rows into model-ready batches.

A row holds whole examples only (best-fit decreasing); inside a row each example keeps its own
position ids (restarting at 0) and its own segment id, from which the attention mask is built so
that no token attends across examples. Targets are shifted within each example, so the first token
of one example is never the target of the previous example's last token.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from trainer.tokenization import IGNORE_INDEX, TokenizedExample


@dataclass
class Batch:
    """A micro-batch: (rows, width) tensors plus counts.

    `segment_ids` is 0 on pad slots and 1, 2, ... for the examples of a row; `loss_mask` marks
    the positions whose next token is an assistant token of the same example; `targets` holds that
    next token there and IGNORE_INDEX elsewhere.
    """

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    segment_ids: torch.Tensor
    targets: torch.Tensor
    loss_mask: torch.Tensor
    task_types: list[list[str]]

    def to(self, device: torch.device) -> Batch:
        """The batch with its tensors on `device` (itself when they are there already)."""
        if self.input_ids.device == device:
            return self
        return Batch(
            input_ids=self.input_ids.to(device),
            position_ids=self.position_ids.to(device),
            segment_ids=self.segment_ids.to(device),
            targets=self.targets.to(device),
            loss_mask=self.loss_mask.to(device),
            task_types=self.task_types,
        )

    @property
    def n_real_tokens(self) -> int:
        """Tokens that are not padding."""
        return int((self.segment_ids > 0).sum())

    @property
    def n_slots(self) -> int:
        """Token slots in the batch, real or pad."""
        return self.segment_ids.numel()

    @property
    def n_supervised(self) -> int:
        """Positions that carry a loss."""
        return int(self.loss_mask.sum())


def best_fit_decreasing(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Assign items to as few bins as best-fit decreasing finds.

    Items are placed longest first, each into the open bin whose free space is smallest but
    still enough; ties go to the earliest bin, so the result is deterministic.

    Args:
        lengths: Item sizes, each <= capacity.
        capacity: Bin size.

    Returns:
        Bins as lists of item indices, in the order the bins were opened.

    Raises:
        ValueError: An item is larger than the capacity.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (free space, bin index), kept sorted
    for item in order:
        size = lengths[item]
        if size > capacity:
            raise ValueError(f"item {item} has length {size} > capacity {capacity}")
        slot = bisect.bisect_left(free, (size, -1))
        if slot == len(free):
            bins.append([item])
            bisect.insort(free, (capacity - size, len(bins) - 1))
            continue
        space, index = free.pop(slot)
        bins[index].append(item)
        bisect.insort(free, (space - size, index))
    return bins


def _fullest_subset(items: Sequence[int], lengths: Sequence[int], room: int) -> list[int]:
    """The subset of items with the largest total length that fits in `room` (0/1 knapsack)."""
    reach: dict[int, tuple[int, int] | None] = {0: None}  # sum -> (item, previous sum)
    for item in items:
        size = lengths[item]
        for total in list(reach):
            new = total + size
            if new <= room and new not in reach:
                reach[new] = (item, total)
        if room in reach:
            break
    chosen, total = [], max(reach)
    while reach[total] is not None:
        item, total = reach[total]  # type: ignore[misc]
        chosen.append(item)
    return chosen


def repack_slack(
    bins: list[list[int]], lengths: Sequence[int], capacity: int, fill: float = 0.99
) -> list[list[int]]:
    """Repack the items of under-filled bins, each new bin filled as full as a subset can be.

    Best-fit decreasing leaves a tail of bins with gaps no remaining item fits; pooling those
    bins and filling each anew with its largest item plus the fullest subset of the rest (an
    exact subset sum) usually saves a bin there. Kept only if it does not need more bins.
    """
    full = [b for b in bins if sum(lengths[i] for i in b) >= fill * capacity]
    pool = sorted(
        (i for b in bins if sum(lengths[j] for j in b) < fill * capacity for i in b),
        key=lambda i: (-lengths[i], i),
    )
    slack_bins = len(bins) - len(full)
    repacked: list[list[int]] = []
    while pool:
        first, rest = pool[0], pool[1:]
        chosen = _fullest_subset(rest, lengths, capacity - lengths[first])
        repacked.append([first, *chosen])
        taken = {first, *chosen}
        pool = [i for i in pool if i not in taken]
    return full + repacked if len(repacked) <= slack_bins else bins


def pack_rows(examples: Sequence[TokenizedExample], capacity: int) -> list[list[int]]:
    """Pack examples (by index) into rows of at most `capacity` tokens.

    Best-fit decreasing, then an exact-fill repack of the under-filled tail.
    """
    lengths = [len(e.input_ids) for e in examples]
    return repack_slack(best_fit_decreasing(lengths, capacity), lengths, capacity)


def single_rows(examples: Sequence[TokenizedExample]) -> list[list[int]]:
    """One example per row: the padded layout."""
    return [[i] for i in range(len(examples))]


def packing_efficiency(
    examples: Sequence[TokenizedExample], rows: Sequence[Sequence[int]], capacity: int
) -> float:
    """Real tokens over token slots when every row is `capacity` long."""
    real = sum(len(examples[i].input_ids) for row in rows for i in row)
    return real / (len(rows) * capacity) if rows else 0.0


def _shifted(example: TokenizedExample) -> tuple[list[int], list[bool]]:
    """Next-token targets within one example; the last position predicts nothing."""
    ids, mask = example.input_ids, example.assistant_mask
    targets = [ids[t + 1] if mask[t + 1] else IGNORE_INDEX for t in range(len(ids) - 1)]
    return [*targets, IGNORE_INDEX], [*mask[1:], False]


def collate(
    examples: Sequence[TokenizedExample],
    rows: Sequence[Sequence[int]],
    *,
    pad_id: int,
    padding_side: str = "right",
) -> Batch:
    """Lay rows of examples out as tensors, as wide as the fullest row.

    Args:
        examples: All tokenized examples the row indices refer to.
        rows: Example indices per row.
        pad_id: Token id written into pad slots (never attended to or predicted).
        padding_side: "right" or "left".

    Returns:
        The batch.
    """
    width = max(sum(len(examples[i].input_ids) for i in row) for row in rows)
    shape = (len(rows), width)
    input_ids = torch.full(shape, pad_id, dtype=torch.long)
    position_ids = torch.zeros(shape, dtype=torch.long)
    segment_ids = torch.zeros(shape, dtype=torch.long)
    targets = torch.full(shape, IGNORE_INDEX, dtype=torch.long)
    loss_mask = torch.zeros(shape, dtype=torch.bool)
    task_types: list[list[str]] = []
    for r, row in enumerate(rows):
        used = sum(len(examples[i].input_ids) for i in row)
        cursor = width - used if padding_side == "left" else 0
        task_types.append([examples[i].task_type for i in row])
        for segment, index in enumerate(row, start=1):
            example = examples[index]
            n = len(example.input_ids)
            row_targets, row_mask = _shifted(example)
            span = slice(cursor, cursor + n)
            input_ids[r, span] = torch.tensor(example.input_ids)
            position_ids[r, span] = torch.arange(n)
            segment_ids[r, span] = segment
            targets[r, span] = torch.tensor(row_targets)
            loss_mask[r, span] = torch.tensor(row_mask)
            cursor += n
    return Batch(input_ids, position_ids, segment_ids, targets, loss_mask, task_types)
