"""Sharding accounts across worker processes gives the single-process report."""

from __future__ import annotations

import orjson

from distillguard.detect.engine import Detector
from distillguard.detect.parallel import run_file


def test_two_workers_give_the_same_verdicts_as_one(population, tmp_path):
    recs, _ = population
    path = tmp_path / "traffic.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in recs))
    det = Detector()
    one = {a.org: (round(a.score, 9), a.flagged, a.label, a.flagged_after, a.ring is None) for a in det.run(recs).accounts}
    phases: dict[str, float] = {}
    two = {a.org: (round(a.score, 9), a.flagged, a.label, a.flagged_after, a.ring is None)
           for a in run_file(det, path, workers=2, phases=phases).accounts}
    assert one == two and len(one) > 20
    assert set(phases) == {"workers", "collect", "report"} and all(v >= 0.0 for v in phases.values())
    assert phases["workers"] > phases["collect"]  # extracting and aggregating is most of a worker's job


def test_account_state_pickles_exactly(population):
    """Workers send their accounts to the parent pickled, with the topic arrays sparse: nothing may change, pending
    (unfolded) requests included."""
    import pickle
    from array import array

    from distillguard.detect.account import AccountState
    from distillguard.detect.features import TOPIC_DIM, extract

    recs, _ = population
    st = AccountState("a")
    for r in recs[:700]:
        st.add(extract(r))
    assert st._pending  # some requests not folded yet: they travel as they are
    back = pickle.loads(pickle.dumps(st, protocol=pickle.HIGHEST_PROTOCOL))
    assert back._pending == st._pending
    for name in ("_topic", "_topic_self", "_topic_df"):
        a, b = getattr(st, name), getattr(back, name)
        assert isinstance(b, array) and b.typecode == a.typecode and len(b) == TOPIC_DIM and bytes(a) == bytes(b)
    assert 0 < sum(1 for x in st._topic_df if x) < TOPIC_DIM  # the sparse path was taken (some buckets unused)
    assert {k: v for k, v in vars(back).items() if not k.startswith("_topic")} == \
        {k: v for k, v in vars(st).items() if not k.startswith("_topic")}
    assert back.vector() == st.vector()
    empty = pickle.loads(pickle.dumps(AccountState("e")))
    assert bytes(empty._topic) == bytes(TOPIC_DIM * 8) and empty.n == 0
