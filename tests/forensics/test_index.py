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


def test_a_copy_cut_to_its_first_quarter_is_a_candidate_through_the_head_bands(outputs, monkeypatch):
    """A truncated copy is a subset of its source: cut to a quarter of a long answer its Jaccard with the whole is
    ~0.25, which the bands miss about half the time; long answers are also banded by their first half."""
    from distillguard.forensics import index as index_mod
    from distillguard.forensics.normalize import tokens

    long = [o for o in outputs if len(tokens(o.answer)) >= 120][:20]
    assert len(long) == 20

    def found(idx) -> int:
        hits = 0
        for o in long:
            words = o.answer.split(" ")
            cut = " ".join(words[: len(words) // 4])
            hits += any(c.entry.id == o.id and c.containment > 0.8 for c in _query(idx, cut))
        return hits

    index = OutputIndex.memory()
    index.add_outputs(outputs)
    assert found(index) == 20
    monkeypatch.setattr(index_mod, "HEAD_MIN_TOKENS", 10**9)  # without the head bands
    whole_only = OutputIndex.memory()
    whole_only.add_outputs(outputs)
    missed = 20 - found(whole_only)
    assert missed >= 3, missed


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


# ---- the Redis layout against the embedded one --------------------------------------------------
def _redis_io(redis_url, prefix):
    import redis

    from distillguard.forensics.redisio import RedisIO

    return RedisIO(redis.Redis.from_url(redis_url), prefix)


def _copies(outputs, n):
    """n outputs that are copies of a few answers (under new ids): buckets with many rows."""
    from distillguard.forensics.index import Output

    return [Output(f"dup_{i:04d}", "org_c", 5000.0 + i, o.prompt, o.answer)
            for i, o in zip(range(n), (outputs[i % 3] for i in range(n)))]


def test_redis_and_disk_give_the_same_matches(tmp_path, redis_url, redis_prefix, outputs, monkeypatch):
    import numpy as np

    from distillguard.forensics import entries, redisio

    monkeypatch.setattr(entries, "BLOCK_BYTES", 10_000)  # Redis column blocks of 71 rows: writes span blocks
    monkeypatch.setattr(redisio, "CHUNK", 1000)  # and bulk reads and writes take several script calls
    data = outputs[:200] + _copies(outputs, 100)  # rows span several Redis hashes of 256 rows
    rds = OutputIndex.redis(redis_url, prefix=redis_prefix)
    disk = OutputIndex.memory(directory=tmp_path / "ix")
    for ix in (rds, disk):
        ix.add_outputs(data[:150])
        ix.add_outputs(data[150:])
    disk.save()
    disk = OutputIndex.open_dir(tmp_path / "ix")
    rng = random.Random(5)
    queries = [desensitize_placeholders(o.answer, rng) for o in outputs[:200:2]] + ["", "one two"]
    sk = disk.sketcher.batch(queries)
    a, b = rds.score(sk.values, sk.sizes), disk.score(sk.values, sk.sizes)
    assert len(a.query) > 100
    for x, y in zip((a.query, a.row, a.jaccard, a.containment), (b.query, b.row, b.jaccard, b.containment)):
        assert np.array_equal(x, y)
    # whole entries read back equal
    rows = list(range(0, 300, 7))
    for e, f in zip(rds.entries.get_many(rows), disk.entries.get_many(rows), strict=True):
        assert (e.row, e.id, e.org, e.ts, e.size, e.psize) == (f.row, f.id, f.org, f.ts, f.size, f.psize)
        assert np.array_equal(e.sig, f.sig) and np.array_equal(e.psig, f.psig)
    assert rds.entries.known([data[299].id, "req_never"]) == [True, False]
    # a reader keeping no column blocks (reads rows one by one) scores the same
    uncached = OutputIndex.redis(redis_url, prefix=redis_prefix)
    uncached.entries._blocks.limit = 0
    c = uncached.score(sk.values, sk.sizes)
    assert np.array_equal(c.row, a.row) and np.array_equal(c.jaccard, a.jaccard)


def test_redis_reader_sees_rows_written_after_it_read_their_block(redis_url, redis_prefix, outputs):
    reader, writer = (OutputIndex.redis(redis_url, prefix=redis_prefix) for _ in range(2))
    writer.add_outputs(outputs[:5])
    assert _query(reader, outputs[2].answer)[0].entry.id == outputs[2].id  # the reader keeps block 0 now
    writer.add_outputs(outputs[5:8])
    best = _query(reader, outputs[6].answer)[0]
    assert (best.entry.id, best.score) == (outputs[6].id, 1.0)


def test_redis_bands_cap_crowded_buckets_like_array_bands(redis_url, redis_prefix):
    import numpy as np

    from distillguard.forensics.bands import ArrayBands, RedisBands

    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**32, (5, 128), dtype=np.uint64).astype(np.uint32)
    values = base[rng.integers(0, 5, 300)]  # 300 rows, 5 distinct sketches: buckets of ~60 rows
    values[::7, :9] += 1  # some rows differ in their first bands
    ab, rb = ArrayBands(42, 3, cap=10), RedisBands(_redis_io(redis_url, redis_prefix), 42, 3, cap=10)
    for lo in range(0, 300, 100):
        for bands in (ab, rb):
            bands.add(np.arange(lo, lo + 100), values[lo : lo + 100])
    qa, ra = ab.query(base)
    qr, rr = rb.query(base)
    assert np.array_equal(qa, qr) and np.array_equal(ra, rr)
    assert 10 <= np.bincount(qr).min() and np.bincount(qr).max() < 60  # capped, yet more than one bucket's worth


def test_redis_shingle_counts_survive_concurrent_bulk_writers(redis_url, redis_prefix, outputs, monkeypatch):
    from distillguard.forensics import weights
    from distillguard.forensics.weights import RedisShingleDF, ShingleDF

    sk = OutputIndex.memory().sketcher
    parts = [sk.batch([o.answer for o in outputs[lo : lo + 20]]) for lo in (0, 20, 40, 60)]
    mem = ShingleDF()
    w1, w2 = RedisShingleDF(_redis_io(redis_url, redis_prefix)), RedisShingleDF(_redis_io(redis_url, redis_prefix))
    for i, (p, w) in enumerate(zip(parts, (w1, w2, w1, w2))):
        mem.add_grouped(p.hashes, p.starts)
        # alternate the bulk path (rewrite chunks from a cached copy) and the counter-by-counter path
        monkeypatch.setattr(weights, "SPARSE_MAX", 0 if i < 3 else 10**9)
        w.add_grouped(p.hashes, p.starts)
    fresh = RedisShingleDF(_redis_io(redis_url, redis_prefix))
    assert fresh.docs == mem.docs == 80
    # (w1's second bulk write started from a copy that w2 had made stale: it must have re-read it)
    assert (fresh.counts == mem.counts).all() and fresh.counts.sum() > 0


def test_redis_prefixes_coexist_and_an_old_layout_is_rebuilt(redis_url, redis_prefix, outputs):
    import redis

    a = OutputIndex.redis(redis_url, prefix=redis_prefix + "a:")
    b = OutputIndex.redis(redis_url, prefix=redis_prefix + "b:")
    a.add_outputs(outputs[:10])
    b.add_outputs(outputs[10:13])
    assert (len(a), len(b)) == (10, 3)
    assert _query(b, outputs[2].answer) == [] or _query(b, outputs[2].answer)[0].score < 0.5
    r = redis.Redis.from_url(redis_url)
    old = redis_prefix + "old:"
    r.hset(old + "meta", mapping={"count": 5, "allocated": 5})  # the datasketch layout's keys
    r.hset(old + "entries", "0", b"x")
    r.set(old + "lsh_bucket_x", b"y")
    rebuilt = OutputIndex.redis(redis_url, prefix=old)
    assert len(rebuilt) == 0 and not r.exists(old + "entries", old + "lsh_bucket_x")
    assert rebuilt.add_outputs(outputs[:2]) == 2 and len(OutputIndex.redis(redis_url, prefix=old)) == 2
    assert len(OutputIndex.redis(redis_url, prefix=redis_prefix + "a:")) == 10  # other prefixes untouched
    r.close()
