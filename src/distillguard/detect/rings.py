"""Cross-account rings: accounts that share prompt scaffolds, or draw prompts from one topic profile, are clustered
and judged together.

Two independent groupings, each giving candidate rings:

- scaffolds: each account's dominant scaffolds (masked skeleton heads/tails covering ≥ 10% of its requests) get a
  MinHash (datasketch) of their word 3-grams; MinHash LSH finds accounts with near-duplicate scaffolds (paraphrases
  too), a shared client fingerprint (user agent + IP prefix) strengthens a pair, and the connected components of
  that graph (scipy sparse graph tools) are candidate rings;
- topic profiles: every account's hashed content-word profile (``AccountState.topic``), centred on the population
  and L2-normalised, is clustered with DBSCAN (scikit-learn, cosine). Sybils splitting one harvesting job share its
  prompt source and subject mix even when paraphrasing hides the scaffolds.

A candidate ring is only a grouping: it is scored as one pseudo-account (``AccountState.merge``) by the same model,
so 200 accounts of a few hundred requests each are judged on their joint behaviour (the engine calibrates the ring
threshold on clusters of benign dev accounts).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from datasketch import MinHash, MinHashLSH
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from .account import AccountState

NUM_PERM = 64
MIN_REQUESTS = 5  # accounts smaller than this are not clustered
MIN_MEMBERS = 3
LSH_THRESHOLD = 0.4  # LSH candidate threshold on estimated Jaccard of two scaffolds
EDGE_JACCARD = 0.5  # estimated Jaccard needed for an edge (lower if the client fingerprint is shared too)
EDGE_JACCARD_SAME_CLIENT = 0.35


@dataclass
class Ring:
    id: str
    members: list[str]
    similarity: float  # mean estimated Jaccard of the ring's edges
    shared_scaffold: str  # an example skeleton the members share
    basis: str = "scaffold"  # what links the members: "scaffold" (MinHash LSH) or "topic profile" (DBSCAN)


def _shingles(skeletons: Sequence[str]) -> set[bytes]:
    out: set[bytes] = set()
    for s in skeletons:
        toks = s.split(" ")
        if len(toks) < 3:
            out.add(s.encode())
            continue
        for i in range(len(toks) - 2):
            out.add(f"{toks[i]} {toks[i + 1]} {toks[i + 2]}".encode())
    return out


def dominant_scaffolds(state: AccountState, limit: int = 4) -> list[str]:
    """Skeleton ends (head part, tail part) that cover ≥ 10% of the account: what a template keeps fixed.

    Parts with fewer than four literal (non-placeholder) tokens are ignored: "<code>" is nobody's template.
    """
    need = max(3, int(0.1 * state.n))
    out: list[str] = []
    for counter, skels, part in ((state.heads, state.skeletons, 0), (state.tails, state.tail_skeletons, -1)):
        for h, c in counter.most_common(limit):
            if c < need or h not in skels:
                break
            text = skels[h].split(" | ")[part]
            if sum(1 for t in text.split(" ") if not t.startswith("<")) >= 4 and text not in out:
                out.append(text)
    return out


def scaffold_minhash(scaffold: str) -> MinHash:
    m = MinHash(num_perm=NUM_PERM, seed=7, hashfunc=zlib.crc32)
    m.update_batch(list(_shingles([scaffold])))
    return m


def _fingerprint(state: AccountState) -> str:
    ua = state.uas.most_common(1)[0][0] if state.uas else ""
    ip = state.ips.most_common(1)[0][0] if state.ips else ""
    return f"{ua}|{ip}"


def scaffold_rings(states: Sequence[AccountState]) -> list[Ring]:
    """Candidate rings (≥ MIN_MEMBERS accounts) of accounts sharing scaffolds.

    Two accounts are linked when one dominant scaffold of each is a near-duplicate of the other (MinHash LSH over
    the scaffolds' word 3-grams; a shared client fingerprint lowers the similarity needed).
    """
    cand = [s for s in states if s.n >= MIN_REQUESTS]
    lsh = MinHashLSH(threshold=LSH_THRESHOLD, num_perm=NUM_PERM)
    items: list[tuple[int, MinHash]] = []
    by_key: dict[str, MinHash] = {}
    for i, s in enumerate(cand):
        for k, sc in enumerate(dominant_scaffolds(s)):
            m = by_key[f"{i}:{k}"] = scaffold_minhash(sc)
            lsh.insert(f"{i}:{k}", m)
            items.append((i, m))
    fps = [_fingerprint(s) for s in cand]
    sims: dict[tuple[int, int], float] = {}
    for i, m in items:
        for key in lsh.query(m):
            j = int(key.split(":")[0])
            if j <= i:
                continue
            jac = m.jaccard(by_key[key])
            need = EDGE_JACCARD_SAME_CLIENT if fps[i] == fps[j] and fps[i] != "|" else EDGE_JACCARD
            if jac >= need and jac > sims.get((i, j), 0.0):
                sims[(i, j)] = jac
    if not sims:
        return []
    rows = [a for a, _ in sims]
    cols = [b for _, b in sims]
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(cand), len(cand)))
    _, comp = connected_components(graph, directed=False)
    groups: dict[int, list[int]] = {}
    for i in set(rows) | set(cols):
        groups.setdefault(int(comp[i]), []).append(i)
    rings: list[Ring] = []
    for idx in sorted(groups.values(), key=lambda g: (-len(g), min(cand[i].org for i in g))):
        if len(idx) < MIN_MEMBERS:
            continue
        sidx = set(idx)
        edge = [v for (a, b), v in sims.items() if a in sidx and b in sidx]
        rings.append(Ring(id="", members=sorted(cand[i].org for i in idx),
                          similarity=float(np.mean(edge)) if edge else 0.0,
                          shared_scaffold=_shared_scaffold([cand[i] for i in idx])))
    return rings


def find_rings(states: Sequence[AccountState], topics: bool = True) -> list[Ring]:
    """Candidate rings (≥ MIN_MEMBERS accounts) by scaffold and by topic profile, largest first; ids ``ring-1``,
    ``ring-2`` ... in that order. An account may be in one ring of each kind."""
    rings = scaffold_rings(states) + (topic_rings(states) if topics else [])
    rings.sort(key=lambda r: (-len(r.members), r.basis, r.members[0]))
    for k, r in enumerate(rings, 1):
        r.id = f"ring-{k}"
    return rings


TOPIC_EPS = 0.12  # DBSCAN radius in cosine distance between centred topic profiles
TOPIC_MIN_REQUESTS = 20  # accounts with fewer requests have no stable topic profile


def topic_rings(states: Sequence[AccountState]) -> list[Ring]:
    """Candidate rings from DBSCAN over the accounts' centred topic profiles (``similarity``: mean cosine)."""
    from sklearn.cluster import DBSCAN

    cand = [s for s in states if s.topic_n >= TOPIC_MIN_REQUESTS]
    if len(cand) < MIN_MEMBERS:
        return []
    x = np.array([np.frombuffer(s.topic, dtype=np.float64) for s in cand])
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
    x -= x.mean(axis=0)
    x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
    lab = DBSCAN(eps=TOPIC_EPS, min_samples=MIN_MEMBERS, metric="cosine").fit_predict(x)
    rings = []
    for c in sorted(set(lab.tolist()) - {-1}):
        idx = np.flatnonzero(lab == c)
        sub = x[idx]
        sim = float(((sub @ sub.T).sum() - len(idx)) / max(1, len(idx) * (len(idx) - 1)))
        members = [cand[i] for i in idx]
        rings.append(Ring(id="", members=sorted(s.org for s in members), similarity=sim,
                          shared_scaffold=_shared_scaffold(members), basis="topic profile"))
    return rings


def _shared_scaffold(states: Sequence[AccountState]) -> str:
    """The recurring scaffold shared by the most members."""
    count: dict[str, int] = {}
    for s in states:
        for sk in set(dominant_scaffolds(s)):
            count[sk] = count.get(sk, 0) + 1
    return max(count, key=lambda k: count[k]) if count else ""


def merged(states: Sequence[AccountState], ring: Ring) -> AccountState:
    """The ring as one pseudo-account."""
    by_org = {s.org: s for s in states}
    acc = AccountState(ring.id)
    acc.members = []
    for org in ring.members:
        acc.merge(by_org[org])
    return acc
