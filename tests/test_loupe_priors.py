"""Loupe priors: shipped with CC BY 4.0 attribution and provenance; loader and validation."""

from __future__ import annotations

import csv
import json
from importlib.resources import files
from pathlib import Path

import pytest
from typer.testing import CliRunner

from uk_depscan.cli.tables import tables_app
from uk_depscan.errors import InputError, TableError
from uk_depscan.tablegen.unikraft import build_loupe_doc, dump_json
from uk_depscan.unikraft import tables as uk

LOUPE = files("uk_depscan.syscall_tables") / "loupe"


def test_priors_load_with_attribution() -> None:
    priors = uk.load_loupe_priors()
    assert len(priors) == 180
    read = priors["read"]
    assert (read.used, read.required, read.stubbable, read.fakeable) == (110, 106, 4, 4)
    assert (priors["close"].required, priors["close"].fakeable) == (21, 89)
    assert "CC BY 4.0" in read.attribution and "Loupe" in read.attribution and "ASPLOS 2024" in read.attribution
    prov = uk.loupe_provenance()
    assert prov["license"] == "CC-BY-4.0" and prov["workloads"] == 110 and "unikraft/loupedb" in prov["source"]


def test_json_matches_shipped_csv_byte_for_byte() -> None:
    text = (LOUPE / "loupedb-syscall-priors.csv").read_text(encoding="utf-8")
    doc = build_loupe_doc(text)
    assert dump_json(doc) == (LOUPE / "loupedb-syscall-priors.json").read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    assert {r["syscall"] for r in rows} == set(uk.load_loupe_priors())


def test_readme_carries_attribution() -> None:
    text = (LOUPE / "README.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in text and "Lefeuvre" in text and "creativecommons.org/licenses/by/4.0" in text


def test_counts_bounded_by_workloads() -> None:
    for p in uk.load_loupe_priors().values():
        assert 0 <= p.required <= p.used <= 110 and p.stubbable <= p.used and p.fakeable <= p.used


def test_malformed_priors(tmp_path: Path) -> None:
    doc = json.loads((LOUPE / "loupedb-syscall-priors.json").read_text())
    doc["syscalls"]["read"]["used"] = 111
    p = tmp_path / "l.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(TableError, match=r"l\.json: syscall 'read': counts must be integers in 0\.\.110"):
        uk.load_loupe_priors(p)
    del doc["attribution"]
    p.write_text(json.dumps(doc))
    with pytest.raises(TableError, match="missing key 'attribution'"):
        uk.load_loupe_priors(p)


def test_bad_csv_and_cli(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="expected columns"):
        build_loupe_doc("name,count\nread,1\n")
    out = tmp_path / "p.json"
    src = tmp_path / "loupedb-syscall-priors.csv"
    src.write_text((LOUPE / "loupedb-syscall-priors.csv").read_text())
    res = CliRunner().invoke(tables_app, ["loupe", "--csv", str(src), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_text() == (LOUPE / "loupedb-syscall-priors.json").read_text()
