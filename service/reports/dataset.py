"""The run reports of a dataset version: an entry in its manifest, a section and PNG plots in
its card. The export calls :func:`version_reports` once; nothing here decides what is exported."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.reports.compute import build_run_report
from service.reports.schema import CLUSTER_RADIUS, RunReport, shown
from service.storage.db import Session

YIELD_PNG = "report_yield_by_rule.png"
DIVERSITY_PNG = "report_diversity.png"
VERBS_PNG = "report_top_verbs.png"


@dataclass
class VersionReports:
    """The reports of the runs a version's tasks came from, and the plot files written."""

    reports: list[RunReport]
    plots: list[str] = field(default_factory=list)
    plot_error: str | None = None

    def manifest_entry(self) -> dict[str, Any]:
        """``run_reports`` of manifest.json: each run's REST report document, and the plots."""
        return {
            "runs": [r.model_dump(mode="json", by_alias=True) for r in self.reports],
            "plots": self.plots,
            "plot_error": self.plot_error,
        }

    def card_section(self) -> str:
        """Markdown for the card: yield by rule and diversity per iteration, then the plots."""
        if not self.reports:
            return ""
        runs = self.reports
        lines = ["", "## Run reports", ""]
        lines += _table(
            ("run", "candidates", "accepted", "tokens in / accepted", "tokens out / accepted"),
            [
                (r.run_id, r.yield_.candidates, r.yield_.accepted,
                 r.yield_.prompt_tokens_per_accepted, r.yield_.completion_tokens_per_accepted)
                for r in runs
            ],
        )  # fmt: skip
        lines += _table(
            ("run", "rule", "stage", "rejected", "tokens in", "tokens out"),
            [
                (r.run_id, x.rule, x.stage, x.rejected, x.prompt_tokens, x.completion_tokens)
                for r in runs
                for x in r.yield_.rejected_by_rule
            ],
        )
        lines += _table(
            ("run", "iteration", "accepted", "distinct-2", "near-dup rate", "novel bigrams"),
            [
                (r.run_id, it.iteration, it.yield_.accepted, it.diversity.distinct_2,
                 it.collapse.near_duplicate_rate, it.collapse.novel_bigram_share)
                for r in runs
                for it in r.iterations
            ],
        )  # fmt: skip
        lines += _table(
            ("run", "iteration", "verb-noun pairs", "new pairs", "top-20 verb share",
             "embedding mean distance", f"clusters (radius {CLUSTER_RADIUS})"),
            [
                (r.run_id, str(it.iteration), it.diversity.verb_noun_pairs,
                 it.collapse.verb_noun_growth, it.diversity.top20_verb_share,
                 it.diversity.embedding_mean_distance, it.diversity.embedding_clusters)
                for r in runs
                for it in r.iterations
            ]
            + [
                (r.run_id, "all", r.diversity.verb_noun_pairs, None, r.diversity.top20_verb_share,
                 r.diversity.embedding_mean_distance, r.diversity.embedding_clusters)
                for r in runs
            ],
        )  # fmt: skip
        lines += [f"![{name[:-4]}]({name})" for name in self.plots]
        return "\n".join(lines) + "\n"


def _table(header: tuple[str, ...], rows: Sequence[tuple[str | float | None, ...]]) -> list[str]:
    """A markdown table (numbers through :func:`shown`), then a blank line."""
    cells = [[c if isinstance(c, str) else shown(c) for c in row] for row in rows]
    return [
        f"| {' | '.join(header)} |",
        "|" + "---|" * len(header),
        *(f"| {' | '.join(row)} |" for row in cells),
        "",
    ]


def version_reports(
    session: Session, run_ids: Iterable[int | None], directory: Path
) -> VersionReports:
    """Compute the reports of `run_ids` (None, for seed tasks, is skipped) and write the plots
    into `directory` (none when matplotlib, of the ``train`` extra, is not installed)."""
    reports = [build_run_report(session, i) for i in sorted(i for i in run_ids if i is not None)]
    out = VersionReports(reports)
    if not reports:
        return out
    try:
        out.plots = write_plots(reports, directory)
    except ImportError as exc:
        out.plot_error = f"no plots: {exc}"
    return out


def write_plots(reports: list[RunReport], directory: Path) -> list[str]:
    """Yield by rule (bars), distinct-2 / novel-bigram share per iteration (lines), top verbs.

    Raises:
        ImportError: matplotlib is not installed.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display: the plots are files
    from matplotlib import pyplot as plt

    # No timestamps in the files: the same data gives the same bytes.
    metadata = {"Software": None}
    rules: dict[str, int] = {}
    for r in reports:
        for x in r.yield_.rejected_by_rule:
            rules[x.rule] = rules.get(x.rule, 0) + x.rejected
    rules["accepted"] = sum(r.yield_.accepted for r in reports)
    figure, axes = plt.subplots(figsize=(6, 4))
    axes.barh(list(rules), list(rules.values()))
    axes.set_xlabel("tasks")
    axes.set_title("yield by rule")
    figure.tight_layout()
    figure.savefig(directory / YIELD_PNG, dpi=100, metadata=metadata)
    plt.close(figure)
    figure, axes = plt.subplots(figsize=(6, 4))
    for r in reports:
        its = [it.iteration for it in r.iterations]
        axes.plot(its, [_nan(it.diversity.distinct_2) for it in r.iterations], marker="o",
                  label=f"run {r.run_id} distinct-2")  # fmt: skip
        axes.plot(its, [_nan(it.collapse.novel_bigram_share) for it in r.iterations], marker="x",
                  linestyle="--", label=f"run {r.run_id} novel bigrams")  # fmt: skip
    axes.set_xlabel("iteration")
    axes.set_ylim(0, 1.05)
    axes.set_title("diversity per iteration")
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(directory / DIVERSITY_PNG, dpi=100, metadata=metadata)
    plt.close(figure)
    # Self-Instruct Fig. 2 as bars: the root verbs of every run's accepted instructions.
    verbs: dict[str, int] = {}
    for r in reports:
        for verb, count in r.diversity.top_verbs:
            verbs[verb] = verbs.get(verb, 0) + count
    top = sorted(verbs.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
    figure, axes = plt.subplots(figsize=(6, 5))
    axes.barh([v for v, _ in reversed(top)], [n for _, n in reversed(top)])
    axes.set_xlabel("accepted instructions")
    axes.set_title("top root verbs (verb-noun analysis)")
    figure.tight_layout()
    figure.savefig(directory / VERBS_PNG, dpi=100, metadata=metadata)
    plt.close(figure)
    return [YIELD_PNG, DIVERSITY_PNG, VERBS_PNG]


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value  # a gap in the line
