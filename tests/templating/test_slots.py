"""The one renderer: slots found once, values copied verbatim, bad templates named."""

from __future__ import annotations

import pytest

from templating import SlotError, fill_slots, slot_names
from tests.templating.hostile_values import HOSTILE_VALUES, render_by_split

TEXT = "A: ${a}\nB: ${b} and $c.\nCost: $$5"


def test_slots_and_literal_dollars() -> None:
    assert slot_names(TEXT) == {"a", "b", "c"}
    assert fill_slots(TEXT, {"a": "1", "b": "2", "c": "3"}) == "A: 1\nB: 2 and 3.\nCost: $5"


@pytest.mark.parametrize("value", HOSTILE_VALUES)
@pytest.mark.parametrize("slot", ["a", "b"])
def test_values_are_inserted_verbatim_and_never_reread(value: str, slot: str) -> None:
    text = "first ${a} middle ${b} last"
    values = {"a": "x", "b": "y", slot: f"see {value} here"}
    rendered = fill_slots(text, values)
    assert rendered == render_by_split(text, values)
    assert rendered.count(f"see {value} here") == 1


def test_each_value_may_name_the_other_slots() -> None:
    values = {"a": "${b} $b {b}", "b": "${a} \\1"}
    assert fill_slots("${a}|${b}", values) == "${b} $b {b}|${a} \\1"


def test_missing_and_unexpected_values_are_named() -> None:
    with pytest.raises(SlotError) as info:
        fill_slots("${a} ${b}", {"a": "1", "z": "2"})
    assert info.value.missing == {"b"} and info.value.unexpected == {"z"}


@pytest.mark.parametrize(
    "text,where", [("price $5", "line 1, column 7"), ("ok\n  $ alone", "line 2, column 3")]
)
def test_a_stray_dollar_in_the_template_is_located(text: str, where: str) -> None:
    with pytest.raises(SlotError, match=where):
        slot_names(text)
