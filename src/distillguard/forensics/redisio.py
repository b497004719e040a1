"""Bulk Redis I/O for the Redis layout of the output index: a few Lua scripts over packed binary batches.

Without hiredis, redis-py spends microseconds of Python per command and per reply element, which at a
million outputs (42 band writes each) and a hundred thousand queries (42 band lookups each) is most of
the time. So every bulk operation is one ``EVALSHA`` whose argument is one packed blob of fixed-width
records (a key-name suffix plus binary fields, built with numpy) and whose reply is one packed blob.
Each script runs a bounded batch (``CHUNK`` records) so it blocks the server for tens of milliseconds.

The scripts build key names from the prefix they are given, so they are for a single Redis server
(not Redis Cluster, where keys must be declared).
"""

from __future__ import annotations

from typing import Any

import numpy as np

CHUNK = 32768  # records per script call

# APPEND payloads: records (name suffix, payload)
_APPEND = """
local p, nw, pw, blob = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
for o = 1, #blob, nw + pw do
  redis.call('APPEND', p .. string.sub(blob, o, o + nw - 1), string.sub(blob, o + nw, o + nw + pw - 1))
end
return 1
"""

# Band lookups: records (name suffix, kw-byte key, query index u32), grouped by query, against strings of
# (key, row u32) pairs. Per record the first `cap` rows stored under its key, in insertion order; returns
# (query index u32, row u32) pairs, each distinct row once per query.
_SCAN = """
local p, nw, kw, cap, blob = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local pw = kw + 4
local out, n, seen, cur = {}, 0, {}, nil
for o = 1, #blob, nw + kw + 4 do
  local q = string.sub(blob, o + nw + kw, o + nw + kw + 3)
  if q ~= cur then
    seen, cur = {}, q
  end
  local s = redis.call('GET', p .. string.sub(blob, o, o + nw - 1))
  if s then
    local key, pos, found = string.sub(blob, o + nw, o + nw + kw - 1), 1, 0
    while found < cap do
      local at = string.find(s, key, pos, true)
      if not at then break end
      if at % pw == 1 then
        local row = string.sub(s, at + kw, at + kw + 3)
        if not seen[row] then
          seen[row] = true
          out[n + 1] = q
          out[n + 2] = row
          n = n + 2
        end
        found, pos = found + 1, at + pw
      else
        pos = at + 1
      end
    end
  end
end
return table.concat(out)
"""

# Bit sets: records (name suffix, bit offset u32) sorted by name -> the bits set to 1, one BITFIELD per run of
# records of the same key (half the server time of a SETBIT each); offsets from `limit` up are ignored (a
# malformed batch must not grow a string to 512 MB). Then INCR of the version key ARGV[4].
_SETBIT = """
local p, nw, limit, blob = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[5]
local cur, args, n = nil, {}, 0
for o = 1, #blob, nw + 4 do
  local nm = string.sub(blob, o, o + nw - 1)
  if nm ~= cur or n >= 4000 then
    if n > 0 then redis.call('BITFIELD', p .. cur, unpack(args, 1, n)) end
    cur, n = nm, 0
  end
  local off = struct.unpack('<I4', string.sub(blob, o + nw, o + nw + 3))
  if off < limit then
    args[n + 1], args[n + 2], args[n + 3], args[n + 4] = 'SET', 'u1', off, 1
    n = n + 4
  end
end
if n > 0 then redis.call('BITFIELD', p .. cur, unpack(args, 1, n)) end
redis.call('INCR', ARGV[4])
return 1
"""

# Fixed-width reads: records (name suffix, byte offset u32) -> the `w` bytes there (short reads padded with 0).
_GETRANGE = """
local p, nw, w, blob = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local out, n, pad = {}, 0, string.rep('\\0', w)
for o = 1, #blob, nw + 4 do
  local off = struct.unpack('<I4', string.sub(blob, o + nw, o + nw + 3))
  local v = redis.call('GETRANGE', p .. string.sub(blob, o, o + nw - 1), off, off + w - 1)
  if #v < w then v = v .. string.sub(pad, 1, w - #v) end
  n = n + 1
  out[n] = v
end
return table.concat(out)
"""

# Hash writes: records (name suffix, field, value), all fixed width.
_HSET = """
local p, nw, fw, vw, blob = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
for o = 1, #blob, nw + fw + vw do
  redis.call('HSET', p .. string.sub(blob, o, o + nw - 1), string.sub(blob, o + nw, o + nw + fw - 1),
             string.sub(blob, o + nw + fw, o + nw + fw + vw - 1))
end
return 1
"""

# Hash reads: records (name suffix, field) -> per record a u16 length and the value (0xFFFF: no such field).
_HGET = """
local p, nw, fw, blob = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local out, n = {}, 0
for o = 1, #blob, nw + fw do
  local v = redis.call('HGET', p .. string.sub(blob, o, o + nw - 1), string.sub(blob, o + nw, o + nw + fw - 1))
  n = n + 1
  if v then
    out[n] = struct.pack('<I2', #v) .. v
  else
    out[n] = '\\255\\255'
  end
end
return table.concat(out)
"""

# Counter increments: records (name suffix, counter index u32 below `limit`, increment u32) on big-endian
# u32 strings, then INCRBY of the version and document-count keys, all in one atomic script.
_BITADD = """
local p, nw, blob, docs, limit = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], tonumber(ARGV[7])
for o = 1, #blob, nw + 8 do
  local idx, inc = struct.unpack('<I4I4', string.sub(blob, o + nw, o + nw + 7))
  if idx < limit then
    redis.call('BITFIELD', p .. string.sub(blob, o, o + nw - 1), 'INCRBY', 'u32', '#' .. idx, inc)
  end
end
redis.call('INCR', ARGV[5])
redis.call('INCRBY', ARGV[6], docs)
return 1
"""

_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)


def names(tag: str, ids: np.ndarray, width: int) -> np.ndarray:
    """(n, len(tag) + width) uint8: key-name suffixes ``tag`` + ``ids`` as ``width`` lowercase hex digits."""
    ids = np.asarray(ids, np.uint64)
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    digits = _HEX[((ids[:, None] >> shifts) & np.uint64(0xF)).astype(np.intp)]
    head = np.broadcast_to(np.frombuffer(tag.encode(), np.uint8), (len(ids), len(tag)))
    return np.concatenate([head, digits], axis=1)


def name(tag: str, i: int, width: int) -> str:
    return f"{tag}{i:0{width}x}"


def records(*fields: np.ndarray) -> np.ndarray:
    """(n, total width) uint8: fixed-width records from per-field (n, w) uint8 arrays or (n,) numeric columns."""
    parts = []
    for f in fields:
        f = np.ascontiguousarray(f)
        w = int(np.prod(f.shape[1:], dtype=np.int64))
        parts.append(f if f.dtype == np.uint8 and f.ndim == 2 else f.reshape(len(f), w).view(np.uint8))
    return np.concatenate(parts, axis=1)


class RedisIO:
    """A Redis client, the index's key prefix, and the bulk scripts (registered once per client)."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.r, self.p = client, prefix
        scripts = {"append": _APPEND, "setbit": _SETBIT, "scan": _SCAN, "getrange": _GETRANGE, "hset": _HSET,
                   "hget": _HGET, "bitadd": _BITADD}
        self._scripts = {k: client.register_script(v) for k, v in scripts.items()}

    def key(self, suffix: str) -> str:
        return self.p + suffix

    def _run(self, script: str, *args: Any) -> Any:
        return self._scripts[script](args=[self.p, *args])

    def append(self, recs: np.ndarray, nw: int) -> None:
        """APPEND each record's payload (after its ``nw``-byte name suffix) to that key, in order."""
        for lo in range(0, len(recs), CHUNK):
            part = recs[lo : lo + CHUNK]
            self._run("append", nw, part.shape[1] - nw, part.tobytes())

    def setbits(self, recs: np.ndarray, nw: int, limit: int, version_key: str) -> None:
        """Set the bit of each record (name suffix, bit offset u32 below ``limit``), records sorted by name;
        then the version key is incremented."""
        for lo in range(0, len(recs), CHUNK):
            self._run("setbit", nw, limit, version_key, recs[lo : lo + CHUNK].tobytes())

    def scan(self, recs: np.ndarray, nw: int, kw: int, cap: int) -> np.ndarray:
        """(query index, row) pairs for records (name suffix, ``kw``-byte key, query index u32) grouped by
        query; the stored strings hold (key, row u32) pairs with keys as wide as in the records."""
        out = [np.frombuffer(self._run("scan", nw, kw, cap, recs[lo : lo + CHUNK].tobytes()), "<u4")
               for lo in range(0, len(recs), CHUNK)]
        return np.concatenate(out).reshape(-1, 2).astype(np.int64) if out else np.zeros((0, 2), np.int64)

    def getrange(self, recs: np.ndarray, nw: int, width: int) -> np.ndarray:
        """(n, width) uint8: the ``width`` bytes at each record's (name suffix, u32 offset)."""
        step = max(1, min(CHUNK, (16 << 20) // max(width, 1)))  # replies of at most ~16 MB
        out = [np.frombuffer(self._run("getrange", nw, width, recs[lo : lo + step].tobytes()), np.uint8)
               for lo in range(0, len(recs), step)]
        return np.concatenate(out).reshape(len(recs), width) if out else np.zeros((0, width), np.uint8)

    def hset(self, recs: np.ndarray, nw: int, fw: int) -> None:
        for lo in range(0, len(recs), CHUNK):
            part = recs[lo : lo + CHUNK]
            self._run("hset", nw, fw, part.shape[1] - nw - fw, part.tobytes())

    def hget(self, recs: np.ndarray, nw: int) -> list[bytes | None]:
        """The value of each record's (name suffix, field) in the hash, None where there is none."""
        out: list[bytes | None] = []
        for lo in range(0, len(recs), CHUNK):
            part = recs[lo : lo + CHUNK]
            raw, o = self._run("hget", nw, part.shape[1] - nw, part.tobytes()), 0
            for _ in range(len(part)):
                n = int.from_bytes(raw[o : o + 2], "little")
                if n == 0xFFFF:
                    out.append(None)
                    o += 2
                else:
                    out.append(raw[o + 2 : o + 2 + n])
                    o += 2 + n
        return out

    def bitadd(self, recs: np.ndarray, nw: int, limit: int, version_key: str, docs_key: str, docs: int) -> None:
        """BITFIELD INCRBY u32 per record (name suffix, index u32 below ``limit``, increment u32), then bump
        version and docs."""
        if len(recs) == 0:
            self.r.pipeline(transaction=True).incr(version_key).incrby(docs_key, docs).execute()
            return
        for lo in range(0, len(recs), CHUNK):
            part = recs[lo : lo + CHUNK]
            last = lo + CHUNK >= len(recs)
            self._run("bitadd", nw, part.tobytes(), docs if last else 0, version_key, docs_key, limit)

    def clear(self) -> int:
        """Delete every key under the prefix (and only those); returns how many."""
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in self.p) + "*"
        n = 0
        batch: list[bytes] = []
        for k in self.r.scan_iter(match=pattern, count=5000):
            batch.append(k)
            if len(batch) >= 5000:
                n += self.r.unlink(*batch)
                batch = []
        if batch:
            n += self.r.unlink(*batch)
        return n
