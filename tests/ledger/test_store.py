"""LedgerStore on SQLite and Postgres: round trip, idempotence, ordered reads, totals, retention."""

from __future__ import annotations

import sqlalchemy as sa

from distillguard.ledger import store as store_mod
from distillguard.ledger.record import LedgerRecord
from distillguard.ledger.store import LedgerStore

from .conftest import make_record


def test_round_trip_keeps_every_field(store: LedgerStore):
    rec = make_record(1, request={"model": "m", "n": 2, "nested": {"a": [1, 2.5, None, "é"]}}, error_code="x")
    assert store.write_batch([rec]) == 1
    got = store.get(rec.id)
    assert got == rec
    assert store.get("req_missing") is None


def test_get_many_returns_the_existing_records_in_chunks(store: LedgerStore):
    recs = [make_record(i) for i in range(7)]
    store.write_batch(recs)
    got = store.get_many([r.id for r in recs[:5]] + ["req_missing", recs[0].id], chunk=2)
    assert got == {r.id: r for r in recs[:5]}
    assert store.get_many([]) == {}


def test_write_accepts_mappings_and_ignores_unknown_keys(store: LedgerStore):
    row = make_record(1).to_row() | {"unknown": 1}
    assert store.write_batch([row]) == 1
    assert store.get(row["id"]).model == "gpt-4o-mini"


def test_write_is_idempotent(store: LedgerStore):
    recs = [make_record(i) for i in range(5)]
    assert store.write_batch(recs) == 5
    assert store.write_batch(recs) == 0
    assert store.write_batch([make_record(3), make_record(5), make_record(5)]) == 1
    assert store.count() == 6
    assert store.write_batch([]) == 0


def test_iter_records_orders_by_ts_then_id_across_pages(store: LedgerStore):
    # equal timestamps on page boundaries exercise the keyset condition
    recs = [make_record(i, ts=100.0 + (i // 3)) for i in range(10)]
    store.write_batch(list(reversed(recs)))
    got = [r.id for r in store.iter_records(batch=2)]
    assert got == [r.id for r in recs]
    assert [r.id for r in store.iter_records(batch=3)] == got
    assert [r.id for r in store.iter_records(batch=1000)] == got


def test_filters(store: LedgerStore):
    store.write_batch(
        [make_record(i, org="org_a" if i % 2 else "org_b", key=f"key_{i % 3}", ts=float(i)) for i in range(12)]
    )
    assert [r.ts for r in store.iter_records(since=3, until=6)] == [3.0, 4.0, 5.0]
    assert {r.org for r in store.iter_records(org="org_b")} == {"org_b"}
    assert store.count() == 12
    assert store.count(org="org_a") == 6
    assert store.count(since=10) == 2
    assert store.count(key="key_0", org="org_b") == 2  # 0, 6
    assert store.count(org="nobody") == 0


def test_token_totals(store: LedgerStore):
    store.write_batch(
        [
            make_record(1, org="o1", key="k1", prompt_tokens=1, completion_tokens=10),
            make_record(2, org="o1", key="k2", prompt_tokens=2, completion_tokens=20),
            make_record(3, org="o2", key="k3", prompt_tokens=4, completion_tokens=40),
        ]
    )
    assert store.token_totals() == (7, 70)
    assert store.token_totals(org="o1") == (3, 30)
    assert store.token_totals(key="k3") == (4, 40)
    assert store.token_totals(org="none") == (0, 0)


def test_rows_are_fitted_to_the_columns(store: LedgerStore):
    rec = make_record(1, model="m" * 300, ip="1" * 100, user_agent="ua\x00evil" + "u" * 5000, prompt_tokens=None)
    assert store.write_batch([rec]) == 1
    got = store.get(rec.id)
    assert got.model == "m" * 255
    assert got.ip == "1" * 64
    assert got.user_agent.startswith("ua\ufffdevil") and len(got.user_agent) == 5007
    assert got.prompt_tokens == 0


def test_missing_bodies_are_sql_null(store: LedgerStore):
    store.write_batch([make_record(1, request=None, response_text=None)])
    with store.engine.connect() as c:
        n = c.execute(sa.select(sa.func.count()).select_from(store_mod.T).where(store_mod.T.c.request.is_(None)))
        assert n.scalar() == 1


def test_purge_older_than(store: LedgerStore, monkeypatch):
    monkeypatch.setattr(store_mod, "_PURGE_CHUNK", 2)  # several chunks
    store.write_batch([make_record(i, ts=float(i)) for i in range(10)])
    assert store.purge_older_than(7) == 7
    assert [r.ts for r in store.iter_records()] == [7.0, 8.0, 9.0]
    assert store.purge_older_than(7) == 0


def test_strip_bodies_older_than(store: LedgerStore, monkeypatch):
    monkeypatch.setattr(store_mod, "_PURGE_CHUNK", 2)
    store.write_batch([make_record(i, ts=float(i)) for i in range(6)])
    assert store.strip_bodies_older_than(4) == 4
    recs: list[LedgerRecord] = list(store.iter_records())
    assert [(r.request is None, r.response_text is None) for r in recs] == [(True, True)] * 4 + [(False, False)] * 2
    assert all(r.prompt_tokens == 10 for r in recs)  # only the bodies go
    assert store.strip_bodies_older_than(4) == 0
    assert recs[0].to_traffic()["request"] == {"model": "gpt-4o-mini"}
