"""Distillation tenants: harvesters building a training set, and their evasive variants.

``harvest`` combines a prompt *style* (how prompts are made), a *timing* (how they are sent) and
optional disguises (paraphrase, desensitize, multi-turn follow-ups). Ring members share one style mix
and one topic/skill subset through ``Tenant.ring_rng``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from . import templates as T
from .benign import chat_body
from .corpus import Item, SimCorpus
from .tenant import CHAT, Behaviour, Req, Tenant
from .timing import diurnal_times, drip_times, steady_times, think_time

STYLES = ("selfinstruct", "seed_expansion", "grid", "persona", "stepbystep", "sweep", "code", "alpaca", "userlike")

Prompt = tuple[list[dict[str, str]], dict[str, Any]]
StyleFn = Callable[[random.Random, "Material"], Prompt]


class Material:
    """What a harvester draws prompts from (shared by a ring through the ring's random stream)."""

    def __init__(self, corpus: SimCorpus, ring_rng: random.Random) -> None:
        instruct = corpus.pool("instruct")
        self.instruct = instruct if len(instruct) >= 500 else instruct + corpus.pool("tool")
        self.code = corpus.pool("code")
        self.users = corpus.pool(*corpus.user_pools)
        self.seeds = corpus.pool("seed") or self.instruct
        self.gen_prompts = corpus.generation_prompts
        self.topics = ring_rng.sample(T.TOPICS, ring_rng.randint(25, len(T.TOPICS)))
        self.skills = ring_rng.sample(T.SKILLS, ring_rng.randint(8, len(T.SKILLS)))
        self.personas = ring_rng.sample(T.PERSONAS, ring_rng.randint(8, len(T.PERSONAS)))
        self.grid_pos = 0

    def pick(self, rng: random.Random, items: tuple[Item, ...]) -> Item:
        return items[rng.randrange(len(items))]


def _user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _selfinstruct(rng: random.Random, m: Material) -> Prompt:
    if rng.random() < 0.15:
        seeds = [(s.first_user, s.answer_text()[:300]) for s in (m.pick(rng, m.seeds) for _ in range(3))]
        text = rng.choice(m.gen_prompts).rstrip() + "\n" + T.seed_block(rng, seeds) + "\n\n4. Instruction:"
        return _user(text), {"temperature": 1.0, "top_p": 1.0, "max_tokens": 3072}
    return _user(m.pick(rng, m.instruct).first_user), {"temperature": 0.7}


def _seed_expansion(rng: random.Random, m: Material) -> Prompt:
    if rng.random() < 0.4:
        seeds = [(s.first_user, "") for s in (m.pick(rng, m.seeds) for _ in range(rng.randint(3, 6)))]
        text = rng.choice(T.SEED_EXPANSION).format(seeds=T.seed_block(rng, seeds, numbered=False),
                                                   k=rng.choice((5, 10, 20)))
        return _user(text), {"temperature": rng.choice((0.9, 1.0, 1.1))}
    return _user(m.pick(rng, m.seeds if rng.random() < 0.3 else m.instruct).first_user), {}


def _grid(rng: random.Random, m: Material) -> Prompt:
    i = m.grid_pos
    m.grid_pos += 1
    topic = m.topics[i // len(m.skills) % len(m.topics)]
    skill = m.skills[i % len(m.skills)]
    return _user(skill.format(t=topic)), {"temperature": rng.choice((0.7, 0.8))}


def _persona(rng: random.Random, m: Material) -> Prompt:
    persona = rng.choice(m.personas)
    task = (rng.choice(m.skills).format(t=rng.choice(m.topics)) if rng.random() < 0.5
            else m.pick(rng, m.instruct).first_user)
    if rng.random() < 0.6:
        return ([{"role": "system", "content": f"You are {persona}. Stay in character in every answer."},
                 {"role": "user", "content": task}], {"temperature": 0.9})
    return _user(f"Pretend you are {persona}. {task}"), {"temperature": 0.9}


def _stepbystep(rng: random.Random, m: Material) -> Prompt:
    item = m.pick(rng, m.instruct if rng.random() < 0.6 else (m.users or m.instruct))
    tmpl = rng.choice(T.STEP_BY_STEP)
    text = tmpl.format(q=item.first_user[:1500], a=item.answer_text()[:1500] or item.first_user[:200])
    return _user(text), {"temperature": 0.3, "max_tokens": 2048}


def _sweep(rng: random.Random, m: Material) -> Prompt:
    item = m.pick(rng, m.instruct)
    params: dict[str, Any] = {"temperature": rng.choice((0.2, 0.6, 1.0, 1.3))}
    if rng.random() < 0.6:
        params["n"] = rng.choice((3, 4, 5, 8))
    return _user(item.first_user), params


def _code(rng: random.Random, m: Material) -> Prompt:
    item = m.pick(rng, m.code or m.instruct)
    suffix = rng.choice(("", "", "\n\nInclude comments and explain the solution.", "\n\nAlso give the time complexity."))
    return _user(item.first_user + suffix), {"temperature": 0.2}


def _alpaca(rng: random.Random, m: Material) -> Prompt:
    return _user(T.ALPACA_FORMAT.format(q=m.pick(rng, m.instruct).first_user)), {"temperature": 0.7, "max_tokens": 1024}


def _userlike(rng: random.Random, m: Material) -> Prompt:
    """Real user prompts (what ShareGPT-style datasets collect), sent as a new account would."""
    return _user(m.pick(rng, m.users or m.instruct).first_user), {}


STYLE_FNS: dict[str, StyleFn] = {
    "selfinstruct": _selfinstruct, "seed_expansion": _seed_expansion, "grid": _grid, "persona": _persona,
    "stepbystep": _stepbystep, "sweep": _sweep, "code": _code, "alpaca": _alpaca, "userlike": _userlike,
}


def _times(t: Tenant, n: int, timing: str, rng: random.Random) -> list[float]:
    t0, t1 = t.t0, t.t1
    if timing == "drip":
        return drip_times(rng, n, t0, t1)
    if timing in ("human", "diurnal"):
        return diurnal_times(rng, n, t0, t1, t.tz_hours, burstiness=0.3)
    if timing == "window":  # a ring member: a short staggered campaign
        span = float(t.spec.param("span_s", 2 * 86400.0))
        start = t0 + rng.uniform(0, max(t1 - t0 - span, 1.0))
        return sorted(rng.uniform(start, start + span) for _ in range(n))
    # steady near the limit: every key sends at ~90% of its RPM
    rpm = float(t.spec.param("rpm", 60))
    interval = 60.0 / (rpm * rng.uniform(0.8, 0.95)) / max(1, len(t.ident.keys))
    start = t0 + rng.uniform(0, max((t1 - t0) - n * interval * 1.2, (t1 - t0) * 0.2))
    return steady_times(rng, n, start, interval, jitter=float(t.spec.param("jitter", 0.08)))


# Neutral boilerplate a padding harvester puts before every prompt (as a system prompt or a preamble): input tokens
# that cost little and make each answer look short next to its input, as a long-context product's do.
PADDING = (
    "This request comes from the content pipeline of a small publishing company.",
    "Every answer is read by an editor before it is used, and kept on file for later reference.",
    "Our readers are adults with a general interest in the subject and no special training.",
    "Please keep the tone friendly and plain, and avoid jargon where a simpler word will do.",
    "The company works in several countries, so prefer examples that make sense internationally.",
    "If something is uncertain, it is better to say so than to guess.",
    "Earlier answers in this series were well received, and we would like to keep the same quality.",
    "The team that reviews the answers meets once a week to discuss what worked well.",
    "Thank you for your help with this project; it is much appreciated by everyone involved.",
    "The material will appear on our website and in a printed newsletter.",
)


def _padding(rng: random.Random) -> tuple[str, str]:
    """(where, text): a padding block of 1.5-3k characters, as a system prompt or a preamble to every prompt."""
    lines = rng.sample(PADDING, rng.randint(4, len(PADDING)))
    text, size = [], rng.randint(1500, 3000)
    while sum(len(x) + 1 for x in text) < size:
        text.append(lines[len(text) % len(lines)])
    return rng.choice(("system", "preamble")), " ".join(text)


def harvest(t: Tenant, n: int, styles: tuple[str, ...] | None = None, timing: str | None = None,
            blend: bool = False) -> Behaviour:
    """A harvester sending ``n`` requests; spec params: styles, timing, paraphrase, desensitize, multiturn, pad (the
    chance that the harvester, or its ring, pads every request with a long block: ``_padding``).

    ``blend``: the harvester hides inside the account's own product (``t.extra["product"]``, set by the product's
    behaviour): it sends the product's model, system prompt and sampling parameters, so its requests have the same
    client shape as the product's.
    """
    rng = t.rng
    ring_rng = t.ring_rng()
    styles = styles or tuple(t.spec.param("styles") or ring_rng.sample(STYLES, ring_rng.randint(1, 3)))
    timing = timing or str(t.spec.param("timing", "steady"))
    paraphrase = float(t.spec.param("paraphrase", 0.0))
    desensitize = float(t.spec.param("desensitize", 0.0))
    multiturn = float(t.spec.param("multiturn", 0.0))
    fixed_temp = t.spec.param("fixed_temp")  # one temperature for everything, no n sweeps (hides the sweep)
    model = str(t.spec.param("model") or ring_rng.choice(("gpt-4o", "gpt-4o", "gpt-4o-mini")))
    mat = Material(t.corpus, ring_rng)
    if not mat.instruct:
        return
    pad = float(t.spec.param("pad", 0.0))
    padding = _padding(ring_rng) if pad and ring_rng.random() < pad else None
    n_keys = len(t.ident.keys)
    sent = 0
    for ts in _times(t, n, timing, rng):
        if sent >= n:
            return
        msgs, params = STYLE_FNS[rng.choice(styles)](rng, mat)
        product = t.extra.get("product") if blend else None
        if product:
            model, params = product["model"], dict(product["params"])
            if product["system"] and msgs[0]["role"] != "system":
                msgs = [{"role": "system", "content": product["system"]}, *msgs]
        elif fixed_temp is not None:
            params = {k: v for k, v in params.items() if k not in ("temperature", "n", "top_p")}
            params["temperature"] = fixed_temp
        if padding is not None and not product:
            where, block = padding
            if where == "system":
                msgs = [{"role": "system", "content": block}, *(m for m in msgs if m["role"] != "system")]
            else:
                msgs[-1] = {"role": "user", "content": f"{block}\n\n{msgs[-1]['content']}"}
        last = msgs[-1]["content"]
        if paraphrase and rng.random() < paraphrase:
            last = T.paraphrase(rng, last)
        if desensitize and rng.random() < desensitize:
            last = T.desensitize(rng, last)
        msgs[-1] = {"role": "user", "content": last}
        key = sent % n_keys
        reply = yield Req(ts, CHAT, chat_body(model, msgs, **params), key)
        sent += 1
        if multiturn and rng.random() < multiturn and reply.status == 200 and reply.text and sent < n:
            follow = msgs + [{"role": "assistant", "content": reply.text},
                             {"role": "user", "content": rng.choice(T.CHAT_FOLLOWUPS)}]
            ts2 = ts + reply.latency_s + think_time(rng, len(reply.text))
            yield Req(ts2, CHAT, chat_body(model, follow, **{k: v for k, v in params.items() if k != "n"}), key)
            sent += 1
