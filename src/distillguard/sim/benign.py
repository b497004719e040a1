"""Benign tenants: chat products, coding assistants, RAG apps, batch jobs, fine-tuning customers.

Each function is a behaviour (see ``tenant``): it yields requests and receives the replies.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from . import templates as T
from .corpus import Item
from .tenant import CHAT, Behaviour, Req, Tenant
from .timing import diurnal_times, steady_times, think_time, working_hours_times

T_ = TypeVar("T_")

MODELS = ("gpt-4o-mini", "gpt-4o-mini", "gpt-4o-mini", "gpt-4o")


def chat_body(model: str, messages: list[dict[str, str]], **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": [dict(m) for m in messages]}
    body.update({k: v for k, v in params.items() if v is not None})
    return body


def user_turns(item: Item) -> list[str]:
    return [m["content"] for m in item.messages if m["role"] == "user" and m["content"].strip()]


class TopicDrift:
    """A tenant's interest over coarse topics, drifting as a random walk."""

    def __init__(self, rng: random.Random, topics: list[str]) -> None:
        self.rng = rng
        self.topics = topics
        self.w = [rng.lognormvariate(0, 1.0) for _ in topics]

    def step(self) -> None:
        self.w = [w * math.exp(self.rng.gauss(0, 0.35)) for w in self.w]

    def pick(self) -> str:
        return self.rng.choices(self.topics, weights=self.w)[0]


def _session_params(rng: random.Random) -> dict[str, Any]:
    p: dict[str, Any] = {}
    if rng.random() < 0.5:
        p["temperature"] = rng.choice((0.7, 0.8, 1.0, 0.5, 0.3, 1.2))
    if rng.random() < 0.3:
        p["max_tokens"] = rng.choice((512, 800, 1024, 2048, 4096))
    if rng.random() < 0.25:
        p["stream"] = True
    if rng.random() < 0.08:
        p["n"] = rng.choice((2, 3))  # products that show several drafts
    return p


def _slider(rng: random.Random) -> tuple[float, ...]:
    """The temperatures a product's users pick with a "creativity" slider (empty: the product fixes it)."""
    if rng.random() < 0.35:
        return tuple(rng.sample((0.0, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5), rng.randint(3, 7)))
    return ()


def long_system(rng: random.Random, base: str | None) -> str | None:
    """Sometimes (30%) a product's system prompt grown into a long fixed block of house rules (1-4k characters)."""
    if rng.random() >= 0.3:
        return base
    rules = rng.sample(T.PRODUCT_POLICY, rng.randint(6, len(T.PRODUCT_POLICY)))
    sep = rng.choice(("\n", "\n- ", " ", "\n\n"))
    text = sep.join(rules)
    size = rng.randint(1000, 4000)
    while len(text) < size:  # a product's glossary or FAQ appended to the rules
        text += sep + sep.join(rng.sample(rules, len(rules)))
    return f"{base}\n\n{text[:size]}" if base else text[:size]


def chat_product(t: Tenant, n: int) -> Behaviour:
    """A chat app relaying real user conversations turn by turn; diurnal sessions, drifting topics. Spec param
    ``memory`` (default true): false for a bot that sends each user message alone, without the conversation so far."""
    rng = t.rng
    memory = bool(t.spec.param("memory", True))
    groups = t.corpus.by_topic(*t.corpus.user_pools)
    if not groups:
        return
    drift = TopicDrift(rng, list(groups))
    model = rng.choice(MODELS)
    params = _session_params(rng)
    system = None
    if rng.random() < 0.6:
        system = rng.choice(("You are a helpful assistant.", f"You are {t.ident.name}'s friendly assistant.",
                             "You are a helpful assistant. Answer in the user's language.",
                             f"You are the in-app assistant of {t.ident.name}. Be concise and polite."))
    system = long_system(rng, system)
    max_turns = rng.randint(3, 8)
    slider = _slider(rng)
    t.extra["product"] = {"model": model, "system": system, "params": dict(params)}  # what a blending script copies
    steady = rng.random() < 0.15  # relayed through a queue: machine-paced arrivals
    sent = 0
    starts = (_steady_starts(t, n) if steady else _starts(t, n, 1.6, 0.35))
    for i, start in enumerate(starts):
        if i % 15 == 14:
            drift.step()
        if slider:
            params = {**params, "temperature": rng.choice(slider)}
        items = groups[drift.pick()]
        item = items[rng.randrange(len(items))]
        msgs: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
        ts = start
        turns = user_turns(item)[:max_turns]
        if rng.random() < 0.12:
            turns.append(rng.choice(T.CHAT_FOLLOWUPS))
        key = rng.randrange(len(t.ident.keys))
        for u in turns:
            msgs.append({"role": "user", "content": u})
            sent_msgs = msgs if memory else [*msgs[:1 if system else 0], msgs[-1]]
            reply = yield Req(ts, CHAT, chat_body(model, sent_msgs, **params), key)
            sent += 1
            if sent >= n:
                return
            if reply.status != 200 or reply.text is None:
                break
            msgs.append({"role": "assistant", "content": reply.text})
            ts += reply.latency_s + think_time(rng, len(reply.text))


def qa_app(t: Tenant, n: int) -> Behaviour:
    """A question-answering product (homework help, a search box, a Slack "ask" command): each end user's question
    sent once, alone, behind the product's system prompt; diurnal. The shape of single-shot harvesting of real user
    prompts, with nothing collected."""
    rng = t.rng
    questions = t.corpus.pool(*t.corpus.user_pools)
    if not questions:
        return
    model = rng.choice(MODELS)
    params = _session_params(rng)
    system = rng.choice((None, f"You are {t.ident.name}'s answer engine. Answer clearly and completely.",
                         "You are a patient tutor. Explain your answers."))
    system = long_system(rng, system)
    for ts in diurnal_times(rng, n, t.t0, t.t1, t.tz_hours, burstiness=0.35):
        q = questions[rng.randrange(len(questions))].first_user[:2000]
        msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": q}]
        yield Req(ts, CHAT, chat_body(model, msgs, **params), rng.randrange(len(t.ident.keys)))


def _starts(t: Tenant, n: int, turns_per_session: float, burstiness: float) -> Iterator[float]:
    """Session start times over the window, in rounds until the caller has sent its budget
    (at most ``n`` sessions in all: every session sends at least one request)."""
    left = n
    while left > 0:
        batch = max(1, min(left, int(left / turns_per_session) + 1))
        yield from diurnal_times(t.rng, batch, t.t0, t.t1, t.tz_hours, burstiness=burstiness)
        left -= batch


def _steady_starts(t: Tenant, n: int) -> Iterator[float]:
    """Session starts drained from a queue at a steady pace around the clock (a relay with a rate cap)."""
    interval = (t.t1 - t.t0) / max(n, 1) * t.rng.uniform(0.3, 0.9)
    start = t.t0 + t.rng.uniform(0, max(t.t1 - t.t0 - n * interval, 1.0))
    yield from steady_times(t.rng, n, start, interval, jitter=t.rng.choice((0.05, 0.2, 0.5)))


def coding_assistant(t: Tenant, n: int) -> Behaviour:
    """An IDE assistant: code questions with a system prompt, short follow-ups, working hours."""
    rng = t.rng
    sharegpt_code = t.corpus.by_topic("chat").get("code", ())
    code = t.corpus.pool("code")
    system = long_system(rng, rng.choice(T.CODING_SYSTEMS))
    model = rng.choice(("gpt-4o", "gpt-4o-mini"))
    temp = rng.choice((None, 0.2, 0.0, 0.3))
    temps = rng.sample((0.0, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0), rng.randint(2, 5)) if rng.random() < 0.3 else None
    sent = 0
    for start in _starts(t, n, 1.35, 0.4):
        if temps:
            temp = rng.choice(temps)
        src = sharegpt_code if sharegpt_code and rng.random() < 0.5 else code
        if not src:
            return
        item = src[rng.randrange(len(src))]
        msgs = [{"role": "system", "content": system}, {"role": "user", "content": item.first_user}]
        ts = start
        follow = rng.random() < 0.35
        for step in range(2 if follow else 1):
            reply = yield Req(ts, CHAT, chat_body(model, msgs, temperature=temp), 0)
            sent += 1
            if sent >= n or reply.status != 200 or reply.text is None:
                if sent >= n:
                    return
                break
            msgs = msgs + [{"role": "assistant", "content": reply.text},
                           {"role": "user", "content": rng.choice(T.CODING_FOLLOWUPS)}]
            ts += reply.latency_s + think_time(rng, 400)


def rag_app(t: Tenant, n: int) -> Behaviour:
    """Retrieval-augmented QA: long contexts from the tenant's document store + a user question."""
    rng = t.rng
    docs = t.corpus.docs
    questions = t.corpus.pool(*t.corpus.user_pools)
    if not docs or not questions:
        return
    # a chunked knowledge base: each chunk a fixed text, retrieved again and again for related questions
    store = [docs[rng.randrange(len(docs))][:rng.randint(800, 4000)] for _ in range(min(300, len(docs)))]
    system = T.RAG_SYSTEM.format(company=t.ident.name)
    model = rng.choice(MODELS)
    k = rng.randint(3, 6)
    # how the product lays out its context: a chunk inline behind its number, or as a paragraph of its own
    cite = rng.choice(("[{i}] {chunk}", "Document {i}:\n\n{chunk}"))
    for ts in diurnal_times(rng, n, t.t0, t.t1, t.tz_hours, burstiness=0.2):
        ctx = "\n\n".join(cite.format(i=i + 1, chunk=rng.choice(store)) for i in range(k))
        q = questions[rng.randrange(len(questions))].first_user[:600]
        msgs = [{"role": "system", "content": system},
                {"role": "user", "content": f"Context:\n{ctx}\n\nQuestion: {q}"}]
        yield Req(ts, CHAT, chat_body(model, msgs, temperature=rng.choice((0.0, 0.1, 0.2)), max_tokens=600),
                  rng.randrange(len(t.ident.keys)))


def _dealer(rng: random.Random, items: Sequence[T_]) -> Callable[[], T_]:
    """Deal ``items`` in a shuffled order, each once before any repeats: a batch job or a data-building run goes
    through its documents or questions once (drawing with replacement repeated a third of the prompts, a duplicate
    rate no real pipeline over distinct records has)."""
    order: list[int] = []

    def deal() -> T_:
        if not order:
            order.extend(range(len(items)))
            rng.shuffle(order)
        return items[order.pop()]

    return deal


def batch_job(t: Tenant, n: int) -> Behaviour:
    """Internal classifiers and summarisers over documents: fixed templates, temperature 0, steady runs."""
    rng = t.rng
    jobs = rng.sample(T.BATCH_TEMPLATES, rng.randint(1, 2))
    tickets = t.corpus.pool(*t.corpus.user_pools)
    docs = t.corpus.docs
    per_hour = rng.choice((120, 300, 600, 1200, 2400))
    model = "gpt-4o-mini"
    if rng.random() < 0.4:  # a pipeline running around the clock
        times = steady_times(rng, n, t.t0 + rng.uniform(0, 3600.0), 3600.0 / per_hour, jitter=rng.choice((0.02, 0.1)))
    else:
        times = working_hours_times(rng, n, t.t0, t.t1, t.tz_hours, per_hour)
    next_doc = _dealer(rng, docs)
    next_ticket = _dealer(rng, tickets)
    for i, ts in enumerate(times):
        kind, tmpl = jobs[i % len(jobs)] if rng.random() < 0.8 else rng.choice(jobs)
        if kind in ("summarize", "tag", "extract") and docs:
            doc = next_doc()[: rng.randint(600, 3000)]
        else:
            doc = next_ticket().first_user[:1500] if tickets else ""
        max_tokens = 5 if kind == "classify" else rng.choice((150, 200, 300))
        body = chat_body(model, [{"role": "user", "content": tmpl.format(doc=doc)}], temperature=0,
                         max_tokens=max_tokens)
        yield Req(ts, CHAT, body, i % len(t.ident.keys))


def finetune_customer(t: Tenant, n: int) -> Behaviour:
    """Building a fine-tuning set for the provider's own models: templated, steady, allowed."""
    rng = t.rng
    tmpl = rng.choice(T.FINETUNE_TEMPLATES)
    questions = t.corpus.pool(*t.corpus.user_pools)
    if not questions:
        return
    model = rng.choice(("gpt-4o", "gpt-4o-mini"))
    times = working_hours_times(rng, n, t.t0, t.t1, t.tz_hours, rng.choice((60, 180, 400)))
    temps = rng.sample((0.2, 0.5, 0.7, 0.9, 1.0, 1.2), rng.randint(1, 5))  # they sweep for varied targets
    n_choices = (1, 1, 2, 4) if rng.random() < 0.4 else (1,)
    next_question = _dealer(rng, questions)
    for i, ts in enumerate(times):
        q = next_question().first_user[:1200]
        extra = {"n": rng.choice(n_choices)} if len(n_choices) > 1 else {}
        body = chat_body(model, [{"role": "user", "content": tmpl.format(company=t.ident.name, q=q)}],
                         temperature=rng.choice(temps), **extra)
        yield Req(ts, CHAT, body, i % len(t.ident.keys))
