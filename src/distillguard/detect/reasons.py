"""Human-checkable reasons for a verdict: top features with values, example requests, ring members."""

from __future__ import annotations

from .account import FEATURE_HELP, AccountState
from .model import ScoringModel
from .rings import Ring

TOP_FEATURES = 4


def feature_reasons(model: ScoringModel, v: dict[str, float], cls: str, top: int = TOP_FEATURES) -> list[str]:
    """The features pushing hardest towards ``cls``, with their values."""
    out = []
    for name, value, contrib in model.contributions(v, cls)[:top]:
        if contrib <= 0:
            break
        out.append(f"{name}={value:.3g} ({FEATURE_HELP.get(name, name)}; +{contrib:.2f} towards {cls})")
    return out


def example_reasons(state: AccountState, limit: int = 3) -> list[str]:
    """Request ids that show the account's strongest patterns."""
    out = []
    h, c = state.top_scaffold()
    if c >= 3 and state.n:
        skel = state.skeletons.get(h, "")
        rid = state.head_example.get(h, "")
        out.append(f"scaffold used by {c}/{state.n} requests: '{skel[:80]}' (e.g. {rid})")
    ranked = sorted(state.examples.items(), key=lambda kv: -len(kv[1]))
    for what, ids in ranked[:limit]:
        out.append(f"examples of {what}: {', '.join(ids[:3])}")
    return out


def ring_reasons(ring: Ring, ring_score: float, shown: int = 8) -> list[str]:
    members = ", ".join(ring.members[:shown]) + (f", … (+{len(ring.members) - shown})" if len(ring.members) > shown else "")
    return [
        f"{ring.id}: {len(ring.members)} accounts scored together = {ring_score:.3f}; "
        f"linked by {ring.basis} (similarity {ring.similarity:.2f}); shared scaffold '{ring.shared_scaffold[:80]}'",
        f"ring members: {members}",
    ]
