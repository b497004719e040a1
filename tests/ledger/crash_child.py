"""Child process for the crash tests: a ledger writer that gets SIGKILLed by the test.

crash_child.py stuck JOURNAL_DIR DB_URL N   append N records (store never answers), print READY, wait
crash_child.py load  JOURNAL_DIR DB_URL T   T threads append as fast as they can to a slow real store,
                                            printing each acknowledged id on stdout, until killed
"""

from __future__ import annotations

import os
import sys
import threading
import time

from distillguard.db.engine import get_engine
from distillguard.ledger.record import LedgerRecord
from distillguard.ledger.store import LedgerStore
from distillguard.ledger.writer import LedgerWriter


class StuckStore:
    def write_batch(self, records):  # noqa: ANN001
        threading.Event().wait()

    def purge_older_than(self, ts):  # noqa: ANN001
        return 0


class SlowStore(LedgerStore):
    def write_batch(self, records):  # noqa: ANN001
        time.sleep(0.02)
        return super().write_batch(records)


def rec(id_: str, i: int) -> LedgerRecord:
    return LedgerRecord(
        id=id_,
        ts=1_700_000_000.0 + i,
        endpoint="/v1/chat/completions",
        status=200,
        org="org_c",
        request={"model": "m", "messages": [{"role": "user", "content": "x" * 200}]},
        response_text="y" * 500,
        prompt_tokens=3,
        completion_tokens=7,
    )


def main() -> None:
    mode, journal_dir, url, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if mode == "stuck":
        w = LedgerWriter(StuckStore(), journal_dir, "child", batch_size=64, flush_interval_s=0.01)
        w.start()
        for i in range(n):
            w.append(rec(f"req_{i:08d}", i))
        os.write(1, b"READY\n")
        threading.Event().wait()
    elif mode == "load":
        w = LedgerWriter(
            SlowStore(get_engine(url)),
            journal_dir,
            "child",
            batch_size=50,
            flush_interval_s=0.01,
            segment_max_bytes=64 << 10,
            checkpoint_interval_s=0.05,
        )
        w.start()

        def work(t: int) -> None:
            i = 0
            while True:
                id_ = f"req_t{t}_{i:08d}"
                w.append(rec(id_, i))
                os.write(1, id_.encode() + b"\n")  # acknowledged: the client got its answer
                i += 1

        for t in range(n):
            threading.Thread(target=work, args=(t,), daemon=True).start()
        threading.Event().wait()


if __name__ == "__main__":
    main()
