"""Views computed once (uk_depscan.report.views) and read by every renderer; a saved JSON report read
back into a Report; the typed diff; the schema check without jsonschema."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from conftest import run_cli

from uk_depscan.errors import InputError
from uk_depscan.model import Action, SupportStatus, Tier
from uk_depscan.report.diff import diff_reports
from uk_depscan.report.html import render_html
from uk_depscan.report.json_report import render_json, report_from_dict, report_to_dict
from uk_depscan.report.markdown import render_markdown
from uk_depscan.report.text import render_summary
from uk_depscan.report.validate import first_problem, report_schema
from uk_depscan.report.views import build_target_views, explain, kconfig_groups, with_views


@pytest.fixture(scope="module")
def doc(sockets_report: Path) -> dict[str, Any]:
    """The JSON report of a small socket server (glibc model, Unikraft 0.17.0): many Kconfig groups,
    some with equal syscall counts."""
    parsed: dict[str, Any] = json.loads(sockets_report.read_text())
    return parsed


def test_round_trip(doc: dict[str, Any]) -> None:
    """report_from_dict is the inverse of report_to_dict: the same document, byte for byte."""
    report = report_from_dict(doc)
    assert json.loads(json.dumps(report_to_dict(report))) == doc
    assert render_json(report) == json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=True) + "\n"
    assert all(t.views == build_target_views(t) for t in report.targets)


def test_one_kconfig_order_in_every_format(doc: dict[str, Any]) -> None:
    report = report_from_dict(doc)
    groups = report.targets[0].views.kconfig_groups if report.targets[0].views else ()
    counts = [len(g.syscalls) for g in groups]
    assert len(groups) > 3 and len(set(counts)) < len(counts)  # the fixture has ties to order
    key = [(g.tier.rank if g.tier else 9, -len(g.syscalls), g.option) for g in groups]
    assert key == sorted(key)
    expected = [(g.option, len(g.syscalls)) for g in groups]
    text = render_summary(report, width=400)
    md = render_markdown(report)
    html = render_html(report)
    assert [(o, int(n)) for o, n in re.findall(r"^    P\d (\S+): (\d+) syscalls?", text, re.M)] == expected
    assert [(o.replace("\\_", "_"), int(n)) for o, n in re.findall(r"^- `(CONFIG\S+)`: (\d+) syscalls", md, re.M)] == (
        expected
    )
    rows = re.findall(r'<tr><td><code class="id">(CONFIG_\w+)</code></td><td class="num">(\d+)</td>', html)
    assert [(o, int(n)) for o, n in rows] == expected
    assert [(g["option"], len(g["syscalls"])) for g in doc["targets"][0]["views"]["kconfig_groups"]] == expected


def test_kconfig_groups_sort_and_content() -> None:
    from uk_depscan.model import Gap

    def gap(name: str, kconfig: str, status: SupportStatus = SupportStatus.NEEDS_KCONFIG, tier: Tier = Tier.P1) -> Gap:
        return Gap(name, status, "full", "lib", kconfig, Action.ENABLE, tier, ())

    gaps = (
        gap("b1", "CONFIG_B"),
        gap("a1", "CONFIG_A"),
        gap("c1", "CONFIG_C"),
        gap("c2", "CONFIG_C"),
        gap("d1", "CONFIG_D", tier=Tier.P0),  # a more urgent option first, whatever its size
        gap("x", "CONFIG_X", SupportStatus.PROVIDED),
    )
    assert [(k.option, k.syscalls) for k in kconfig_groups(gaps)] == [
        ("CONFIG_D", ("d1",)),
        ("CONFIG_C", ("c1", "c2")),
        ("CONFIG_A", ("a1",)),
        ("CONFIG_B", ("b1",)),
    ]


def test_top_actions_are_the_actionable_work(doc: dict[str, Any]) -> None:
    t = report_from_dict(doc).targets[0]
    v = build_target_views(t)
    assert [r.gap for r in v.rows] == list(t.gaps)
    assert all(r.gap.action is not Action.ENABLE for r in v.work)
    assert [r.gap for r in v.top_actions] == [r.gap for r in v.work if r.gap.tier is not Tier.P3]
    assert dict(v.tier_counts) == {tier: sum(g.tier is tier for g in t.gaps) for tier in Tier}
    # every count equals the rows it summarises
    enable = [g for g in t.gaps if g.action is Action.ENABLE]
    assert sum(len(k.syscalls) for k in v.kconfig_groups) == len(enable)
    assert sorted(n for k in v.kconfig_groups for n in k.syscalls) == sorted(g.name for g in enable)
    assert dict(v.enable_tier_counts) == {tier: sum(g.tier is tier for g in enable) for tier in Tier}
    assert dict(v.top_tier_counts) == {tier: sum(r.gap.tier is tier for r in v.top_actions) for tier in Tier}
    assert sum(n for _, n in v.action_counts) == len(t.gaps) == sum(n for _, n in v.status_counts)
    text = render_summary(report_from_dict(doc), width=400)
    shown = re.search(r"^  work +(\d+) rows \(P0 (\d+), P1 (\d+), P2 (\d+), P3 (\d+)\)", text, re.M)
    assert shown is not None and int(shown[1]) == len(v.top_actions)
    assert [int(shown[i]) for i in (2, 3, 4, 5)] == [n for _, n in v.top_tier_counts]
    assert doc["targets"][0]["views"]["top_actions"] == [
        {"syscall": r.gap.name, "tier": r.gap.tier.value, "action": r.gap.action_label} for r in v.top_actions
    ]


def test_explain_by_name_and_number(doc: dict[str, Any]) -> None:
    report = report_from_dict(doc)
    (by_name,) = explain(report, "socket")
    (by_number,) = explain(report, "41")  # x86_64 socket
    assert by_name == by_number and [h.finding.name for h in by_name.hits] == ["socket"]
    assert by_name.hits[0].gap is not None and by_name.hits[0].gap.kconfig == "CONFIG_LIBPOSIX_SOCKET"
    (nothing,) = explain(report, "io_uring_setup")
    assert nothing.analysed and nothing.hits == ()


def test_typed_diff(doc: dict[str, Any]) -> None:
    old = report_from_dict(doc)
    assert diff_reports(old, old, "a", "b").changes == ()
    t = old.targets[0]
    p0 = [g for g in t.gaps if g.tier is Tier.P0]
    assert p0, "the fixture report has P0 gaps to re-tier"
    retiered = tuple(dataclasses.replace(g, tier=Tier.P3) if g.tier is Tier.P0 else g for g in t.gaps)
    calmer = with_views(dataclasses.replace(old, targets=(dataclasses.replace(t, gaps=retiered),)))
    down = diff_reports(old, calmer, "old", "new")
    assert len(down.changes) == len(p0) and all(c.change == "changed" and c.detail.endswith("P3") for c in down.changes)
    assert down.new_gaps == ()  # P0 -> P3 is not a new gap to act on
    up = diff_reports(calmer, old, "old", "new")
    assert [c.item for c in up.new_gaps] == [c.item for c in down.changes]


def _broken(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Documents the schema must refuse, one defect each."""
    out = []
    for edit in (
        lambda d: d.pop("targets"),
        lambda d: d.update(extra=1),
        lambda d: d.update(schema_version=2),
        lambda d: d["targets"][0].update(sha256="xyz"),
        lambda d: d["targets"][0]["gaps"][0].update(tier="P9"),
        lambda d: d["targets"][0]["gaps"][0].update(reasons="one"),
        lambda d: d["targets"][0]["elf"].update(elf_class=True),
        lambda d: d["targets"][0]["dependencies"]["load_order"][0].update(depth=-1),
        lambda d: d["targets"][0]["syscalls"]["reached"][0].update(chain=[]),
        lambda d: d["targets"][0]["views"]["kconfig_groups"][0].pop("option"),
    ):
        broken = copy.deepcopy(doc)
        edit(broken)
        out.append(broken)
    return out


def test_schema_check_agrees_with_jsonschema(doc: dict[str, Any]) -> None:
    schema = report_schema()
    jsonschema.validate(doc, schema)
    assert first_problem(doc) is None
    for broken in _broken(doc):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, schema)
        assert first_problem(broken) is not None
        with pytest.raises(InputError, match="not a uk-depscan JSON report"):
            report_from_dict(broken)


def test_values_outside_closed_sets_are_refused(doc: dict[str, Any]) -> None:
    """The schema leaves the action wording open; reading it back does not."""
    broken = copy.deepcopy(doc)
    broken["targets"][0]["gaps"][0]["action"] = "panic"
    assert first_problem(broken) is None
    with pytest.raises(InputError, match="unknown action 'panic'"):
        report_from_dict(broken)


def test_diff_refuses_a_damaged_report(doc: dict[str, Any], tmp_path: Path) -> None:
    broken = copy.deepcopy(doc)
    del broken["targets"][0]["imports"]
    saved = tmp_path / "broken.json"
    saved.write_text(json.dumps(broken))
    code, out, err = run_cli(["diff", str(saved), str(saved)])
    assert code == 2 and out == ""
    assert err == (
        f"uk-depscan: error: {saved}: not a uk-depscan JSON report (schema_version 1): /targets/0: missing 'imports'\n"
    )


# -- the HTML report's views (issue 20 item 1) -----------------------------------------------------
def test_needed_via_is_the_chain_the_reasons_name(doc: dict[str, Any]) -> None:
    """The "needed via" of each gap row (the HTML column, the chart by library) is the chain the
    gap's own reason names: the target's chain, not the start-up baseline's (a syscall in both
    showed ld-linux-x86-64.so.2 beside "needed via libonnxruntime.so.1")."""
    t = report_from_dict(doc).targets[0]
    assert t.syscalls is not None
    both = {f.name for f in t.syscalls.syscalls} & {f.name for f in t.syscalls.baseline}
    rows = build_target_views(t).rows
    assert any(r.gap.name in both for r in rows)  # the case the fix is for is in the fixture
    for r in rows:
        named = [x for x in r.gap.reasons if x.startswith("needed via ")]
        if r.evidence is None:
            assert not named and r.needed_via == ()
            continue
        assert named == [
            f"needed via {len(r.needed_via)} librar{'y' if len(r.needed_via) == 1 else 'ies'}: "
            + ", ".join(r.needed_via)
        ]
        if r.gap.name in both:
            assert r.evidence in t.syscalls.syscalls
    html = render_html(report_from_dict(doc))
    for r in rows[:5]:
        assert ", ".join(f'<span class="id">{x}</span>' for x in r.needed_via) in html


def test_first_screen_views(doc: dict[str, Any]) -> None:
    t = report_from_dict(doc).targets[0]
    v = build_target_views(t)
    # the fragment: every option not already on, then what it drags in, once each
    expect: list[str] = []
    for k in v.kconfig_groups:
        if not k.already_on:
            expect += [f"{o}=y" for o in (k.option, *k.drags_in) if f"{o}=y" not in expect]
    assert list(v.kconfig_fragment) == expect and all(line.startswith("CONFIG_") for line in expect)
    # the work lists: top_actions regrouped, implement first, nothing lost or added
    order = [a for a, _ in v.work_by_action]
    assert order == sorted(
        order, key=[Action.IMPLEMENT, Action.FAKE, Action.STUB, Action.INVESTIGATE, Action.KEEP].index
    )
    assert sorted(r.gap.name for _, rows in v.work_by_action for r in rows) == sorted(r.gap.name for r in v.top_actions)
    # the charts count every gap once per bar kind (per dependency: once per library of its chain)
    assert sum(b.total for b in v.status_tier) == len(t.gaps) == sum(b.total for b in v.by_unikraft_library)
    assert sum(b.total for b in v.by_dependency) == sum(len(r.needed_via) for r in v.rows)
    assert [b.total for b in v.by_unikraft_library] == sorted((b.total for b in v.by_unikraft_library), reverse=True)
    tiers = dict(v.tier_counts)
    for tier in Tier:
        assert sum(n for b in v.status_tier for k, n in b.segments if k is tier) == tiers[tier]


def test_fragment_leaves_out_options_already_on_and_unnamed_groups() -> None:
    from uk_depscan.model import KconfigGroup
    from uk_depscan.report.views import NO_OPTION, kconfig_fragment

    groups = (
        KconfigGroup("CONFIG_A", ("a",), already_on=True),
        KconfigGroup("CONFIG_B", ("b",), drags_in=("CONFIG_C",)),
        KconfigGroup(NO_OPTION, ("x",)),
        KconfigGroup("CONFIG_C", ("c",)),
    )
    assert kconfig_fragment(groups) == ("CONFIG_B=y", "CONFIG_C=y")
