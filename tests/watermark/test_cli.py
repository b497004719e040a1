import json

import typer
from typer.testing import CliRunner

from distillguard.cli.watermark import watermark_app
from distillguard.config import load_settings
from distillguard.services import open_store

runner = CliRunner()


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(watermark_app, name="watermark")
    return app


def test_embed_and_detect_json(dg_home, dense_text):
    access = open_store(load_settings()).access
    a, b = access.apply("Acme", "tests"), access.apply("Globex", "tests")
    app = _app()
    r = runner.invoke(app, ["watermark", "embed", "--org", a.id], input=dense_text)
    assert r.exit_code == 0, r.output
    marked = r.stdout
    assert marked != dense_text
    r = runner.invoke(app, ["watermark", "detect", "--json"], input=marked)
    assert r.exit_code == 0, r.output
    v = json.loads(r.stdout)
    assert set(v) == {"detected", "p_value", "z", "tokens_scored", "org"}
    assert v["detected"] is True and v["org"] == a.id and v["p_value"] < 1e-6
    r = runner.invoke(app, ["watermark", "detect", "--org", b.id, "--json"], input=marked)
    v = json.loads(r.stdout)
    assert v["detected"] is False and v["org"] is None
    r = runner.invoke(app, ["watermark", "detect", "--json"], input=dense_text)
    assert json.loads(r.stdout)["detected"] is False


def test_unknown_org_fails_cleanly(dg_home):
    r = runner.invoke(_app(), ["watermark", "embed", "--org", "org_nope"], input="hello")
    assert r.exit_code == 1
