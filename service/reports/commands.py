"""``instructforge report --run N`` and ``instructforge probe refusals --run N``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from service.reports.schema import IterationReport, RunReport, shown
from service.statuses import RunStatus

RADAR_COLUMNS = 8  # iterations shown side by side; more would not fit 80 columns


def print_report(console: Console, report: RunReport) -> None:
    """The report as tables: yield by rule, the radar per iteration, judge and refusals."""
    y = report.yield_
    console.print(
        f"run {report.run_id} ({report.status}): {y.candidates} candidates, {y.accepted} "
        f"accepted, {y.rejected} rejected; tokens per accepted task: "
        f"{shown(y.prompt_tokens_per_accepted)} in, {shown(y.completion_tokens_per_accepted)} out"
    )
    if report.stop_reason:
        verb = "paused" if report.status is RunStatus.PAUSED else "stopped"
        console.print(f"[yellow]{verb}: {report.stop_reason}[/yellow]")
    rules = Table("rule", "stage", "rejected", "tokens in", "tokens out", title="Yield by rule")
    for r in y.rejected_by_rule:
        rules.add_row(
            r.rule,
            r.stage,
            str(r.rejected),
            shown(r.prompt_tokens),
            shown(r.completion_tokens),
        )
    console.print(rules)
    if y.parse_failures_by_reason:
        console.print(f"parse failures: {y.parse_failures_by_reason}")
    # One row per measure and one column per iteration: the thirteen measures side by side
    # did not fit an 80-column terminal (rich cut every header to two letters).
    shown_iterations = report.iterations[-RADAR_COLUMNS:]
    radar = Table(
        "measure",
        *(str(it.iteration) for it in shown_iterations),
        title="Collapse radar by iteration",
        caption=(
            f"the last {RADAR_COLUMNS} of {len(report.iterations)} iterations (all: --json)"
            if len(report.iterations) > RADAR_COLUMNS
            else None
        ),
    )
    rows: list[tuple[str, Callable[[IterationReport], float | None]]] = [
        ("candidates", lambda it: it.yield_.candidates),
        ("accepted", lambda it: it.yield_.accepted),
        ("distinct-2", lambda it: it.diversity.distinct_2),
        ("machine share in prompts", lambda it: it.collapse.machine_share_in_prompts),
        ("similarity to seeds", lambda it: it.collapse.similarity_to_seeds),
        ("similarity to previous", lambda it: it.collapse.similarity_to_previous),
        ("near-duplicate rate", lambda it: it.collapse.near_duplicate_rate),
        ("novel bigram share", lambda it: it.collapse.novel_bigram_share),
        ("new verb-noun pairs", lambda it: it.collapse.verb_noun_growth),
        ("embedding distance", lambda it: it.diversity.embedding_mean_distance),
        ("embedding clusters", lambda it: it.diversity.embedding_clusters),
        ("judge mean", lambda it: it.collapse.judge_mean),
    ]
    for name, value in rows:
        radar.add_row(name, *(shown(value(it)) for it in shown_iterations))
    console.print(radar)
    d = report.diversity
    console.print(
        f"diversity: distinct-1 {shown(d.distinct_1)}, distinct-2 {shown(d.distinct_2)}, "
        f"classification share {shown(d.classification_share)}"
    )
    console.print(
        f"verb-noun ({d.verb_noun_version}): {d.verb_noun_pairs} distinct pairs, "
        f"{d.distinct_verbs} verbs in {d.verb_noun_parsed}/{d.instructions} parsed, top-20 verb "
        f"share {shown(d.top20_verb_share)}; top verbs: "
        + (", ".join(f"{verb} {n}" for verb, n in d.top_verbs[:10]) or "-")
    )
    console.print(
        f"embedding diversity ({d.embedding_model or 'no stored vectors'}): {d.embedded} "
        f"embedded, mean pairwise cosine distance {shown(d.embedding_mean_distance)}, "
        f"{shown(d.embedding_clusters)} clusters at radius {shown(d.embedding_cluster_radius)}"
    )
    if report.judge is not None:
        j = report.judge
        lc = j.length_controlled
        console.print(
            f"judge: {j.scored} scored, parse failures {shown(j.parse_failure_rate)}, "
            f"length Spearman {shown(j.length_spearman)}, length-controlled changes "
            f"{shown(lc.changed_share) if lc else 'n/a'}, rubric {', '.join(j.rubric_sha256)}"
        )
    if report.preference is not None:
        p, lr = report.preference, report.preference.length_ratio
        console.print(
            f"preference: {p.comparisons} comparisons, {p.kept_pairs} pairs kept "
            f"({p.length_only_pairs} length-only), outcomes {p.outcomes}; position-swap "
            f"consistency {shown(p.position_swap_consistency)}, Spearman preference vs length "
            f"{shown(p.spearman_preference_vs_length)}, chosen/rejected length ratio p10/p50/p90 "
            + (f"{shown(lr.p10)}/{shown(lr.p50)}/{shown(lr.p90)}" if lr else "-")
            + f", self-preference {shown(p.self_preference)}"
            + (" (judge = generator)" if p.judge_is_generator else "")
            + f"; replies by form {p.replies_by_form}, unread {p.reply_failures}"
        )
    refusals = report.refusals
    console.print(f"refusals in outputs: {refusals.outputs_refused}/{refusals.outputs_scored}")
    if refusals.probe is not None:
        console.print(
            f"refusal probe: over-refusal {shown(refusals.probe.over_refusal_rate)}, "
            f"under-refusal {shown(refusals.probe.under_refusal_rate)}"
        )


def report_command(
    run: Annotated[int, typer.Option(help="The run's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="The REST document.")] = False,
) -> None:
    """Print a run's report: yield by rule, collapse radar, judge audit, refusals."""
    from service.cli import console, open_database
    from service.reports.compute import build_run_report

    database = open_database()
    try:
        with database.sessions() as session:
            report = build_run_report(session, run)
    finally:
        database.dispose()
    if as_json:
        typer.echo(report.model_dump_json(by_alias=True, indent=2))
    else:
        print_report(console, report)


def probe_refusals(run: Annotated[int, typer.Option(help="The run's id.")]) -> None:
    """Run the labelled refusal probes through the run's backend; store and print both rates."""
    from service.cli import console, open_database
    from service.reports.probe import probe_run
    from service.settings import get_settings

    database = open_database()
    try:
        result = probe_run(database, get_settings(), run)
    finally:
        database.dispose()
    table = Table("id", "kind", "harmful", "refused", title="Refusal probe")
    for item in result.results:
        table.add_row(item["id"], item["kind"], str(item["harmful"]), str(item["refused"]))
    console.print(table)
    console.print(
        f"over-refusal (benign refused) {shown(result.over_refusal_rate)}; "
        f"under-refusal (harmful answered) {shown(result.under_refusal_rate)}"
    )
