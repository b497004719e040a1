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


def test_calibration_seeds_set_the_thresholds_from_held_out_traffic(tmp_path):
    sim = str(tmp_path / "sim")
    same, held = tmp_path / "same.json", tmp_path / "held.json"
    assert train.main(["--simulate", "mixed-small", "--seeds", "1", "--workdir", sim, "--out", str(same)]) == 0
    assert train.main(["--simulate", "mixed-small", "--seeds", "1", "--calibration-seeds", "2", "--workdir", sim,
                       "--out", str(held)]) == 0
    a, b = ScoringModel.load(same), ScoringModel.load(held)
    assert a.coef == b.coef  # the same fit ...
    assert a.benign_family_scores != b.benign_family_scores  # ... calibrated on other accounts
    assert b.meta["calibration"] == "held-out traffic" and "--calibration-seeds 2" in b.meta["trained_on"]
    assert b.meta["calibration_benign_accounts"] == sum(1 for _ in b.benign_scores)
    assert (tmp_path / "sim" / "dev_mixed-small_2.jsonl").exists()


def test_calibration_seeds_must_be_held_out(tmp_path):
    import pytest

    with pytest.raises(SystemExit):
        train.main(["--simulate", "tiny", "--seeds", "1", "--calibration-seeds", "1", "--workdir", str(tmp_path),
                    "--out", str(tmp_path / "m.json")])


def test_bad_calibration_seeds_fail_before_any_traffic_is_generated(tmp_path):
    import pytest

    with pytest.raises(SystemExit):
        train.main(["--simulate", "tiny", "--seeds", "1", "--calibration-seeds", "1", "--workdir", str(tmp_path)])
    assert not list(tmp_path.iterdir())  # nothing simulated first


def test_full_corpus_scenarios_come_from_the_given_directory_and_keep_their_own_name(tmp_path):
    import gzip

    import pytest

    from distillguard.upstreams.corpus import corpus_files

    corpus = tmp_path / "corpus"  # a corpus of its own: every other record of the compact one
    corpus.mkdir()
    with gzip.open(corpus_files(None)[0], "rb") as src, open(corpus / "records.jsonl", "wb") as dst:
        dst.writelines(line for i, line in enumerate(src) if i % 2)
    sim = tmp_path / "sim"
    with pytest.raises(ValueError, match="--full-corpus"):
        train.simulated_files("tiny@full", 1, "dev", sim)
    stream, labels = train.simulated_stream(["tiny", "tiny@full"], [1], "dev", sim, corpus)
    compact, full = sim / "dev_tiny_1.jsonl", sim / "dev_tiny_1_full.jsonl"
    assert compact.read_bytes() != full.read_bytes()  # the same scenario and seed over other records
    assert {d["scenario"] for d in labels.values()} == {"tiny", "tiny@full"}
    assert {org.split("/")[0] for org, _ in stream} == {"tiny", "tiny@full"}
    out = tmp_path / "m.json"
    assert train.main(["--simulate", "tiny@full", "--seeds", "1", "--workdir", str(sim), "--full-corpus", str(corpus),
                       "--out", str(out)]) == 0
    assert "--full-corpus" in ScoringModel.load(out).meta["trained_on"]
