"""The campaign summary: every run's place and times, the chamber-band check and the paper's
figures, as Markdown next to the runs' reports."""
from __future__ import annotations

from pathlib import Path

from analysis.paper_figures import paper_figures


def _h(value) -> str:
    return "—" if value is None else f"{value:,.1f}"


def _value(row: dict) -> str:
    value = row["value"]
    if value is None:
        return "none"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def summary_markdown(result) -> str:
    lines = [f"# Campaign {result.name}: {result.status}", "",
             f"Makespan {_h(result.makespan_h)} h against {_h(result.serial_h)} h of instrument time "
             f"run one after another; wall time {result.wall_s:.1f} s.", "",
             "| run | protocol | channels | chamber | status | start h | end h | instrument h | waited h |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in result.runs:
        run_id = r.result.run_id if r.result else None
        lines.append(f"| {run_id if run_id is not None else '—'} | {r.run.name} | "
                     f"{', '.join(r.run.channels)} | {r.run.chamber or 'bench'} | {r.status} | "
                     f"{_h(r.start_h)} | {_h(r.end_h)} | {_h(r.instrument_h)} | {_h(r.waited_h)} |")
    lines += ["", "## Waits for a chamber", ""]
    waits = [(r, w) for r in result.runs for w in r.waits]
    lines += [f"- {r.run.name}: {a:,.1f}–{b:,.1f} h, {reason}" for r, (a, b, reason) in waits] or ["- none"]
    lines += ["", "## Chamber band", "",
              "Each run's chamber log while it held its chamber, once settled at each set point: "
              "readings outside set point ± band, and set points the run did not ask for.", ""]
    for r in result.runs:
        if r.band is not None:
            b = r.band
            verdict = "ok" if b["ok"] else f"NOT ok: {b['first_problem']}"
            lines.append(f"- {r.run.name}: {b['readings_checked']} readings, {b['outside_band']} outside "
                         f"the band, {b['foreign_setpoint']} at another set point — {verdict}")
    lines += ["", "## The paper's figures", "", "| protocol | figure | value | paper | within tolerance |",
              "|---|---|---|---|---|"]
    for r in result.runs:
        for row in paper_figures(r.run.name, r.result.analysis if r.result else None):
            tolerance = (f"±{row['tolerance'] * 100:g} %" if row["relative"]
                         else f"±{row['tolerance']:g}")
            paper = "none" if row["paper"] is None else f"{row['paper']:g} {row['unit']} {tolerance}"
            lines.append(f"| {r.run.name} | {row['figure']} | {_value(row)} | {paper} | "
                         f"{'yes' if row['ok'] else 'NO'} |")
    if result.problems:
        lines += ["", "## Problems", "", *[f"- {p}" for p in result.problems]]
    return "\n".join(lines) + "\n"


def write_summary(result, out_dir) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"campaign_{result.name}.md"
    path.write_text(summary_markdown(result), encoding="utf-8")
    return path
