"""One upstream per route; one replay upstream for every replay route."""

from __future__ import annotations

from distillguard.config import ModelRoute, Settings
from distillguard.upstreams.openai import OpenAIUpstream
from distillguard.upstreams.registry import Upstreams
from distillguard.upstreams.replay import ReplayUpstream


async def test_upstreams_are_built_once_per_route(tmp_path):
    settings = Settings(home=tmp_path, models=[
        ModelRoute(name="a"), ModelRoute(name="b"),
        ModelRoute(name="up1", upstream="openai", base_url="http://127.0.0.1:9/v1"),
        ModelRoute(name="up2", upstream="openai", base_url="http://127.0.0.1:9/v1"),
    ])
    ups = Upstreams(settings)
    a, b = ups.get(settings.models[0]), ups.get(settings.models[1])
    assert isinstance(a, ReplayUpstream) and a is b
    assert a.cache_dir == tmp_path / "cache" and a.corpus_dir is None
    o1, o2 = ups.get(settings.models[2]), ups.get(settings.models[3])
    assert isinstance(o1, OpenAIUpstream) and o1 is not o2 and ups.get(settings.models[2]) is o1
    await ups.aclose()
    assert o1._client.is_closed and ups.get(settings.models[0]) is not a


async def test_replay_uses_the_configured_corpus_dir(tmp_path):
    settings = Settings(home=tmp_path, corpus_dir=tmp_path / "corpus")
    up = Upstreams(settings).get(ModelRoute(name="gpt-4o-mini"))
    assert up.corpus_dir == tmp_path / "corpus"
