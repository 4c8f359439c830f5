"""The corpus report in text, JSON, Markdown and HTML.

Member paths, sonames and package names come from the wheels: every one goes through the escaping
rule of its channel (uk_depscan.report.escape) — terminal text, Markdown, HTML, JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict

from uk_depscan.corpus.report import CorpusReport, Evolution
from uk_depscan.model import PlanStep
from uk_depscan.report.escape import for_html, for_json, for_markdown, for_terminal

PLAN_NAMES = 6  # libraries named per plan step in the human formats (the JSON names all)


def render_json(r: CorpusReport) -> str:
    return json.dumps(for_json(asdict(r)), indent=2, sort_keys=True, ensure_ascii=True) + "\n"


def _step_line(s: PlanStep, esc: Callable[[str], str]) -> str:
    work = "; ".join(esc(a) for a in s.actions) or "nothing new"
    names = ", ".join(esc(c) for c in s.completes[:PLAN_NAMES])
    more = f", … {len(s.completes) - PLAN_NAMES} more" if len(s.completes) > PLAN_NAMES else ""
    n = len(s.completes)
    return f"step {s.number}: {work} → {n} more librar{'y' if n == 1 else 'ies'} fully covered ({names}{more})"


def _evolution_lines(e: Evolution, esc: Callable[[str], str]) -> list[str]:
    lines = [f"{esc(e.package)} {esc(e.arch)} — versions {', '.join(esc(v) for v in e.versions)}"]
    for item, marks in e.rows:
        have = [v for v, m in zip(e.versions, marks, strict=True) if m]
        lines.append(f"  {esc(item)}: needed by {', '.join(esc(v) for v in have)}")
    if e.constant:
        lines.append(
            f"  every version: {len(e.constant)} items ({'; '.join(esc(i) for i in e.constant[:8])}"
            f"{'; …' if len(e.constant) > 8 else ''})"
        )
    return lines


def render_text(r: CorpusReport) -> str:
    t = for_terminal
    out = [
        f"corpus: {len(r.wheels)} wheels, {sum(w.libraries for w in r.wheels)} libraries, {r.objects} objects, "
        f"{r.export_summaries} export summaries"
    ]
    out += [
        f"  w{k + 1:<3} {t(w.package)} {t(w.version)} {t(w.arch)} ({w.libraries} libraries)"
        for k, w in enumerate(r.wheels)
    ]
    for v in r.releases:
        out += ["", f"== Unikraft {t(v.release)} (commit {t(v.commit or 'unknown')}): {v.libraries} libraries"]
        out += ["", "plan (greedy, whole corpus):"]
        out += [f"  {_step_line(s, t)}" for s in v.plan]
        if v.investigate:
            out.append(f"  to investigate (not counted as work): {', '.join(t(n) for n in v.investigate)}")
        out += ["", "matrix (libraries needing each syscall, per wheel w1…):"]
        width = max((len(m.syscall) for m in v.matrix), default=8)
        head = " ".join(f"w{k + 1:<3}" for k in range(len(r.wheels)))
        out.append(f"  {'syscall':<{width}} {'status':<13} tier {head}  action")
        for m in v.matrix:
            cells = " ".join(f"{c or '.':<4}" for c in m.cells)
            out.append(f"  {t(m.syscall):<{width}} {m.status:<13} {m.tier:<4} {cells}  {t(m.action)}")
        out += ["", "gap evolution across versions (work items):"]
        for e in v.evolution:
            out += [f"  {line}" for line in _evolution_lines(e, t)]
    return "\n".join(out) + "\n"


def render_markdown(r: CorpusReport) -> str:
    m = for_markdown
    out = [
        f"# Ecosystem report: {len(r.wheels)} wheels, {sum(w.libraries for w in r.wheels)} libraries, "
        f"{r.objects} objects",
        "",
    ]
    out += ["| | package | version | arch | libraries |", "|---|---|---|---|---|"]
    out += [
        f"| w{k + 1} | {m(w.package)} | {m(w.version)} | {m(w.arch)} | {w.libraries} |" for k, w in enumerate(r.wheels)
    ]
    for v in r.releases:
        out += [
            "",
            f"## Unikraft {m(v.release)}",
            "",
            f"{v.libraries} libraries; table commit `{m(v.commit or 'unknown')}`.",
            "",
        ]
        out += ["### Plan", ""]
        out += [f"{k}. {_step_line(s, m)}" for k, s in enumerate(v.plan, 1)]
        if v.investigate:
            out += ["", f"To investigate (not counted as work): {', '.join(m(n) for n in v.investigate)}"]
        out += [
            "",
            "### Matrix",
            "",
            "| syscall | status | tier | action | " + " | ".join(f"w{k + 1}" for k in range(len(r.wheels))) + " |",
        ]
        out.append("|---" * (4 + len(r.wheels)) + "|")
        for row in v.matrix:
            cells = " | ".join(str(c) if c else "" for c in row.cells)
            out.append(f"| {m(row.syscall)} | {row.status} | {row.tier} | {m(row.action)} | {cells} |")
        out += ["", "### Gap evolution", ""]
        for e in v.evolution:
            out += [
                f"- {line.strip()}" if not line.startswith("  ") else f"  - {line.strip()}"
                for line in _evolution_lines(e, m)
            ]
    return "\n".join(out) + "\n"


def render_html(r: CorpusReport) -> str:
    h = for_html
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>uk-depscan corpus report</title>',
        "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:2px 4px;font-size:12px}td.n{text-align:right}</style></head><body>",
        f"<h1>Ecosystem report: {len(r.wheels)} wheels, {sum(w.libraries for w in r.wheels)} libraries, "
        f"{r.objects} objects</h1>",
        "<table><tr><th></th><th>package</th><th>version</th><th>arch</th><th>libraries</th></tr>",
    ]
    out += [
        f"<tr><td>w{k + 1}</td><td>{h(w.package)}</td><td>{h(w.version)}</td><td>{h(w.arch)}</td>"
        f'<td class="n">{w.libraries}</td></tr>'
        for k, w in enumerate(r.wheels)
    ]
    out.append("</table>")
    for v in r.releases:
        out += [
            f"<h2>Unikraft {h(v.release)}</h2><p>{v.libraries} libraries; table commit {h(v.commit or 'unknown')}</p>"
        ]
        out += ["<h3>Plan</h3><ol>", *(f"<li>{_step_line(s, h)}</li>" for s in v.plan), "</ol>"]
        if v.investigate:
            out.append(f"<p>To investigate (not counted as work): {h(', '.join(v.investigate))}</p>")
        out.append("<h3>Matrix</h3><table><tr><th>syscall</th><th>status</th><th>tier</th><th>action</th>")
        out += [f"<th>w{k + 1}</th>" for k in range(len(r.wheels))]
        out.append("</tr>")
        for row in v.matrix:
            cells = "".join(f'<td class="n">{c or ""}</td>' for c in row.cells)
            out.append(
                f"<tr><td>{h(row.syscall)}</td><td>{h(row.status)}</td><td>{h(row.tier)}</td>"
                f"<td>{h(row.action)}</td>{cells}</tr>"
            )
        out.append("</table><h3>Gap evolution</h3>")
        for e in v.evolution:
            lines = _evolution_lines(e, h)
            out.append(f"<h4>{lines[0]}</h4><ul>" + "".join(f"<li>{ln.strip()}</li>" for ln in lines[1:]) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
