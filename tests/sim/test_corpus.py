"""Dev/test halves of the corpus: stable, disjoint, covering, conversation-grouped."""

from __future__ import annotations

from distillguard.sim.corpus import SimCorpus, split_group, split_of


def test_split_is_stable_and_groups_sharegpt_conversations():
    assert split_of("abc") == split_of("abc")
    parts = [split_of(f"rec-{i}", {"conversation_id": "kaMxTnA_" + str(i)}) for i in range(20)]
    assert len(set(parts)) == 1  # every part of one chat lands on the same side
    assert split_group("x", {"conversation_id": "kaMxTnA_3"}) == "sharegpt:kaMxTnA"
    sides = {split_of(f"rec-{i}") for i in range(64)}
    assert sides == {"dev", "test"}


def test_dev_and_test_are_disjoint_and_cover_the_corpus(test_corpus):
    dev, all_ = SimCorpus(None, "dev"), SimCorpus(None, "all")
    d, t = dev.ids(), test_corpus.ids()
    assert d and t and not (d & t)
    assert d | t == all_.ids()
    for name in ("gsm8k", "humaneval", "code", "tool", "chat", "alpaca_eval"):
        n_all = len(all_.pool(name))
        assert n_all > 0
        assert 0.3 < len(dev.pool(name)) / n_all < 0.7, name  # roughly halves


def test_pools_keep_topics_for_chat(test_corpus):
    groups = test_corpus.by_topic(*test_corpus.user_pools)
    assert sum(len(v) for v in groups.values()) == len(test_corpus.pool(*test_corpus.user_pools))
    assert len(groups) >= 3
