"""Tracing with worker processes gives what one process gives, watermark evidence and pools included."""

import os

from distillguard.forensics.formats import DatasetRecord, read_dataset
from distillguard.forensics.index import Output, OutputIndex
from distillguard.forensics.trace import prompt_evidence, trace_records
from distillguard.forensics.wmevidence import WatermarkEvidence
from distillguard.watermark import Watermarker

from .test_trace import _dataset

WM = Watermarker("workers-test-secret")


def _run(index, records, stored, workers):
    conn = {"pid": os.getpid()}  # stands for a connection: usable only in the process that opened it

    def fetch(ids):
        assert conn["pid"] == os.getpid(), "a worker used the parent's connection"
        return {i: stored[i] for i in ids if i in stored}

    def reopen():
        conn["pid"] = os.getpid()

    ev = WatermarkEvidence(WM, ["org_a", "org_b"])
    res = trace_records(records, index, evidence=[prompt_evidence(index), ev], originals_many=fetch, batch=16,
                        workers=workers, worker_init=reopen)
    return res, ev


def test_workers_give_the_same_records_and_watermark_pools(tmp_path, outputs, answers, monkeypatch):
    import distillguard.forensics.wmevidence as wmevidence

    scans = {"n": 0, "pid": os.getpid()}
    real = wmevidence.text_positions

    def counted(text, lexicon=None):
        if os.getpid() == scans["pid"]:
            scans["n"] += 1
        return real(text, lexicon)

    monkeypatch.setattr(wmevidence, "text_positions", counted)
    marked = [Output(o.id, o.org, o.ts, o.prompt, WM.apply(o.answer, o.org)) for o in outputs]
    index = OutputIndex.memory()
    index.add_outputs(marked)
    stored = {o.id: o.answer for o in marked}
    path, derived = _dataset(tmp_path, marked, answers)
    records = list(read_dataset(path))
    # unmatched records that carry an org's watermark on their own: the parent's evidence pass needs their slots
    records += [DatasetRecord(len(records) + k, (("", WM.apply(a, "org_b")),)) for k, (_, a) in
                enumerate(answers[300:330])]
    one, ev1 = _run(index, records, stored, 1)
    in_parent = scans["n"]
    two, ev2 = _run(index, records, stored, 2)
    assert one == two
    assert in_parent > 0 and scans["n"] == in_parent  # with workers, the slots came from them
    found = {r["index"] for r in one["records"] if r["derived"]}
    assert len(found & set(derived)) >= 36  # not vacuous: the copies are traced ...
    assert one["summary"]["watermark"]["orgs"] and ev2._prepared == {}  # ... the pools filled, every slot used


def test_workers_read_a_redis_index(tmp_path, outputs, answers, redis_url, redis_prefix):
    """Forked workers share the Redis index's client setup: each opens its own connections (redis-py's pool)."""
    index = OutputIndex.redis(redis_url, prefix=redis_prefix)
    index.add_outputs(outputs)
    stored = {o.id: o.answer for o in outputs}
    path, derived = _dataset(tmp_path, outputs, answers)
    records = list(read_dataset(path))
    one, _ = _run(index, records, stored, 1)
    two, _ = _run(OutputIndex.redis(redis_url, prefix=redis_prefix), records, stored, 2)
    assert one == two
    assert len({r["index"] for r in two["records"] if r["derived"]} & set(derived)) >= 36


def test_a_failing_lookup_in_a_worker_fails_the_trace(tmp_path, outputs, answers):
    import pytest

    index = OutputIndex.memory()
    index.add_outputs(outputs)
    path, _ = _dataset(tmp_path, outputs, answers)

    def broken(ids):
        raise ConnectionError("ledger unreachable")

    with pytest.raises(ConnectionError, match="ledger unreachable"):
        trace_records(list(read_dataset(path)), index, originals_many=broken, batch=16, workers=2)
