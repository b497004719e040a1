"""Visible identities of simulated tenants: ids shaped like the gateway's, neutral company and key
names, client IPs and user agents. Nothing here may reveal a tenant's label (tests check the words)."""

from __future__ import annotations

import random
import re

LABEL_WORDS = ("distill", "harvest", "sybil", "ring", "evasive", "label", "benign", "bot", "scrape", "attack",
               "evaluation", "fraud", "steal")
_LEAK = re.compile(r"(?i)\b(?:distill\w*|harvest\w*|sybil\w*|rings?\b|evasive|labels?\b|benign|bots?\b|scrap\w*|"
                   r"attack\w*|evaluat\w*|fraud\w*|steal\w*)")

_PREFIX = ("North", "Blue", "Silver", "Bright", "Cedar", "Granite", "Harbor", "Maple", "Orbit", "Pine", "Quartz",
           "River", "Summit", "Tidal", "Vista", "Willow", "Amber", "Coral", "Delta", "Ember", "Falcon", "Golden",
           "Iron", "Juniper", "Lumen", "Meadow", "Nova", "Oak", "Prairie", "Redwood", "Sage", "Terra", "Union",
           "Vertex", "Zephyr", "Atlas", "Beacon", "Crescent", "Aspen", "Kestrel", "Lark", "Mosaic", "Nimbus")
_ROOT = ("wind", "peak", "field", "stone", "light", "bridge", "brook", "gate", "line", "point", "wave", "crest",
         "leaf", "path", "forge", "works", "mark", "shore", "ridge", "view", "dale", "grove", "harbor", "loop")
_SUFFIX = ("Labs", "Analytics", "Health", "Systems", "Software", "Learning", "Legal", "Media", "Commerce",
           "Logistics", "Insurance", "Studio", "Technologies", "AI", "Data", "Partners", "Retail", "Finance",
           "Education", "Support", "Cloud", "Networks", "Bio", "Travel", "Games")
_KEY_NAMES = ("prod", "production", "staging", "backend", "api", "default", "worker", "service", "app", "web",
              "mobile", "internal", "pipeline", "jobs", "dev", "main")
_PURPOSES = ("chat", "coding", "search", "summarization", "classification", "fine-tuning", "research", "support",
             "tutoring", "writing", "analytics")
_USE_CASES = ("customer support assistant for our product", "internal knowledge base search",
              "coding assistant inside our IDE plugin", "document summarisation for analysts",
              "tutoring app for students", "content drafting for marketing", "research on model capabilities",
              "ticket classification and routing", "chat feature in our mobile app",
              "general assistant for employees", "data extraction from contracts", "translation and localisation")

SDK_AGENTS: tuple[tuple[str, float], ...] = (
    ("OpenAI/Python 1.54.0", 6), ("OpenAI/Python 1.52.2", 4), ("OpenAI/Python 1.40.6", 3),
    ("AsyncOpenAI/Python 1.54.3", 4), ("AsyncOpenAI/Python 1.35.10", 2), ("OpenAI/Python 1.12.0", 1),
    ("OpenAI/NodeJS/4.67.3", 4), ("OpenAI/NodeJS/4.52.0", 2), ("OpenAI/JS 4.71.1", 2),
    ("python-requests/2.32.3", 2), ("python-requests/2.31.0", 1), ("python-httpx/0.27.2", 2),
    ("axios/1.7.7", 2), ("Go-http-client/2.0", 1), ("Go-http-client/1.1", 1), ("okhttp/4.12.0", 1),
    ("curl/8.5.0", 0.3), ("Java-http-client/17.0.12", 0.5), ("RestSharp/110.2.0.0", 0.3),
    ("aiohttp/3.10.10 Python/3.11", 1), ("Ruby", 0.3), ("langchain-openai/0.2.3 OpenAI/Python 1.52.0", 1),
)


def hexid(rng: random.Random, prefix: str, nbytes: int = 8) -> str:
    """``prefix_`` + hex, like ``access.keys.new_id`` (16 hex chars)."""
    return f"{prefix}_{rng.getrandbits(nbytes * 8):0{nbytes * 2}x}"


def request_id(ts: float, rng: random.Random) -> str:
    """Like ``ledger.record.new_request_id``: time-ordered ms prefix + 14 hex of randomness."""
    return f"req_{round(ts * 1000):011x}{rng.getrandbits(56):014x}"


def company_name(rng: random.Random) -> str:
    return f"{rng.choice(_PREFIX)}{rng.choice(_ROOT)} {rng.choice(_SUFFIX)}"


def key_name(rng: random.Random, i: int) -> str:
    base = rng.choice(_KEY_NAMES)
    return base if i == 0 and rng.random() < 0.5 else f"{base}-{i + 1}"


def use_case(rng: random.Random) -> tuple[str, list[str]]:
    return rng.choice(_USE_CASES), rng.sample(_PURPOSES, rng.randint(1, 2))


def user_agent(rng: random.Random) -> str:
    names, weights = zip(*SDK_AGENTS)
    return rng.choices(names, weights=weights)[0]


# public-looking /8 blocks (cloud providers and ISPs); never private, loopback or documentation ranges
_CLOUD_BLOCKS = (3, 13, 18, 20, 34, 35, 44, 52, 54, 104, 137, 138, 146, 157, 159, 164, 167, 178, 188)
_HOME_BLOCKS = (24, 47, 50, 67, 68, 71, 73, 76, 81, 82, 86, 90, 92, 98, 99, 108, 109, 174, 176, 185, 212, 217)


def ip_address(rng: random.Random, residential: bool = False, block16: tuple[int, int] | None = None) -> str:
    """An IPv4 address; ``block16`` pins the first two octets (hosts of one provider region)."""
    if block16 is None:
        block16 = (rng.choice(_HOME_BLOCKS if residential else _CLOUD_BLOCKS), rng.randint(1, 254))
    return f"{block16[0]}.{block16[1]}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def block16(rng: random.Random) -> tuple[int, int]:
    return rng.choice(_CLOUD_BLOCKS), rng.randint(1, 254)


def leaks_label(text: str) -> bool:
    """Whether a visible name or user agent contains a word that gives a tenant's label away."""
    return _LEAK.search(text) is not None
