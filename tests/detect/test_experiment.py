"""``python -m distillguard.detect.experiment --evaluate``: the shipped (or a given) model on test seeds, no training."""

from __future__ import annotations

from distillguard.detect import experiment, train
from distillguard.detect.model import ScoringModel


def test_evaluate_scores_a_model_on_the_test_split_without_training(tmp_path, capsys):
    sim = tmp_path / "sim"
    assert experiment.main(["--scenarios", "tiny", "--test-seeds", "3", "--evaluate", "shipped",
                            "--workdir", str(sim)]) == 0
    out = capsys.readouterr().out
    assert ScoringModel.load().meta["trained_on"] in out
    assert any(line.split()[:2] == ["tiny", "3"] for line in out.splitlines())  # 3 accounts
    assert sorted(p.name for p in sim.iterdir()) == ["test_tiny_3.jsonl", "test_tiny_3.labels.jsonl"]  # no dev split


def test_evaluate_takes_a_model_file(tmp_path, capsys):
    sim, model = tmp_path / "sim", tmp_path / "m.json"
    assert train.main(["--simulate", "tiny", "--seeds", "1", "--workdir", str(sim), "--out", str(model)]) == 0
    capsys.readouterr()
    assert experiment.main(["--scenarios", "tiny", "--test-seeds", "3", "--evaluate", str(model),
                            "--workdir", str(sim)]) == 0
    assert "--simulate tiny --seeds 1" in capsys.readouterr().out


def test_full_corpus_scenarios_without_the_corpus_fail_before_anything_is_simulated(tmp_path):
    import pytest

    for main in (lambda: experiment.main(["--scenarios", "tiny@full", "--test-seeds", "3", "--evaluate", "shipped",
                                          "--workdir", str(tmp_path)]),
                 lambda: train.main(["--simulate", "tiny@full", "--seeds", "1", "--workdir", str(tmp_path)])):
        with pytest.raises(SystemExit):
            main()
    assert not list(tmp_path.iterdir())


def test_evaluate_refuses_an_out_file_it_would_not_write(tmp_path, capsys):
    import pytest

    out = tmp_path / "model.json"
    with pytest.raises(SystemExit):
        experiment.main(["--scenarios", "tiny", "--test-seeds", "3", "--evaluate", "shipped",
                         "--workdir", str(tmp_path), "--out", str(out)])
    assert "--out" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.iterdir())
