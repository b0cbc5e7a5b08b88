"""The dataset card: README.md in the Hugging Face style (YAML front matter, then prose).

The card holds no wall-clock time, so it is byte-identical for the same data and version.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from service.export.examples import SPLITS


def code_span(text: str) -> str:
    """`text` as one CommonMark code span, whatever it holds (Markdown, HTML, backticks).

    Names in a card (seed sets, eval sets, models, templates, scorers) are written by users:
    outside a code span, `![x](http://host/)` would load a remote image wherever the card is
    shown, `[login](https://...)` would be a link. The fence is one backtick longer than the
    longest run inside (CommonMark 0.31, section 6.1, "Code spans"), padded with a space when
    the text starts or ends with a backtick; line breaks become spaces (a blank line would end
    the paragraph, and with it the span).
    """
    flat = " ".join(text.splitlines()) or " "
    fence = "`" * (max((len(run) for run in re.findall(r"`+", flat)), default=0) + 1)
    pad = " " if flat.startswith("`") or flat.endswith("`") else ""
    return f"{fence}{pad}{flat}{pad}{fence}"


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < limit:
            return label
    return "100K<n<1M" if n < 1_000_000 else "n>1M"


# One builder per card: `datasets` infers the packaged builder (json or parquet) from the data
# files of the card's first config and reads every other config with it (datasets 5.2,
# `LocalDatasetModuleFactory.get_module`), so a card whose configs mix JSONL and Parquet
# cannot load them all. The configs therefore declare one file type; Parquet is preferred
# because it carries the schema (an empty split still has its columns) and is the Hub's own.
CONFIG_FORMATS = ("messages", "alpaca")


def config_extension(files: list[str]) -> str:
    """The file type the card's configs declare: `parquet` when the version has it, else `jsonl`."""
    return "parquet" if any(name.endswith(".parquet") for name in files) else "jsonl"


def card_configs(files: list[str], examples_by_split: dict[str, int]) -> list[dict[str, Any]]:
    """The `configs:` entries of the card: one per written format, all of one file type.

    A split without examples is left out: `datasets` builds no empty split ("Instruction
    'validation' corresponds to no data"), so declaring one would make the config unloadable.

    Args:
        files: Names of the version's data files (`<split>.<format>.<ext>`).
        examples_by_split: Example count of each split.

    Returns:
        `[{config_name, data_files: [{split, path}], default?}]`, `messages` first and default;
        empty when no split has examples.
    """
    ext = config_extension(files)
    splits = [s for s in SPLITS if examples_by_split.get(s, 0) > 0]
    configs: list[dict[str, Any]] = []
    for fmt in CONFIG_FORMATS:
        if not splits or f"train.{fmt}.{ext}" not in files:
            continue
        config: dict[str, Any] = {
            "config_name": fmt,
            "data_files": [{"split": s, "path": f"{s}.{fmt}.{ext}"} for s in splits],
        }
        if not configs:
            config["default"] = True
        configs.append(config)
    return configs


def _front_matter(name: str, files: list[str], counts: dict[str, Any]) -> str:
    by_split = {s: c["examples"] for s, c in counts["by_split"].items()}
    meta = {
        "pretty_name": name,
        "license": "other",
        "language": ["en"],
        "task_categories": ["text-generation"],
        "tags": ["instructforge", "self-instruct", "synthetic"],
        "size_categories": [_size_category(counts["examples"])],
        "configs": card_configs(files, by_split),
    }
    # sort_keys=False keeps the order above; the dump is deterministic for the same input.
    body = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1_000_000)
    return f"---\n{body}---"


def _files_lines(files: list[str]) -> list[str]:
    ext = config_extension(files)
    lines = [
        f"The configs above read the `*.{ext}` files (`load_dataset(<this directory>, config)`)",
        "and leave out a split without examples. Every data file of the version, and the",
        "packaged `datasets` builder that reads it (`load_dataset(builder, data_files=...)`):",
        "",
        "| file | builder |",
        "|---|---|",
    ]
    builders = {"jsonl": "json", "parquet": "parquet"}
    lines += [f"| `{n}` | `{builders[n.rsplit('.', 1)[1]]}` |" for n in sorted(files)]
    return lines


def _lineage_lines(lineage: dict[str, Any]) -> list[str]:
    lines = []
    for ss in lineage["seed_sets"]:
        lines.append(f"- seed set {code_span(ss['name'])} (sha256 `{ss['content_hash'][:12]}`)")
    for run in lineage["runs"]:
        policy, config = run["policy_version"], run["config_hash"][:12]
        lines.append(f"- run {run['id']} (policy {policy}, config `{config}`)")
    for model in lineage["models"]:
        lines.append(
            f"- model {code_span(model['model_name'])} via {code_span(model['backend'])} "
            f"({code_span(model['engine'] + ' ' + model['engine_version'])}, "
            f"sha256 `{model['model_hash'][:12]}`)"
        )
    for tpl in lineage["templates"]:
        name, version, sha = tpl["template_name"], tpl["template_version"], tpl["template_sha256"]
        lines.append(f"- template {code_span(name)} v{code_span(str(version))} (`{sha[:12]}`)")
    for scorer, versions in lineage["scorers"].items():
        lines.append(
            f"- scorer {code_span(scorer)} version(s) {', '.join(map(code_span, versions))}"
        )
    return lines or ["- human seed tasks only"]


def render_card(
    *,
    dataset: str,
    version: int,
    content_hash: str,
    spec_hash: str,
    counts: dict[str, Any],
    lineage: dict[str, Any],
    files: list[str],
) -> str:
    """The README.md of a version.

    Args:
        dataset: The dataset name.
        version: Its version number.
        content_hash: The version's content hash.
        spec_hash: The spec's hash.
        counts: The manifest's counts.
        lineage: The manifest's lineage.
        files: Names of the data files.
    """
    split = counts["by_split"]
    decon = counts["decontaminated"]
    eval_sets = (
        ", ".join(code_span(e["name"]) for e in lineage["decontamination"]["eval_sets"]) or "none"
    )
    lines = [_front_matter(dataset, files, counts)]
    lines += [
        "",
        f"# {dataset} v{version}",
        "",
        "Instruction-tuning data grown from human seed tasks with a Self-Instruct style pipeline",
        "(instructforge): machine-written instructions and instances that passed its filters,",
        "together with the seed tasks the spec included.",
        "",
        f"- content hash: `{content_hash}`",
        f"- spec hash: `{spec_hash}`",
        "",
        "## Contents",
        "",
        "| split | tasks | examples |",
        "|---|---|---|",
        *(f"| {s} | {split[s]['tasks']} | {split[s]['examples']} |" for s in SPLITS),
        "",
        f"By origin: {_pairs(counts['by_origin'])}. "
        f"By task type: {_pairs(counts['by_task_type'])}.",
        f"Candidates considered: {counts['candidates']}; rejected by the export spec: "
        f"{counts['rejected']['total']}; removed by decontamination against {eval_sets}: "
        f"{decon['total']}.",
        "",
        "`*.messages.*` rows hold a `messages` list of `{role, content}` turns (the chat format",
        "TRL's SFTTrainer reads); `*.alpaca.*` rows hold `instruction`, `input`, `output`.",
        "Each row has an `id` (`<task id>:<instance idx>`), `task_id` and `task_type`.",
        "",
        *_files_lines(files),
        "",
        "## Lineage",
        "",
        *_lineage_lines(lineage),
        "",
        "The full lineage, score distributions and the sha256 of every file are in",
        "`manifest.json`.",
        "",
        "## License",
        "",
        "Machine-generated text inherits the terms of the model that wrote it and of the seed",
        "tasks it was prompted with; check both before redistributing this dataset.",
        "",
    ]
    return "\n".join(lines)


def _pairs(counter: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counter.items()) or "none"
