"""The human-readable report (Markdown) of a benchmark run's JSON."""

from __future__ import annotations

from typing import Any

__all__ = ["format_value", "render_markdown"]


def format_value(x: Any, unit: str = "") -> str:
    if isinstance(x, bool) or x is None:
        return str(x)
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) >= 1000):
        return f"{int(x):,}"
    if isinstance(x, float):
        if unit in ("s", "ratio") or abs(x) < 100:
            return f"{x:.3f}" if abs(x) < 10 else f"{x:.2f}"
        return f"{x:,.1f}"
    return str(x)


def _mib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**20:,.0f} MiB"


def _figure_row(name: str, fig: dict[str, Any]) -> str:
    unit = fig.get("unit", "")
    if "stats" in fig:
        s = fig["stats"]
        value = format_value(s["median"], unit)
        spread = (f"p10 {format_value(s['p10'], unit)} / p90 {format_value(s['p90'], unit)}, "
                  f"min {format_value(s['min'], unit)} / max {format_value(s['max'], unit)}, n={s['n']}")
    else:
        value, spread = format_value(fig.get("value"), unit), "single value"
    met = {True: "met", False: "**missed**", None: ""}[fig.get("met")]
    target = f"{fig['target']} {met}".strip() if fig.get("target") else ""
    note = fig.get("note", "")
    return f"| {name} | {value} {unit} | {spread} | {target} | {note} |"


def render_markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    v = m.get("versions", {})
    lines = [
        "# lilypad benchmarks", "",
        f"Mode **{results['mode']}**, started {results['started_at']}, took {results['duration_s']:.0f} s "
        "(`python bench/run.py" + (" --quick" if results["mode"] == "quick" else "") + "`).", "",
        f"Machine: {m.get('cores')} cores ({m.get('cpu_model')}), {_mib(m.get('memory_bytes'))} memory "
        f"({_mib(m.get('memory_available_bytes'))} available at the start), {m.get('os')}, load average at the "
        f"start {', '.join(f'{x:.2f}' for x in m.get('load_average') or [])}, at the end "
        f"{', '.join(f'{x:.2f}' for x in results.get('load_average_end') or [])} (other work on the machine "
        "counts in every timing).", "",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val) + ".", "",
        "Figures are medians over repeated runs, with p10/p90 and min/max; comparisons are measured side by "
        "side in the same run. Timings on a shared 2-core machine drift: compare ratios, not absolute times.", "",
    ]
    skipped = [(n, s) for n, s in results["sections"].items() if s.get("skipped")]
    failed = [(n, s) for n, s in results["sections"].items() if s.get("error")]
    if skipped or failed:
        lines.append("Not measured in this run:")
        lines += [f"- {n}: skipped, {s['skipped']}" for n, s in skipped]
        lines += [f"- {n}: failed, {s['error']}" for n, s in failed]
        lines.append("")
    for name, sec in results["sections"].items():
        lines += [f"## {sec.get('title', name)} (`{name}`, {sec.get('duration_s', 0):.0f} s)", ""]
        if sec.get("skipped"):
            lines += [f"Skipped: {sec['skipped']}", ""]
            continue
        if sec.get("error"):
            lines += [f"Failed: {sec['error']}", "", "```", sec.get("traceback", "").strip(), "```", ""]
        if sec.get("figures"):
            lines += ["| figure | median | spread | target | note |", "|---|---|---|---|---|"]
            lines += [_figure_row(k, f) for k, f in sec["figures"].items()]
            lines.append("")
        for table in sec.get("tables", []):
            lines += [f"**{table['title']}**", "", "| " + " | ".join(table["columns"]) + " |",
                      "|" + "---|" * len(table["columns"])]
            lines += ["| " + " | ".join(format_value(c) for c in row) + " |" for row in table["rows"]]
            lines.append("")
        lines += [f"- {n}" for n in sec.get("notes", [])]
        if sec.get("notes"):
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
