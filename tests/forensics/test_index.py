import random

import pytest

from distillguard.forensics.adversary import desensitize_placeholders
from distillguard.forensics.index import OutputIndex
from distillguard.ledger.record import LedgerRecord


def _query(index, text):
    return index.candidates([index.sketcher.sketch(text)])[0]


def test_stored_output_is_found_after_desensitization(outputs):
    index = OutputIndex.memory()
    assert index.add_outputs(outputs) == len(outputs)
    rng = random.Random(1)
    for o in outputs[:30]:
        best = _query(index, desensitize_placeholders(o.answer, rng))[0]
        assert best.entry.id == o.id and best.entry.org == o.org
        assert best.score > 0.8


def test_adding_the_same_ids_twice_is_a_no_op(outputs):
    index = OutputIndex.memory()
    index.add_outputs(outputs[:10])
    assert index.add_outputs(outputs[:15]) == 5
    assert len(index) == 15


def _ledger_record(i, o, ts):
    return LedgerRecord(id=o.id, ts=ts, endpoint="/v1/chat/completions", status=200, org=o.org, key="key_1",
                        request={"model": "m", "messages": [{"role": "user", "content": o.prompt}]},
                        response_text=o.answer)


class FakeLedger:
    def __init__(self, records):
        self.records = records

    def iter_records(self, since=None):
        return iter(sorted((r for r in self.records if since is None or r.ts >= since), key=lambda r: (r.ts, r.id)))


def test_incremental_update_and_persistence_round_trip(tmp_path, outputs):
    d = tmp_path / "forensics"
    recs = [_ledger_record(i, o, 1000.0 + i) for i, o in enumerate(outputs[:20])]
    recs.append(LedgerRecord(id="req_err", ts=1001.5, endpoint="/v1/chat/completions", status=429, org="org_a"))
    ledger = FakeLedger(recs)
    index = OutputIndex.open_dir(d)
    assert index.update_from_ledger(ledger) == 20  # the 429 is not an output
    assert index.update_from_ledger(ledger) == 0  # nothing new
    # a late record stamped before the high-water mark (long stream) and a new one are both picked up
    late = _ledger_record(0, outputs[20], 1010.0)
    new = _ledger_record(0, outputs[21], 2000.0)
    ledger.records += [late, new]
    reopened = OutputIndex.open_dir(d)
    assert len(reopened) == 20
    assert reopened.update_from_ledger(ledger) == 2
    again = OutputIndex.open_dir(d)
    assert len(again) == 22
    best = _query(again, outputs[21].answer)[0]
    assert best.entry.id == outputs[21].id and best.entry.org == outputs[21].org
    assert _query(again, outputs[3].answer)[0].entry.id == outputs[3].id


def test_memory_mapped_load_then_add_then_save_again(tmp_path, outputs):
    import numpy as np

    d = tmp_path / "ix"
    index = OutputIndex.memory(directory=d)
    index.add_outputs(outputs[:10])
    index.save()
    mm = OutputIndex.open_dir(d)
    assert isinstance(mm.entries._base["sig"], np.memmap)  # read from disk, not copied into RAM
    mm.add_outputs(outputs[10:12])
    # rows not saved yet and rows on disk are both found
    assert len(mm) == 12 and _query(mm, outputs[11].answer)[0].entry.id == outputs[11].id
    assert _query(mm, outputs[2].answer)[0].entry.id == outputs[2].id
    mm.save()
    again = OutputIndex.open_dir(d)
    assert len(again) == 12 and again.entries.known([outputs[11].id, "req_never"]) == [True, False]
    for o in (outputs[1], outputs[11]):
        best = _query(again, o.answer)[0]
        assert (best.entry.id, best.entry.org, best.score) == (o.id, o.org, 1.0)


def test_old_format_index_is_rebuilt(tmp_path, outputs):
    d = tmp_path / "old"
    d.mkdir()
    (d / "lsh.pkl").write_bytes(b"old pickle")
    (d / "entries.json").write_text('{"ids": []}')
    index = OutputIndex.open_dir(d)
    assert len(index) == 0 and not (d / "lsh.pkl").exists()
    index.add_outputs(outputs[:3])
    index.save()
    assert len(OutputIndex.open_dir(d)) == 3


def test_redis_storage(redis_url, redis_prefix, outputs):
    import redis

    index = OutputIndex.redis(redis_url, prefix=redis_prefix)
    assert index.add_outputs(outputs[:40]) == 40
    # another process opening the same prefix sees the same index
    other = OutputIndex.redis(redis_url, prefix=redis_prefix)
    assert len(other) == 40
    assert other.add_outputs(outputs[:45]) == 5
    best = _query(other, desensitize_placeholders(outputs[7].answer, random.Random(3)))[0]
    assert best.entry.id == outputs[7].id and best.entry.org == outputs[7].org
    # shingle document frequencies are shared in Redis too, equal to the embedded index's
    mem = OutputIndex.memory()
    mem.add_outputs(outputs[:45])
    fresh = OutputIndex.redis(redis_url, prefix=redis_prefix)
    hv = mem.sketcher.shingle_hashes(mem.sketcher.sketch(outputs[3].answer).toks)
    assert fresh.df.docs == mem.df.docs == 45
    assert (fresh.df.df(hv) == mem.df.df(hv)).all() and fresh.df.df(hv).max() >= 1
    assert _query(index, outputs[42].answer)[0].entry.id == outputs[42].id
    r = redis.Redis.from_url(redis_url)
    tag = redis_prefix[len("dgtest:"):].encode()
    assert all(k.startswith(redis_prefix.encode()) for k in r.scan_iter(match=b"*" + tag + b"*"))
    assert sum(1 for _ in r.scan_iter(match=redis_prefix + "*")) > 0
    r.close()


def test_unrelated_text_has_no_strong_candidate(outputs):
    index = OutputIndex.memory()
    index.add_outputs(outputs)
    text = ("Quarterly revenue rose because the new warehouse cut shipping delays, while the marketing team "
            "shifted its spending toward regional radio and away from billboards near the highway exits.")
    assert all(c.score < 0.5 for c in _query(index, text))


@pytest.mark.parametrize("n", [0])
def test_empty_index_returns_no_candidates(n):
    index = OutputIndex.memory()
    assert index.candidates([index.sketcher.sketch("anything at all here")]) == [[]]
