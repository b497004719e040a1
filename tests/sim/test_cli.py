"""The ``simulate`` command (registered by cli.main; tested here on its own Typer app)."""

from __future__ import annotations

import json

import orjson
import typer
from typer.testing import CliRunner

from distillguard.cli.simulate import simulate

app = typer.Typer()
app.command()(simulate)


def test_simulate_offline_writes_traffic_and_labels(dg_home, tmp_path):
    out, lab = tmp_path / "t.jsonl", tmp_path / "l.jsonl"
    args = ["--out", str(out), "--labels", str(lab), "--scenario", "tiny", "--seed", "4", "--json"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["records"] == 30 and summary["accounts"] == 3 and summary["split"] == "test"
    recs = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    labels = [orjson.loads(x) for x in lab.read_bytes().splitlines()]
    assert len(recs) == 30 and {x["org"] for x in labels} == {x["org"] for x in recs}
    first = out.read_bytes()
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0 and out.read_bytes() == first


def test_simulate_rejects_unknown_scenarios_and_remote_targets(dg_home, tmp_path):
    base = ["--out", str(tmp_path / "t.jsonl"), "--labels", str(tmp_path / "l.jsonl")]
    r = CliRunner().invoke(app, base + ["--scenario", "nope"])
    assert r.exit_code != 0 and "unknown scenario" in r.output
    (tmp_path / "dg_home").mkdir(exist_ok=True)
    r = CliRunner().invoke(app, base + ["--scenario", "tiny", "--target", "http://192.0.2.1:8000"],
                           env={"DG_ADMIN_TOKEN": "x"})
    assert r.exit_code != 0 and "loopback" in r.output
