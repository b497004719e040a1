"""The write-ahead journal: lines on disk at once, ownership by flock, orphan adoption, torn tails."""

from __future__ import annotations

import fcntl
import os
import threading

import orjson
import pytest

from distillguard.ledger.journal import Journal, read_rows


def _lines(j: Journal) -> list[dict]:
    out = []
    for seg in j.segments()[0]:
        out += [orjson.loads(x) for x in seg.path.read_bytes().splitlines()]
    return out


def test_append_writes_one_line_per_record(tmp_path):
    j = Journal(tmp_path / "j", "replica/1 x")
    j.open()
    j.append({"id": "a", "n": 1})
    j.append({"id": "b", "big": 2**70, "t": (1, 2)})  # beyond orjson: stdlib fallback
    (seg,), _ = j.segments()
    assert seg.path.name.startswith("replica_1_x-")
    assert _lines(j) == [{"id": "a", "n": 1}, {"id": "b", "big": 2**70, "t": [1, 2]}]
    assert seg.size == seg.path.stat().st_size and seg.records == 2 and j.appended == 2


def test_appends_from_many_threads_never_interleave(tmp_path):
    j = Journal(tmp_path, "r")
    j.open()

    def work(t: int) -> None:
        for i in range(300):
            j.append({"id": f"{t}-{i}", "pad": "x" * (i % 50)})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [d["id"] for d in _lines(j)]
    assert len(ids) == 2400 and len(set(ids)) == 2400


def test_segments_are_flocked_while_owned(tmp_path):
    j = Journal(tmp_path, "r")
    j.open()
    (seg,), _ = j.segments()
    fd = os.open(seg.path, os.O_RDONLY)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)


def test_live_segments_are_not_adopted_dead_ones_are(tmp_path):
    live = Journal(tmp_path, "live")
    live.open()
    live.append({"id": "l"})
    dead = Journal(tmp_path, "dead")
    dead.open()
    dead.append({"id": "d1"})
    dead.rotate()
    dead.append({"id": "d2"})
    dead_paths = {s.path for s in dead.segments()[0]}
    for s in dead.segments()[0]:
        os.close(s.fd)  # the process "dies": its locks go, its files stay

    j = Journal(tmp_path, "new")
    j.open()
    found = j.adopt_orphans()
    assert {s.path for s in found} == dead_paths
    assert j.adopt_orphans() == []  # already ours
    other = Journal(tmp_path, "other")
    other.open()
    assert other.adopt_orphans() == []  # held by `j` now
    rows = [r for s in found for r in read_rows(s, 0, s.size, 100)[0]]
    assert sorted(r["id"] for r in rows) == ["d1", "d2"]


def test_rotate_seals_and_remove_deletes(tmp_path):
    j = Journal(tmp_path, "r", segment_max_bytes=10)
    j.open()
    assert j.rotate() is False  # nothing to seal
    j.append({"id": "a"})
    assert j.needs_rotation()
    assert j.rotate() is True
    old, cur = j.segments()[0]
    assert old.sealed and not cur.sealed and not old.done
    old.committed = old.size
    assert old.done
    j.remove(old)
    assert not old.path.exists() and j.segments()[0] == [cur]
    with pytest.raises(RuntimeError):
        j.remove(cur)


def test_close_keeps_uncommitted_segments_and_releases_them(tmp_path):
    j = Journal(tmp_path, "r")
    j.open()
    j.append({"id": "a"})
    j.rotate()
    (s1, s2) = j.segments()[0]
    j.close()
    assert s1.path.exists() and not s2.path.exists()  # s2 was empty
    with pytest.raises(RuntimeError):
        j.append({"id": "b"})
    k = Journal(tmp_path, "k")
    k.open()
    assert [s.path for s in k.adopt_orphans()] == [s1.path]


def test_read_rows_batches_and_skips_a_torn_tail(tmp_path):
    j = Journal(tmp_path, "w")
    j.open()
    for i in range(5):
        j.append({"id": i})
    (seg,), _ = j.segments()
    with open(seg.path, "ab") as f:
        f.write(b"not json\n" + b'{"id": 99, "tor')  # a garbage line, then a write cut short
    for s in j.segments()[0]:
        os.close(s.fd)
    k = Journal(tmp_path, "k")
    (orphan,) = k.adopt_orphans()
    rows, consumed, lines = read_rows(orphan, 0, orphan.size, 3)
    assert [r["id"] for r in rows] == [0, 1, 2] and lines == 3
    rows2, consumed2, lines2 = read_rows(orphan, consumed, orphan.size, 100)
    assert [r["id"] for r in rows2] == [3, 4]
    assert consumed + consumed2 == orphan.size and lines2 == 4


def test_read_rows_handles_lines_longer_than_a_chunk(tmp_path):
    j = Journal(tmp_path, "w")
    j.open()
    j.append({"id": "big", "text": "z" * (3 << 20)})
    j.append({"id": "small"})
    (seg,), _ = j.segments()
    rows, consumed, _ = read_rows(seg, 0, seg.size, 10)
    assert [r["id"] for r in rows] == ["big", "small"] and consumed == seg.size


def test_fsync_policy_is_validated(tmp_path):
    with pytest.raises(ValueError):
        Journal(tmp_path, "r", fsync="sometimes")  # type: ignore[arg-type]
    j = Journal(tmp_path, "r", fsync="always")
    j.open()
    j.append({"id": "a"})
    assert j.segments()[0][0].synced == j.segments()[0][0].size
