"""Build the self-contained HTML report: one file, figures inline as SVG, nothing loaded from
elsewhere (identifiers link out to their public pages, which a reader may follow or not)."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from mscatlas import __version__
from mscatlas.kb.citations import bibliography
from mscatlas.kb.export import export_text
from mscatlas.kb.links import anchor
from mscatlas.kb.models import FLAG_CODES, Dataset, EvidenceItem
from mscatlas.kb.summary import summarize
from mscatlas.kb.terms import label
from mscatlas.report.answer_section import answer_context
from mscatlas.report.field_section import field_section_context
from mscatlas.report.figures import (
    bar_chart_svg,
    calibration_svg,
    evidence_map_svg,
    forest_svg,
    harvest_plot_svg,
)
from mscatlas.report.intake_section import intake_section_context
from mscatlas.report.pooled_section import pooled_section_context
from mscatlas.report.sim_section import sim_section_context
from mscatlas.report.translation_section import translation_section_context
from mscatlas.report.trials_section import trials_section_context
from mscatlas.stats.meta_plots import forest_plot
from mscatlas.stats.outcomes import group_outcomes, meta_analyse
from mscatlas.stats.synthesis import run_synthesis

__all__ = ["TABLE_ROWS", "build_report", "report_context"]

# Above this many rows an HTML table helps nobody: the report shows the first rows of each group
# and links the full data as CSV (written beside index.html).
TABLE_ROWS = 1000


def _source_label(item: EvidenceItem) -> str:
    return " + ".join(label(s) for s in item.msc_source)


def _flag_legend(flagged: list[EvidenceItem], dataset: Dataset) -> list[tuple[str, str]]:
    """The meaning of every flag code the flagged-records table shows, so no raw code stands alone."""
    records = [*flagged[:TABLE_ROWS], *dataset.studies, *dataset.trials]
    used = {f.code for r in records for f in r.flags}
    return [(code, FLAG_CODES[code]) for code in sorted(used)]


def report_context(dataset: Dataset) -> dict[str, Any]:
    """Everything the template shows, computed from the dataset alone."""
    items = dataset.evidence
    by_source: dict[str, list[EvidenceItem]] = defaultdict(list)
    for item in sorted(items, key=EvidenceItem.reference_key):
        by_source[_source_label(item)].append(item)
    source_counts: Counter[str] = Counter()
    for item in items:
        for source in dict.fromkeys(s.value for s in item.msc_source):
            source_counts[source] += 1
    counts = {
        "MSC source": source_counts,
        "cancer class": Counter(e.cancer_class.value for e in items),
        "delivery": Counter(e.delivery.value for e in items),
        "direction": Counter(e.direction.value for e in items),
    }
    table1 = _paged(sorted(by_source.items(), key=lambda kv: (-len(kv[1]), kv[0])))
    flagged = [e for e in items if e.flags]
    return {
        "version": __version__,
        "summary": summarize(dataset),
        "counts": {name: sorted(c.items(), key=lambda kv: (-kv[1], kv[0])) for name, c in counts.items()},
        "count_figures": {
            name: bar_chart_svg(c, f"Evidence items by {name}") for name, c in counts.items() if c
        },
        "evidence_map": evidence_map_svg(items) if items else "",
        "table1": table1,
        "table1_total": len(items),
        "table1_shown": sum(len(rows) for _, rows in table1),
        "table1_csv": "evidence.csv" if len(items) > TABLE_ROWS else None,
        "trials": dataset.trials,
        "trials_landscape": trials_section_context(dataset.trials),  # registry landscape (trials_section.py)
        "translation": translation_section_context(dataset),  # preclinical roots and doses
        "flagged": flagged[:TABLE_ROWS],
        "flagged_total": len(flagged),
        "flagged_studies": [s for s in dataset.studies if s.flags],
        "flag_legend": _flag_legend(flagged, dataset),
        "studies": {s.id: s for s in dataset.studies},
        "bibliography": bibliography(dataset.studies, items),  # what the "(24)" citations link to
        "answer": answer_context(dataset),  # the opening figure (stats/answer.py)
        "field": field_section_context(dataset),  # review's selection vs the systematic search
        "intake": intake_section_context(dataset),  # PRISMA 2020 flow of the shipped search
        **_synthesis_context(dataset),
        # ---- in silico section (mscatlas.report.sim_section) ----
        "in_silico": sim_section_context(dataset),
    }


def _paged(groups: list[tuple[str, list[EvidenceItem]]]) -> list[tuple[str, list[EvidenceItem]]]:
    """Each group's first rows, at most :data:`TABLE_ROWS` in all, shared in proportion to size
    (a group whose share rounds to no row is left to the CSV)."""
    total = sum(len(rows) for _, rows in groups)
    if total <= TABLE_ROWS:
        return groups
    paged = [(name, rows[: TABLE_ROWS * len(rows) // total]) for name, rows in groups]
    return [(name, rows) for name, rows in paged if rows]


def _synthesis_context(dataset: Dataset) -> dict[str, Any]:
    """Harvest plot (coarse strata with at least two studies) and the fine-grained conflict list."""
    synthesis = run_synthesis(dataset.evidence, level="type")  # the pipeline the CLI and web render
    coarse = [s for s in synthesis.strata("class") if s.n_studies >= 2]
    model: dict[str, Any] = {}
    if synthesis.n_studies >= 3 and synthesis.fit is not None and synthesis.validation is not None:
        effects = synthesis.effects
        validation = synthesis.validation
        model = {
            "effects": effects,
            "study_sd": synthesis.fit.sigma_summary(),
            "validation": validation.to_dict(),
            "forest_svg": forest_svg(
                effects[1:], "Moderator effects on P(inhibits)", "log odds ratio vs reference"
            ),
            "calibration_svg": calibration_svg(validation.calibration()),
        }
    groups = group_outcomes(dataset.evidence)
    pooled = []
    for group in groups:
        if group.poolable:
            measure, fit = meta_analyse(group)
            axis = f"{measure} (treated vs control)"
            forest = forest_plot(fit, group.labels, xlabel=axis, standalone=False)
            pooled.append({"group": group, "measure": measure, "fit": fit, "forest_svg": forest})
    return {
        "outcome_groups": groups,
        "pooled": pooled,
        "pooled_subgroups": pooled_section_context(dataset),
        "model": model,
        "harvest_svg": harvest_plot_svg(coarse) if coarse else "",
        "conflicts": synthesis.conflicts("type"),
        "coarse_conflicts": synthesis.conflicts("class"),
        "dose_coverage": synthesis.dose_coverage(),
    }


def build_report(dataset: Dataset, out_dir: str | Path) -> Path:
    """Write out_dir/index.html and return its path."""
    env = Environment(
        loader=PackageLoader("mscatlas.report", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["label"] = label  # enum values and names as people read them (kb.terms.label)
    env.filters["link"] = anchor  # identifiers to their public pages (links out; nothing is fetched)
    context = report_context(dataset)
    html = env.get_template("report.html.j2").render(**context)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if context["table1_csv"]:
        evidence_only = Dataset.model_construct(studies=[], evidence=dataset.evidence, trials=[])
        csv_path = out / context["table1_csv"]
        csv_path.with_suffix(".csv.tmp").write_text(export_text(evidence_only, "csv"), encoding="utf-8")
        csv_path.with_suffix(".csv.tmp").replace(csv_path)
    path = out / "index.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)  # never leave a half-written report behind
    return path
