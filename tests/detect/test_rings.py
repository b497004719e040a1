"""Ring building blocks: the topic neighbourhood graph, merging many members, the shared scaffold shown."""

from __future__ import annotations

import random

import numpy as np
from sklearn.cluster import DBSCAN

from distillguard.detect import rings as R
from distillguard.detect.account import AccountState
from distillguard.detect.features import extract

from . import traffic as T


def _profiles(seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, 256))
    x = np.vstack([c + rng.normal(scale=0.25, size=(9, 256)) for c in centres]  # 12 tight groups
                  + [rng.normal(size=(300, 256))]  # noise
                  + [np.repeat(rng.normal(size=(1, 256)), 4, axis=0)])  # identical profiles: distance 0
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_topic_neighbours_give_dbscan_the_cosine_neighbourhoods(monkeypatch):
    x = _profiles()
    want = DBSCAN(eps=R.TOPIC_EPS, min_samples=R.MIN_MEMBERS, metric="cosine").fit_predict(x)
    assert len(set(want.tolist()) - {-1}) == 13  # the groups and the identical profiles are clusters
    monkeypatch.setattr(R, "TOPIC_WORKING_MB", 0.05)  # blocks of 31 rows
    assert int(0.05 * 2**20) // (4 * len(x)) == 31
    graph = R.topic_neighbours(x, R.TOPIC_EPS)
    got = DBSCAN(eps=R.TOPIC_EPS, min_samples=R.MIN_MEMBERS, metric="precomputed").fit_predict(graph)
    assert (got == want).all()
    assert (graph != graph.T).nnz == 0  # symmetric
    dense = 1.0 - x @ x.T
    r, c = graph.nonzero()
    assert np.allclose(graph[r, c].A1, np.maximum(dense[r, c], 0.0), atol=1e-5)
    close = (dense <= R.TOPIC_EPS - 1e-4) & ~np.eye(len(x), dtype=bool)
    assert graph.nnz >= close.sum()
    same = graph[len(x) - 4 :, len(x) - 4 :].toarray()  # the identical profiles: each is the others' neighbour
    assert (same[~np.eye(4, dtype=bool)] <= 1e-6).all() and graph[len(x) - 4 :, len(x) - 4 :].nnz == 12


def test_merging_many_members_equals_merging_one_by_one():
    rng = random.Random(4)
    states = [AccountState(f"m{i}").extend(extract(r) for r in T.harvester(f"m{i}", 60 + 10 * i, rng))
              for i in range(5)]
    one_by_one = AccountState("ring")
    one_by_one.members = []
    for s in states:
        one_by_one.merge(s)
    ring = R.Ring(id="ring", members=[s.org for s in states], similarity=1.0, shared_scaffold="")
    bulk = R.merged(states, ring)
    assert bulk.vector() == one_by_one.vector()
    assert bulk.times == one_by_one.times == sorted(t for s in states for t in s.times)
    assert (bulk.reuse_heads, bulk.top_head, bulk.members) == (one_by_one.reuse_heads, one_by_one.top_head,
                                                               one_by_one.members)


def test_shared_scaffold_breaks_ties_by_text():
    a, b = AccountState("a"), AccountState("b")
    for st, text in ((a, "rewrite the following answer so that it explains"), (b, "here is a question and an answer")):
        st.n = 10
        st.heads[1] = 10
        st.skeletons[1] = f"{text} | end"
    assert R._shared_scaffold([a, b]) == R._shared_scaffold([b, a]) == "here is a question and an answer"


def test_shedding_rare_scaffolds_changes_nothing_read_after_the_stream():
    from distillguard.detect.reasons import example_reasons

    rng = random.Random(9)
    recs = T.harvester("h", 150, rng) + T.chatter("h", 150, rng)
    st = AccountState("h").extend(extract(r) for r in recs)
    before = (R.dominant_scaffolds(st), example_reasons(st), st.top_scaffold(), st.vector())
    n_skel = len(st.skeletons) + len(st.tail_skeletons) + len(st.head_example)
    st.shed_rare_scaffolds()
    assert (R.dominant_scaffolds(st), example_reasons(st), st.top_scaffold(), st.vector()) == before
    assert before[0] and len(st.skeletons) + len(st.tail_skeletons) + len(st.head_example) < n_skel / 2
