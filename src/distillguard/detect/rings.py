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
from scipy.sparse import coo_matrix, csr_matrix
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
    the scaffolds' word 3-grams; a shared client fingerprint lowers the similarity needed). Each distinct scaffold
    text is hashed, inserted and queried once (many accounts share a template), and the account pairs of two
    matching scaffolds are linked in one numpy step, so the cost follows the distinct scaffolds, not the accounts.
    """
    cand = [s for s in states if s.n >= MIN_REQUESTS]
    lsh = MinHashLSH(threshold=LSH_THRESHOLD, num_perm=NUM_PERM)
    texts: dict[str, int] = {}  # distinct scaffold text -> its id
    minhashes: list[MinHash] = []
    users: list[list[int]] = []  # scaffold id -> accounts (in order) having it among their dominant scaffolds
    for i, s in enumerate(cand):
        for sc in dominant_scaffolds(s):
            t = texts.get(sc)
            if t is None:
                t = texts[sc] = len(minhashes)
                minhashes.append(scaffold_minhash(sc))
                users.append([])
                lsh.insert(t, minhashes[t])
            if not users[t] or users[t][-1] != i:
                users[t].append(i)
    fp_codes: dict[str, int] = {}
    fps = np.array([fp_codes.setdefault(_fingerprint(s), len(fp_codes)) for s in cand], np.int64)
    no_fp = fp_codes.get("|", -1)
    acc = [np.asarray(u, np.int64) for u in users]
    ii: list[np.ndarray] = []
    jj: list[np.ndarray] = []
    vv: list[np.ndarray] = []
    for a, m in enumerate(minhashes):
        for b in lsh.query(m):
            jac = m.jaccard(minhashes[b])
            if jac < EDGE_JACCARD_SAME_CLIENT:
                continue
            i, j = np.meshgrid(acc[a], acc[b], indexing="ij")
            i, j = i.ravel(), j.ravel()
            same = (fps[i] == fps[j]) & (fps[i] != no_fp)
            keep = (j > i) & (jac >= np.where(same, EDGE_JACCARD_SAME_CLIENT, EDGE_JACCARD))
            if keep.any():
                ii.append(i[keep])
                jj.append(j[keep])
                vv.append(np.full(int(keep.sum()), jac))
    if not ii:
        return []
    # one edge per account pair, with its best similarity
    i_all, j_all, v_all = np.concatenate(ii), np.concatenate(jj), np.concatenate(vv)
    order = np.lexsort((-v_all, j_all, i_all))
    i_all, j_all, v_all = i_all[order], j_all[order], v_all[order]
    first = np.concatenate(([True], (i_all[1:] != i_all[:-1]) | (j_all[1:] != j_all[:-1])))
    rows, cols, sims = i_all[first], j_all[first], v_all[first]
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(cand), len(cand)))
    _, comp = connected_components(graph, directed=False)
    groups: dict[int, list[int]] = {}
    for i in sorted(set(rows.tolist()) | set(cols.tolist())):
        groups.setdefault(int(comp[i]), []).append(i)
    edge_comp = comp[rows]
    rings: list[Ring] = []
    for c, idx in sorted(groups.items(), key=lambda g: (-len(g[1]), min(cand[i].org for i in g[1]))):
        if len(idx) < MIN_MEMBERS:
            continue
        edge = sims[edge_comp == c]
        rings.append(Ring(id="", members=sorted(cand[i].org for i in idx),
                          similarity=float(np.mean(edge)) if len(edge) else 0.0,
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
TOPIC_WORKING_MB = 128


def warm_up() -> None:
    """Import what ``topic_rings`` imports on first use (scikit-learn, ~0.7 s): ``parallel`` does it while its
    workers run."""
    from sklearn.cluster import DBSCAN  # noqa: F401


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
    graph = topic_neighbours(x, TOPIC_EPS)
    lab = DBSCAN(eps=TOPIC_EPS, min_samples=MIN_MEMBERS, metric="precomputed").fit_predict(graph)
    rings = []
    for c in sorted(set(lab.tolist()) - {-1}):
        idx = np.flatnonzero(lab == c)
        sub = x[idx]
        sim = float(((sub @ sub.T).sum() - len(idx)) / max(1, len(idx) * (len(idx) - 1)))
        members = [cand[i] for i in idx]
        rings.append(Ring(id="", members=sorted(s.org for s in members), similarity=sim,
                          shared_scaffold=_shared_scaffold(members), basis="topic profile"))
    return rings


def topic_neighbours(x: np.ndarray, eps: float) -> csr_matrix:
    """The sparse graph of cosine distances ≤ ``eps`` between the rows of ``x`` (L2-normalised), for DBSCAN's
    ``metric="precomputed"``: the same neighbourhoods as ``metric="cosine"`` (up to float32 rounding of the
    products), with each pair's product computed once (upper blocks only) and in single precision, in blocks of
    ``TOPIC_WORKING_MB``. Identical profiles are stored as explicit zero distances (a neighbour all the same)."""
    n = len(x)
    xf = np.ascontiguousarray(x, dtype=np.float32)
    step = max(1, int(TOPIC_WORKING_MB * 2**20) // (4 * n))
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    for i0 in range(0, n, step):
        d = xf[i0 : i0 + step] @ xf[i0:].T
        np.subtract(np.float32(1.0), d, out=d)
        r, c = np.nonzero(d <= eps)
        upper = c > r  # column offset i0 as well: c is relative to i0, like r
        r, c = r[upper], c[upper]
        rows.append(r + i0)
        cols.append(c + i0)
        vals.append(np.maximum(d[r, c], 0.0).astype(np.float64))
    r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
    return csr_matrix((np.concatenate((v, v)), (np.concatenate((r, c)), np.concatenate((c, r)))), shape=(n, n))


def _shared_scaffold(states: Sequence[AccountState]) -> str:
    """The recurring scaffold shared by the most members."""
    count: dict[str, int] = {}
    for s in states:
        for sk in dominant_scaffolds(s):  # distinct already
            count[sk] = count.get(sk, 0) + 1
    return min(count, key=lambda k: (-count[k], k)) if count else ""  # ties: the same one in every process


def merged(states: Sequence[AccountState], ring: Ring) -> AccountState:
    """The ring as one pseudo-account."""
    by_org = {s.org: s for s in states}
    acc = AccountState(ring.id)
    acc.members = []
    for org in ring.members:
        acc.merge(by_org[org], finish=False)
    acc.finish_merge()
    return acc
