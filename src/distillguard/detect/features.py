"""Per-request features: cheap enough for the gateway's online path (tens of microseconds per request).

A ``RequestFeatures`` is built from a traffic record (contracts §1) or a ``LedgerRecord``; it keeps no text but the
prompt's skeleton head (for cross-account scaffold matching) and a handful of hashes.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from .bench import BenchmarkIndex
from .language import rendering_key
from .scripts import extra_units, has_unsegmented, ngrams
from .speedups import native
from .text import (
    MARKER_BIT,
    STOPWORDS,
    PromptView,
    builds_on_answer,
    marker_bits,
    mask,
    scaffold_keys_of,
    word_bytes,
)

TOPIC_DIM = 1024  # hashed bag-of-words buckets for topic spread
_BUCKETS: dict[bytes, int] = {}  # word -> topic bucket (crc32: the same in every process, so reports are reproducible)
_BUCKETS_MAX = 500_000


def _bucket(w: bytes) -> int:
    if len(_BUCKETS) >= _BUCKETS_MAX:
        _BUCKETS.clear()
    b = _BUCKETS[w] = zlib.crc32(w) & (TOPIC_DIM - 1)
    return b


TOPIC_WORDS = 48  # content words of the prompt head that make its topic


def topic_buckets(lower: str) -> tuple[int, ...]:
    """The hashed buckets of a lower-cased prompt head's first ``TOPIC_WORDS`` content words (``text.words``),
    each once, in no set order."""
    cached = _BUCKETS.get
    if native is not None:
        data = lower[: TOPIC_WORDS * 12].encode("utf-8", "surrogatepass")
        buckets = native.topic_buckets(data, TOPIC_WORDS, TOPIC_DIM - 1)
    else:
        buckets = tuple({cached(w) or _bucket(w) for w in word_bytes(lower, TOPIC_WORDS)})
    if not lower.isascii():  # Chinese, Japanese, Thai: character bigrams; other alphabets: their words
        extra = extra_units(lower[: TOPIC_WORDS * 12], TOPIC_WORDS)
        if extra:
            more = {cached(w) or _bucket(w) for w in (u.encode() for u in extra)}
            buckets += tuple(more.difference(buckets))
    return buckets


@dataclass(slots=True)
class RequestFeatures:
    id: str
    ts: float
    key: str
    ua: str
    ip_prefix: str
    status: int
    head: int  # scaffold hash of the skeleton's first tokens (0: too short)
    tail: int  # scaffold hash of the skeleton's last tokens
    system: int  # hash of the system prompt's skeleton (0: none)
    prompt_hash: int  # hash of the whole normalised prompt
    bits: int  # instruction-style markers (text.MARKERS)
    turns: int
    follow_up: bool
    temperature: float | None
    n: int
    max_tokens: int
    prompt_chars: int
    prompt_tokens: int
    completion_tokens: int
    topic: tuple[int, ...]  # hashed content-word buckets of the prompt
    skeleton: str  # masked prompt's first and last tokens, for cross-account MinHash
    bench: float  # share of benchmark-text probes the prompt hits (bench.BenchmarkIndex)
    client: int = 0  # client-program fingerprint: user agent, model, system prompt skeleton, which params are set
    route: int = 0  # coarser: model and system prompt skeleton only
    novelty: float = -1.0  # share of the answer's word pairs not in the prompt (-1: not measured)
    answer_key: int = 0  # ``answer_key`` of the response's text (0: none)
    prev_key: int = 0  # ``answer_key`` of the history's last assistant turn (0: none)
    # (novel sampled answers) ``language.rendering_key`` of the prompt text the answer renders in another language
    # (a translation), 0: none; the account counts it as grounded unless that text keeps coming back
    rendered: int = 0
    # the client's own texts cut into blocks (``input_blocks``): hash, characters, hash, characters, ...
    blocks: tuple[int, ...] = ()
    input_chars: int = 0  # characters of all the messages, earlier answers included
    own_chars: int = 0  # ... of the client's own texts (all but the assistant's)


    def has(self, marker: str) -> bool:
        return bool(self.bits & MARKER_BIT[marker])


def _num(v: Any, default: float | None) -> float | None:
    if isinstance(v, bool):
        return default
    if isinstance(v, (int, float)):
        return float(v)
    return default


def _ip_prefix(ip: str | None) -> str:
    if not ip:
        return ""
    if ":" in ip:
        return ":".join(ip.split(":")[:3])
    return ip.rsplit(".", 1)[0]


_SYSTEM_CACHE: dict[str, tuple[int, int]] = {}


def _system_info(system: str) -> tuple[int, int]:
    """(skeleton hash, marker bits) of a system prompt; cached, since products resend the same one."""
    got = _SYSTEM_CACHE.get(system)
    if got is None:
        if len(_SYSTEM_CACHE) > 4096:
            _SYSTEM_CACHE.clear()
        got = _SYSTEM_CACHE[system] = (zlib.crc32(mask(system).encode()) or 1, marker_bits(system.lower()))
    return got


def _ends(skel: str, toks: list[str] | None = None) -> str:
    """The skeleton's first and last 12 tokens (what templates keep fixed), ``|``-separated."""
    if toks is None:
        toks = skel.split(" ")
    if len(toks) <= 24:
        return skel  # = " ".join(skel.split(" "))
    return " ".join(toks[:12]) + " | " + " ".join(toks[-12:])


def _skeleton_keys(skel: str) -> tuple[int, int, str]:
    """(``scaffold_keys``, ``_ends``) of a skeleton."""
    if native is not None:
        head, tail, ends = native.skeleton_keys(skel.encode(), 8, 4, 12, 12)
        return head, tail, skel if ends is None else ends.decode()
    toks = skel.split(" ")
    head, tail = scaffold_keys_of(toks)
    return head, tail, _ends(skel, toks)


_SHAPE_SKIP = frozenset(("messages", "prompt", "stream", "stream_options", "user", "metadata", "seed"))
_CLIENT_CACHE: dict[tuple[str, str, int, tuple[str, ...]], tuple[int, int]] = {}


def _client(ua: str, req: dict[str, Any], system: int) -> tuple[int, int]:
    """A hash of what one client program keeps fixed from request to request: its user agent, the model, the system
    prompt's skeleton and the set of sampling parameters it sets (names only: values are user choices).

    Two programs behind one account (a product, and a script on the side) almost never share all of these, so the
    account's traffic can be split into sub-streams by it (``engine``); it is a grouping key, never a score.
    """
    model = req.get("model")
    key = (ua, model if isinstance(model, str) else repr(model), system, tuple(req))
    got = _CLIENT_CACHE.get(key)
    if got is None:
        if len(_CLIENT_CACHE) > 4096:
            _CLIENT_CACHE.clear()
        names = ",".join(sorted(k for k in req if k not in _SHAPE_SKIP))
        route = f"{key[1]}|{system}"
        sig = f"{route}|{ua}|{names}"
        got = _CLIENT_CACHE[key] = (zlib.crc32(sig.encode()) or 1, zlib.crc32(route.encode()) or 1)
    return got


NOVELTY_PAIRS = 16  # word pairs of the answer's head that are looked up
NOVELTY_ANSWER_CHARS = 300  # ... taken from this much of the answer
NOVELTY_PROMPT_CHARS = 8000  # ... in this much of the prompt (and of the system prompt)
# Novelty is measured on the requests whose prompt hash is even (half of them, chosen by content, not by order): it
# costs ~20 µs, and an account's mean needs no more. An unmeasured request only withholds a lowering (grounding can
# only lower a score), so a harvester gains nothing by steering its prompts out of the sample.
NOVELTY_SAMPLE_MASK = 1
RENDERED_MIN_NOVELTY = 0.5  # from this novelty on, an answer is checked for rendering its prompt in another language
_PUNCT = ".,;:!?()[]{}\"'`*#<>-_/\\|~"
_PUNCT_BYTES = _PUNCT.encode()


def answer_novelty(answer: str, prompt: str, system: str = "") -> float:
    """Share of the answer's first word pairs (adjacent words, one of them a content word) that the prompt does not
    contain.

    What a harvester collects is what the model adds: knowledge and prose that were not in the request. A summary,
    an extraction, a grounded (RAG) answer or a restated tool call reuses the phrases it was given. Pairs, not single
    words: a block of common words pasted into every prompt contains an answer's words but not its phrases. The
    lookup is a substring test in the lower-cased prompt, bounded by ``NOVELTY_PAIRS`` and ``NOVELTY_PROMPT_CHARS``.
    An answer without such a pair (empty, a bare label) adds nothing: 0. In scripts written without spaces
    (Chinese, Japanese, Thai) there are no word pairs: non-overlapping 4-character pieces take their place
    (``scripts.ngrams``), so such answers are not read as taken from their prompts. An answer in another language
    than its prompt (a translation) shares no phrase with it: ``extract`` marks such answers (``rendered``) and the
    account counts them as grounded (``AccountState.add``).
    """
    head = answer[:NOVELTY_ANSWER_CHARS]
    if native is not None and head.isascii():
        pairs = native.novelty_pairs(head.lower().encode("ascii"), _PUNCT_BYTES, NOVELTY_PAIRS)
    else:
        pairs = list(_novelty_pairs(head))
        if len(pairs) < NOVELTY_PAIRS and has_unsegmented(head):  # no spaces between words: character 4-grams
            pairs += ngrams(head, NOVELTY_PAIRS - len(pairs))
    if not pairs:
        return 0.0
    text = prompt[:NOVELTY_PROMPT_CHARS].lower()
    if system:
        text = f"{system[:NOVELTY_PROMPT_CHARS].lower()}\n{text}"
    return sum(1 for p in pairs if p not in text) / len(pairs)


def _novelty_pairs(head: str) -> dict[str, None]:
    """``answer_novelty``'s word pairs of an answer's head, at most ``NOVELTY_PAIRS``, in order."""
    pairs: dict[str, None] = {}
    prev = ""  # the previous token, when it ended without punctuation (a pair never spans a comma or a full stop)
    for tok in head.lower().split():
        word = tok.strip(_PUNCT)
        if not word.isalpha():
            prev = ""
            continue
        if prev and ((len(prev) > 3 and prev not in STOPWORDS) or (len(word) > 3 and word not in STOPWORDS)):
            pairs[f"{prev} {word}"] = None
            if len(pairs) >= NOVELTY_PAIRS:
                break
        prev = word if tok[-1:].isalpha() else ""
    return pairs


_KEY_LOWER = bytes.maketrans(bytes(range(65, 91)), bytes(range(97, 123)))
_KEY_DROP = bytes(b for b in range(128) if not (48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122))  # ASCII non-alnum


def answer_key(text: str | None) -> int:
    """A hash of an answer's head: of its first 400 characters, the first 200 ASCII letters (lower-cased), digits
    and non-ASCII bytes. Equal for the answer as served and as a client sends it back in a conversation's history
    after re-wrapping whitespace or stripping markdown (``continuity``). 0 for no text."""
    if not text:
        return 0
    head = text[:400].encode("utf-8", "surrogatepass").translate(_KEY_LOWER, _KEY_DROP)[:200]
    return (zlib.crc32(head) or 1) if head else 0


SPLIT_FROM = 400  # a text at least this long is cut into paragraphs (blank-line separated) for ``input_blocks``
MAX_BLOCKS = 64  # blocks hashed per request (the rest of a very long input is counted as new)


def input_blocks(texts: list[str]) -> tuple[int, ...]:
    """The blocks of a request's own texts (its messages but the assistant's), as (hash, characters) pairs in one
    flat tuple: a short text whole, a long one cut at blank lines. The account counts a block's characters as new
    input only the first time it sends that block (``AccountState.add``): a fixed system prompt, a preamble or a
    knowledge-base passage sent again, and the user turns of a conversation resent with each request, are not
    written anew. A very long input keeps its first ``MAX_BLOCKS`` blocks (the rest counts as new)."""
    out: list[int] = []
    for text in texts:
        if not text:
            continue
        parts = text.split("\n\n") if len(text) >= SPLIT_FROM else [text]
        last = len(parts) - 1
        for i, part in enumerate(parts):
            if len(out) >= 2 * MAX_BLOCKS:
                return tuple(out)
            if part:  # (a block's characters include the blank line after it: the blocks add up to the text)
                out.append(zlib.crc32(part.encode("utf-8", "surrogatepass")) or 1)
                out.append(len(part) + (2 if i < last else 0))
    return tuple(out)


TAIL_FROM = 1000  # prompts longer than this have their tail's markers read as well
TAIL_CHARS = 300


def _tail_lines(prompt: str) -> str:
    """The last ``TAIL_CHARS`` of a long prompt from the first line start inside them; without one, from a word
    start behind an ellipsis, so that the cut is not read as the start of the prompt (``^``-anchored markers)."""
    tail = prompt[-TAIL_CHARS:]
    cut = tail.find("\n")
    if cut >= 0:
        return tail[cut + 1:]
    return "… " + tail[tail.find(" ") + 1:]


def extract(rec: dict[str, Any], bench: BenchmarkIndex | None = None) -> RequestFeatures:
    """Features of one traffic record (contracts §1). Missing fields are tolerated."""
    get = rec.get
    req = get("request")
    if not isinstance(req, dict):
        req = {}
    view = PromptView(req)
    prompt = view.prompt
    lower = prompt[:600].lower()
    skel = mask(prompt)
    head, tail, ends = _skeleton_keys(skel)
    bits = marker_bits(lower)
    if len(prompt) > TAIL_FROM:
        # a long prompt's instruction may come last (a document, or a fixed preamble, before the task): its tail
        # is read too, from a line start so that line-anchored markers keep their meaning
        bits |= marker_bits(_tail_lines(prompt).lower())
    system = 0
    if view.system:
        system, sbits = _system_info(view.system[:300])
        bits |= sbits
    resp = get("response")
    status = resp.get("status", 200) if isinstance(resp, dict) else 200
    usage = get("usage")
    if not isinstance(usage, dict):
        usage = {}
    n = _num(req.get("n"), 1.0) or 1.0
    max_tokens = _num(req.get("max_tokens", req.get("max_completion_tokens")), 0.0) or 0.0
    ua = str(get("user_agent") or "")
    client, route = _client(ua, req, system)
    topic = topic_buckets(lower)
    turns = view.turns
    answer = resp.get("text") if isinstance(resp, dict) else None
    prompt_hash = zlib.crc32(prompt.encode())  # the whole prompt: a fixed preamble must not make prompts equal
    novelty = (answer_novelty(answer, prompt, view.system)
               if isinstance(answer, str) and not prompt_hash & NOVELTY_SAMPLE_MASK else -1.0)
    return RequestFeatures(
        id=str(get("id") or ""),
        ts=float(get("ts") or 0.0),
        key=str(get("key") or ""),
        ua=ua,
        ip_prefix=_ip_prefix(get("ip")),
        status=int(status) if isinstance(status, int) else 200,
        head=head,
        tail=tail,
        system=system,
        prompt_hash=prompt_hash,
        bits=bits,
        turns=turns,
        follow_up=turns >= 2 and builds_on_answer(lower, view.prev_answer,
                                                  answer if isinstance(answer, str) else None),
        temperature=_num(req.get("temperature"), None),
        n=int(n),
        max_tokens=int(max_tokens),
        prompt_chars=len(prompt),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        topic=topic,
        skeleton=ends,
        bench=bench.overlap(prompt) if bench is not None else 0.0,
        client=client,
        route=route,
        novelty=novelty,
        answer_key=answer_key(answer) if isinstance(answer, str) else 0,
        prev_key=answer_key(view.prev_answer) if turns >= 2 else 0,
        rendered=rendering_key(answer, prompt) if novelty >= RENDERED_MIN_NOVELTY else 0,  # type: ignore[arg-type]
        blocks=input_blocks(view.own),
        input_chars=view.input_chars,
        own_chars=view.own_chars,
    )


def from_ledger(record: Any, bench: BenchmarkIndex | None = None) -> RequestFeatures:
    """Features of a ``LedgerRecord`` (the online path)."""
    return extract(record.to_traffic(), bench)
