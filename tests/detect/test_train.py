"""``python -m distillguard.detect.train --simulate`` trains from the simulator's DEV split."""

from __future__ import annotations

from distillguard.detect import train
from distillguard.detect.model import ScoringModel


def test_train_simulate_writes_a_loadable_model(tmp_path):
    out = tmp_path / "model.json"
    assert train.main(["--simulate", "tiny", "--seeds", "1", "--workdir", str(tmp_path / "sim"),
                       "--out", str(out)]) == 0
    m = ScoringModel.load(out)
    assert m.meta["trained_on"].startswith("python -m distillguard.detect.train --simulate tiny --seeds 1")
    assert "/tmp" not in m.meta["trained_on"]
    assert (tmp_path / "sim" / "dev_tiny_1.jsonl").exists()
    assert m.benign_scores  # calibrated on the benign dev account
