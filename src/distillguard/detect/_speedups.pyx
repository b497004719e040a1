# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Compiled loops of per-request feature extraction (built when a C compiler is there; ``speedups`` falls back to
the pure-Python code otherwise). Each function computes exactly what the Python code it stands in for computes;
tests/detect/test_speedups.py checks them against it.

Byte-level work only: callers pass UTF-8 (or ASCII) bytes and decide where that is exact.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy

cdef uint32_t CRC_TABLE[256]


cdef void _crc_init():
    cdef uint32_t c
    cdef int n
    for n in range(256):
        c = <uint32_t>n
        for _ in range(8):
            if c & 1:
                c = 0xEDB88320 ^ (c >> 1)
            else:
                c = c >> 1
        CRC_TABLE[n] = c


_crc_init()


cdef inline uint32_t _crc(uint32_t crc, const unsigned char* p, Py_ssize_t n) noexcept nogil:
    """zlib.crc32(p[:n], crc): CRC-32 (IEEE 802.3), continuing ``crc``."""
    cdef Py_ssize_t i
    crc = ~crc
    for i in range(n):
        crc = CRC_TABLE[(crc ^ p[i]) & 0xFF] ^ (crc >> 8)
    return ~crc


def crc32(bytes data, uint32_t value=0):
    """zlib.crc32 (for the tests)."""
    return _crc(value, <const unsigned char*>PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))


cdef inline bint _letter(unsigned char c) noexcept nogil:
    return 97 <= c <= 122


cdef inline bint _word_char(unsigned char c) noexcept nogil:
    return 97 <= c <= 122 or c == 39


# The stopwords, each packed into an integer (``_pack``), in an open-addressing hash table: looked up without
# making a bytes object. 0 marks an empty slot (a packed word has its length, at least 1, in the top byte).
cdef enum:
    STOP_SLOTS = 1024
cdef uint64_t STOP_TABLE[STOP_SLOTS]
cdef bint STOP_SET = False


cdef inline uint64_t _pack(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    """A word of at most 7 bytes as an integer: its bytes, and its length in the top byte."""
    cdef uint64_t key = (<uint64_t>n) << 56
    cdef Py_ssize_t i
    for i in range(n):
        key |= (<uint64_t>p[i]) << (8 * i)
    return key


cdef inline Py_ssize_t _slot(uint64_t key) noexcept nogil:
    return <Py_ssize_t>((key * <uint64_t>0x9E3779B97F4A7C15) >> 54)  # top 10 bits: 0..1023


def set_stopwords(stop):
    """The stopwords (bytes of 1 to 7 characters, at most 512) that the word functions leave out."""
    global STOP_SET
    cdef Py_ssize_t i, j
    cdef uint64_t key
    words = list(stop)
    if len(words) > STOP_SLOTS // 2 or [w for w in words if not 0 < len(w) <= 7]:
        raise ValueError("at most 512 stopwords of 1 to 7 bytes")
    for i in range(STOP_SLOTS):
        STOP_TABLE[i] = 0
    for w in words:
        key = _pack(<const unsigned char*>PyBytes_AS_STRING(w), PyBytes_GET_SIZE(w))
        j = _slot(key)
        while STOP_TABLE[j] != 0 and STOP_TABLE[j] != key:
            j = (j + 1) & (STOP_SLOTS - 1)
        STOP_TABLE[j] = key
    STOP_SET = True


cdef inline bint _is_stop(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    cdef uint64_t key, got
    cdef Py_ssize_t j
    if n > 7 or n < 1:
        return False
    key = _pack(p, n)
    j = _slot(key)
    while True:
        got = STOP_TABLE[j]
        if got == key:
            return True
        if got == 0:
            return False
        j = (j + 1) & (STOP_SLOTS - 1)


cdef inline void _need_stopwords() except *:
    if not STOP_SET:
        raise RuntimeError("set_stopwords was not called")


cdef inline bint _next_word(const unsigned char* p, Py_ssize_t n, Py_ssize_t* i, Py_ssize_t* s,
                            Py_ssize_t* e) noexcept nogil:
    """The next content word of ``p[*i:n]`` (``text.words``: a run of a-z and apostrophes less its leading
    apostrophes, at least two characters, not a stopword) at ``[*s, *e)``, with ``*i`` moved past it; False at the
    end."""
    while i[0] < n:
        if not _word_char(p[i[0]]):
            i[0] += 1
            continue
        s[0] = i[0]
        while i[0] < n and _word_char(p[i[0]]):
            i[0] += 1
        e[0] = i[0]
        while s[0] < e[0] and p[s[0]] == 39:
            s[0] += 1
        if e[0] - s[0] >= 2 and not _is_stop(p + s[0], e[0] - s[0]):
            return True
    return False


def topic_buckets(bytes data, int limit, uint32_t mask):
    """Buckets (``crc32(word) & mask``) of the first ``limit`` content words of UTF-8 ``data``: ``text.words``
    (runs of a-z and apostrophes less their leading apostrophes, at least two characters, not stopwords). Each
    bucket once, in order of first occurrence."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t i = 0, s = 0, e = 0  # (s, e: set by _next_word)
    cdef int found = 0
    cdef uint32_t b
    cdef unsigned char seen[4096]
    cdef list out = []
    _need_stopwords()
    if mask >= 4096:
        raise ValueError("mask must be below 4096")
    for i in range(mask + 1):
        seen[i] = 0
    i = 0
    while found < limit and _next_word(p, n, &i, &s, &e):
        found += 1
        b = _crc(0, p + s, e - s) & mask
        if not seen[b]:
            seen[b] = 1
            out.append(b)
    return tuple(out)


def shingle_hits(bytes data, object shingles, int size):
    """``bench.BenchmarkIndex.overlap``'s hits for ASCII text already mapped to lower-case word characters and
    spaces: how many of the word ``size``-grams at positions {0, m/4, m/2, 3m/4, m} (m = words - size) have their
    crc32 of the space-joined words in ``shingles``; -1 when there are fewer than ``size`` words."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t starts[2048]
    cdef Py_ssize_t ends[2048]
    cdef Py_ssize_t w = 0, i = 0, m, j, k, q
    cdef uint32_t crc
    cdef Py_ssize_t pos[5]
    while i < n:
        if p[i] == 32:
            i += 1
            continue
        if w == 2048:
            raise ValueError("text too long for shingle_hits")
        starts[w] = i
        while i < n and p[i] != 32:
            i += 1
        ends[w] = i
        w += 1
    m = w - size
    if m < 0:
        return -1
    pos[0] = 0
    pos[1] = m // 4
    pos[2] = m // 2
    pos[3] = 3 * m // 4
    pos[4] = m
    hits = 0
    for k in range(5):
        for q in range(k):  # a position once (a set in the Python code)
            if pos[q] == pos[k]:
                break
        else:
            j = pos[k]
            crc = _crc(0, p + starts[j], ends[j] - starts[j])
            for q in range(j + 1, j + size):
                crc = _crc(crc, <const unsigned char*>b" ", 1)
                crc = _crc(crc, p + starts[q], ends[q] - starts[q])
            if crc in shingles:
                hits += 1
    return hits


cdef inline bint _space(unsigned char c) noexcept nogil:
    # what str.split() splits ASCII text on
    return c == 32 or 9 <= c <= 13 or 28 <= c <= 31


def novelty_pairs(bytes data, bytes punct, int limit):
    """``features.answer_novelty``'s word pairs for a lower-cased ASCII answer head: tokens split on white space,
    stripped of ``punct`` at both ends; a pair is two adjacent all-letter words, the first token ending in a letter,
    one of the two longer than 3 characters and not a stopword. At most ``limit`` distinct pairs, in order (str)."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef const unsigned char* pu = <const unsigned char*>PyBytes_AS_STRING(punct)
    cdef Py_ssize_t npu = PyBytes_GET_SIZE(punct)
    cdef dict pairs = {}
    cdef char* buf = <char*>PyMem_Malloc(2 * n + 2)  # a pair: two words of the text and a space
    if buf == NULL:
        raise MemoryError()
    try:
        return _pairs(p, n, pu, npu, limit, pairs, buf)
    finally:
        PyMem_Free(buf)


cdef list _pairs(const unsigned char* p, Py_ssize_t n, const unsigned char* pu, Py_ssize_t npu, int limit,
                 dict pairs, char* buf):
    cdef unsigned char is_punct[256]
    cdef Py_ssize_t i = 0, ts, te, s, e, k
    cdef Py_ssize_t ps = 0, pe = 0  # the previous word (pe > ps: there is one)
    cdef bint alpha, prev_big = False, big
    _need_stopwords()
    for k in range(256):
        is_punct[k] = 0
    for k in range(npu):
        is_punct[pu[k]] = 1
    while i < n:
        if _space(p[i]):
            i += 1
            continue
        ts = i
        while i < n and not _space(p[i]):
            i += 1
        te = i
        s, e = ts, te
        while s < e and is_punct[p[s]]:
            s += 1
        while e > s and is_punct[p[e - 1]]:
            e -= 1
        alpha = e > s
        for k in range(s, e):
            if not _letter(p[k]):
                alpha = False
                break
        if not alpha:
            pe = ps
            continue
        big = e - s > 3 and not _is_stop(p + s, e - s)
        if pe > ps and (prev_big or big):
            memcpy(buf, p + ps, pe - ps)
            buf[pe - ps] = 32
            memcpy(buf + (pe - ps) + 1, p + s, e - s)
            pairs[PyUnicode_DecodeASCII(buf, (pe - ps) + 1 + (e - s), NULL)] = None
            if len(pairs) >= limit:
                break
        if _letter(p[te - 1]):
            ps, pe, prev_big = s, e, big
        else:
            pe = ps
    return list(pairs)


def content_words(bytes data, int limit):
    """``text.word_bytes`` of UTF-8 ``data``: the first ``limit`` content words, in order, as bytes."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t i = 0, s = 0, e = 0  # (s, e: set by _next_word)
    cdef list out = []
    _need_stopwords()
    while len(out) < limit and _next_word(p, n, &i, &s, &e):
        out.append(PyBytes_FromStringAndSize(<const char*>(p + s), e - s))
    return out


def skeleton_keys(bytes skel, int key_tokens, int min_head, int min_tail, int end_tokens):
    """For a skeleton (UTF-8, single spaces): (crc32 of its first ``key_tokens`` space-separated tokens or 0 if it
    has fewer than ``min_head`` tokens, the same of its last ones with ``min_tail``, and its first and last
    ``end_tokens`` tokens joined by `` | `` or None when it has at most twice that many) - ``text.scaffold_keys_of``
    and ``features._ends``."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(skel)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(skel)
    cdef Py_ssize_t ntok = 1, i, head_end = n, tail_start = 0, ends_head = n, ends_tail = 0, seen = 0
    cdef uint32_t head = 0, tail = 0
    for i in range(n):
        if p[i] == 32:
            ntok += 1
    # the key_tokens-th and end_tokens-th spaces from the start, and from the end
    for i in range(n):
        if p[i] == 32:
            seen += 1
            if seen == key_tokens:
                head_end = i
            if seen == end_tokens:
                ends_head = i
    seen = 0
    for i in range(n - 1, -1, -1):
        if p[i] == 32:
            seen += 1
            if seen == key_tokens:
                tail_start = i + 1
            if seen == end_tokens:
                ends_tail = i + 1
    if ntok >= min_head and head_end > 0:
        head = _crc(0, p, head_end)
    if ntok >= min_tail and n - tail_start > 0:
        tail = _crc(0, p + tail_start, n - tail_start)
    if ntok <= 2 * end_tokens:
        return head, tail, None
    return head, tail, skel[:ends_head] + b" | " + skel[ends_tail:]


cdef inline bint _upper(unsigned char c) noexcept nogil:
    return 65 <= c <= 90


cdef inline bint _entity_char(unsigned char c) noexcept nogil:
    # [\w'-] for ASCII: letters, digits, underscore, apostrophe, hyphen
    return 97 <= c <= 122 or 65 <= c <= 90 or 48 <= c <= 57 or c == 95 or c == 39 or c == 45


cdef inline bint _digit(unsigned char c) noexcept nogil:
    return 48 <= c <= 57


ctypedef Py_ssize_t (*_match_end)(const unsigned char*, Py_ssize_t, Py_ssize_t) noexcept nogil


cdef Py_ssize_t _entity_end(const unsigned char* p, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    """Where ``text._ENTITY`` matching at ``i`` ends, or -1: a capital after "[a-z,;:] ", its word characters, and
    any further " Capitalised" words."""
    cdef Py_ssize_t j
    if not (_upper(p[i]) and i >= 2 and p[i - 1] == 32
            and (97 <= p[i - 2] <= 122 or p[i - 2] == 44 or p[i - 2] == 59 or p[i - 2] == 58)):
        return -1
    j = i + 1
    while j < n and _entity_char(p[j]):
        j += 1
    while j + 1 < n and p[j] == 32 and _upper(p[j + 1]):
        j += 2
        while j < n and _entity_char(p[j]):
            j += 1
    return j


cdef Py_ssize_t _number_end(const unsigned char* p, Py_ssize_t n, Py_ssize_t i) noexcept nogil:
    """Where ``text._NUM_ASCII`` matching at ``i`` ends, or -1: digit runs joined by single . , : or / between
    digits."""
    cdef Py_ssize_t j
    if not _digit(p[i]):
        return -1
    j = i + 1
    while True:
        while j < n and _digit(p[j]):
            j += 1
        if j + 1 < n and (p[j] == 46 or p[j] == 44 or p[j] == 58 or p[j] == 47) and _digit(p[j + 1]):
            j += 1
            continue
        return j


cdef Py_ssize_t _substitute(const unsigned char* p, Py_ssize_t n, unsigned char* q, _match_end end,
                            unsigned char letter) noexcept nogil:
    """``re.sub`` of a pattern (``end``: where its match at a position ends, -1 for none) by ``<letter>``, from
    ``p`` into ``q`` (room for 3n bytes); returns the length written. Matches are never empty."""
    cdef Py_ssize_t i = 0, k = 0, j
    while i < n:
        j = end(p, n, i)
        if j < 0:
            q[k] = p[i]
            k += 1
            i += 1
        else:
            q[k] = 60
            q[k + 1] = letter
            q[k + 2] = 62
            k += 3
            i = j
    return k


def mask_ascii(bytes data):
    """The last steps of ``text.mask`` for ASCII text: names, then numbers, become placeholders; white space is
    collapsed to single spaces and the text lower-cased."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef unsigned char* a = <unsigned char*>PyMem_Malloc(3 * n + 1)
    cdef unsigned char* b = <unsigned char*>PyMem_Malloc(9 * n + 1)
    cdef Py_ssize_t na, nb, i, k = 0
    cdef unsigned char c
    cdef bint pending = False
    if a == NULL or b == NULL:
        PyMem_Free(a)
        PyMem_Free(b)
        raise MemoryError()
    try:
        na = _substitute(p, n, a, _entity_end, 101)  # <e>
        nb = _substitute(a, na, b, _number_end, 110)  # <n>
        for i in range(nb):  # collapse and lower in place: k <= i
            c = b[i]
            if _space(c):
                if k:
                    pending = True
                continue
            if pending:
                b[k] = 32
                k += 1
                pending = False
            b[k] = c + 32 if 65 <= c <= 90 else c
            k += 1
        return PyBytes_FromStringAndSize(<const char*>b, k)
    finally:
        PyMem_Free(a)
        PyMem_Free(b)
