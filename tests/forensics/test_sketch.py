import numpy as np

from distillguard.forensics.bands import ArrayBands, band_keys
from distillguard.forensics.normalize import tokens
from distillguard.forensics.sketch import Sketcher


def test_batch_sketches_equal_datasketch_minhash_of_the_shingle_hashes(answers):
    sk = Sketcher()
    texts = [a for _, a in answers[:60]] + ["", "one", "two words", "the cat sat on the mat"]
    batch = sk.batch(texts)
    assert batch.values.shape == (len(texts), sk.num_perm)
    for i, text in enumerate(texts):
        h = batch.shingle_hashes(i)
        m = sk.proto.copy()
        if len(h):
            m.update_batch(list(h))  # datasketch's own affine32 MinHash over the same shingle hashes
        assert np.array_equal(m.hashvalues, batch.values[i]), i
        assert batch.sizes[i] == len(set(h.tolist())) == len(h)
        one = sk.sketch(text)  # a batch of one gives the same sketch
        assert np.array_equal(one.values, batch.values[i]) and one.size == batch.sizes[i]
    assert batch.sizes[-4] == 0 and batch.sizes[-3] == 1 and batch.sizes[-2] == 1
    assert batch.sizes[-1] == 4  # "the cat sat", "cat sat on", "sat on the", "on the mat"


def test_shingle_hashes_depend_on_token_order_and_not_on_formatting():
    sk = Sketcher()
    a = sk.shingle_hashes(tokens("Open the file, then save it"))
    assert np.array_equal(a, sk.shingle_hashes(tokens("**Open** the `file` -- then save it")))
    assert not np.array_equal(a, sk.shingle_hashes(tokens("open file the, then it save")))


def test_array_bands_find_rows_sharing_a_band_before_and_after_save(tmp_path, answers):
    sk = Sketcher()
    batch = sk.batch([a for _, a in answers[:50]])
    bands = ArrayBands(42, 3)
    bands.add(np.arange(30), batch.values[:30])
    bands.save(tmp_path)  # base on disk (memory-mapped) ...
    bands.add(np.arange(30, 50), batch.values[30:])  # ... plus an in-memory delta
    qi, rows = bands.query(batch.values[[3, 40]])
    assert {(0, 3), (1, 40)} <= set(zip(qi.tolist(), rows.tolist()))
    loaded = ArrayBands.load(tmp_path, 42, 3)
    qi, rows = loaded.query(batch.values[[3, 40]])
    assert (0, 3) in set(zip(qi.tolist(), rows.tolist()))
    assert rows.max() < 30  # the delta was not saved
    keys = band_keys(batch.values[:2], 42, 3)
    assert keys.shape == (2, 42) and keys.dtype == np.uint32


def test_a_bucket_contributes_at_most_cap_rows():
    values = np.tile(np.arange(128, dtype=np.uint32), (500, 1))  # one text stored 500 times
    bands = ArrayBands(42, 3, cap=20)
    bands.add(np.arange(500), values)
    qi, rows = bands.query(values[:1])
    assert 0 < len(rows) <= 42 * 20 and set(qi.tolist()) == {0}
