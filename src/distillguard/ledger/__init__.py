"""The durable record of every request and response.

``LedgerWriter.append`` journals a record (write-ahead, survives a crash of the process) and a
background thread batches it into the ``LedgerStore`` (SQLite or Postgres); ``export_jsonl``
writes the traffic format.
"""

from .export import export_jsonl
from .factory import writer_from_settings
from .record import LedgerRecord, new_request_id
from .store import LedgerStore
from .writer import LedgerWriter

__all__ = ["LedgerRecord", "LedgerStore", "LedgerWriter", "export_jsonl", "new_request_id", "writer_from_settings"]
