"""The account scorer: a multinomial logistic regression over ``account.FEATURE_NAMES``, stored as plain JSON.

A linear model on standardised, scale-free features is deliberately simple: every score decomposes into per-feature
contributions that a reviewer can check (``contributions``), and it is less able to latch onto quirks of the traffic
it was trained on than a deep tree ensemble. The file also holds the scores of the benign *dev* accounts, so the flag
threshold for any target FPR is their (1 − FPR) quantile (calibration on benign traffic only).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .account import FEATURE_NAMES

CLASSES = ("benign", "distillation", "evaluation")
FAMILIES = ("account", "program", "templated")  # stream families with their own calibrated threshold (engine)


def family(sid: str) -> str:
    """The family of an engine stream id: "" (the account) or ``k:`` keys → account, ``c:``/``r:`` → program,
    ``t`` → templated."""
    return "program" if sid[:2] in ("c:", "r:") else "templated" if sid == "t" else "account"


def rescale(p: float, threshold: float, reference: float) -> float:
    """``p`` moved in logit space so that ``threshold`` lands on ``reference``: scores of every family on one scale
    (``rescale(p, t, r) >= r`` exactly when ``p >= t``)."""
    if threshold == reference or p <= 0.0 or p >= 1.0:
        return p
    lg = math.log(p / (1.0 - p)) - math.log(threshold / (1.0 - threshold)) + math.log(reference / (1.0 - reference))
    out = 1.0 / (1.0 + math.exp(-lg))
    # exact at the boundary, whatever the rounding: p ≥ threshold ⇔ result ≥ reference
    return max(out, reference) if p >= threshold else min(out, math.nextafter(reference, 0.0))


_B, _D, _E = (CLASSES.index(c) for c in ("benign", "distillation", "evaluation"))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


MODEL_FILE = "model.json"
DEFAULT_TARGET_FPR = 0.001
Z_CAP = 3.0  # standardised values are clipped: no single (rare) trait can outvote the rest of the evidence


@dataclass
class ScoringModel:
    features: tuple[str, ...]
    mean: list[float]
    scale: list[float]
    coef: list[list[float]]  # one row per class in CLASSES
    intercept: list[float]
    benign_scores: list[float] = field(default_factory=list)  # sorted P(distillation) of benign dev accounts
    benign_ring_scores: list[float] = field(default_factory=list)  # sorted scores of clusters of benign dev accounts
    # per stream family (FAMILIES): sorted highest score of each benign dev account's streams of that family
    benign_family_scores: dict[str, list[float]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    one_sided: tuple[str, ...] = ()  # features that count only above their mean (``ONE_SIDED``)
    # Small windows are weak evidence: a stream's standardised features are shrunk towards the benign accounts'
    # centre by n / (n + evidence_k) (n: its requests), in training and in scoring (``fit``). 0: no shrinkage.
    evidence_k: float = 0.0
    benign_center: list[float] = field(default_factory=list)

    # -- scoring --------------------------------------------------------------------------------------------------
    def _z(self, v: dict[str, float]) -> list[float]:
        z = [max(-Z_CAP, min(Z_CAP, (v.get(f, 0.0) - m) / s)) for f, m, s in zip(self.features, self.mean, self.scale)]
        for k in self._one_sided_idx:
            z[k] = max(0.0, z[k])
        n = v.get("requests")
        if self.evidence_k > 0.0 and n is not None and self.benign_center:
            w = n / (n + self.evidence_k)
            z = [c + w * (x - c) for x, c in zip(z, self.benign_center)]
        return z

    def __post_init__(self) -> None:
        self._one_sided_idx = tuple(k for k, f in enumerate(self.features) if f in self.one_sided)

    def probabilities(self, v: dict[str, float]) -> dict[str, float]:
        """P(distillation) from the distillation-vs-rest regression alone; the rest split by the evaluation-vs-benign
        one. The two are fitted separately (``fit``) and are not a softmax: there, a high evaluation logit took mass
        from distillation, so anything that makes a harvester look like a benchmark run (temperature 0, which the
        distillation weights may not use at all) lowered its score (ADR 0007)."""
        z = self._z(v)
        b, d, e = (self.intercept[i] + sum(c * x for c, x in zip(self.coef[i], z)) for i in (_B, _D, _E))
        p_d, p_e = _sigmoid(d - b), _sigmoid(e - b)  # (the benign logit is 0: both fits are against benign)
        return {"benign": (1.0 - p_d) * (1.0 - p_e), "distillation": p_d, "evaluation": (1.0 - p_d) * p_e}

    def contributions(self, v: dict[str, float], cls: str = "distillation") -> list[tuple[str, float, float]]:
        """(feature, value, contribution to the class logit relative to benign), largest first."""
        i, b = CLASSES.index(cls), CLASSES.index("benign")
        z = self._z(v)
        out = [
            (f, v.get(f, 0.0), (self.coef[i][k] - self.coef[b][k]) * z[k]) for k, f in enumerate(self.features)
        ]
        return sorted(out, key=lambda t: -t[2])

    # -- calibration ----------------------------------------------------------------------------------------------
    def threshold(self, target_fpr: float = DEFAULT_TARGET_FPR, family: str = "account") -> float:
        """Smallest score above the benign dev accounts' (1 − target_fpr) quantile (never below 0.5).

        With per-family calibration data, each stream family (``FAMILIES``: the account and its key streams; its
        client/route programs; its templated single-shot stream) gets its own threshold at ``target_fpr`` divided by
        the number of families (Bonferroni: an account is flagged if any family crosses its threshold). Without it,
        every family shares the threshold of the accounts' maximum over all their streams.
        """
        fams = self.benign_family_scores
        if fams and family in fams:
            s, target_fpr = fams[family], target_fpr / len(fams)
        else:
            s = self.benign_scores
        if not s:
            return 0.5
        k = min(len(s) - 1, max(0, math.ceil((1.0 - target_fpr) * len(s)) - 1))
        q = s[k]
        # A margin halfway towards 1 in logit space keeps unseen benign accounts from sitting on the threshold.
        return max(0.5, 1.0 - (1.0 - q) * 0.5)

    def ring_threshold(self, target_fpr: float = DEFAULT_TARGET_FPR) -> float:
        """Threshold for a candidate ring's pseudo-account: halfway (in logit space) between the highest-scoring
        cluster of benign dev accounts and the account threshold. Being clustered with other accounts on a shared
        scaffold or topic profile is itself evidence, but never more than halfway; without benign clusters to
        calibrate on, rings need the account threshold."""
        acct = self.threshold(target_fpr)
        if not self.benign_ring_scores:
            return acct
        q = min(max(self.benign_ring_scores[-1], 1e-6), acct)

        def logit(p: float) -> float:
            return math.log(p / (1.0 - p))

        mid = 0.5 * (logit(q) + logit(acct))
        return max(0.5, 1.0 / (1.0 + math.exp(-mid)))

    # -- storage --------------------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features), "mean": self.mean, "scale": self.scale, "classes": list(CLASSES),
            "coef": self.coef, "intercept": self.intercept, "benign_scores": self.benign_scores,
            "benign_ring_scores": self.benign_ring_scores, "benign_family_scores": self.benign_family_scores,
            "meta": self.meta, "one_sided": list(self.one_sided), "evidence_k": self.evidence_k,
            "benign_center": self.benign_center,
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ScoringModel:
        if tuple(d.get("classes", CLASSES)) != CLASSES:
            raise ValueError("model classes do not match")
        return cls(
            features=tuple(d["features"]), mean=list(d["mean"]), scale=list(d["scale"]), coef=d["coef"],
            intercept=list(d["intercept"]), benign_scores=sorted(d.get("benign_scores", [])),
            benign_ring_scores=sorted(d.get("benign_ring_scores", [])),
            benign_family_scores={k: sorted(v) for k, v in d.get("benign_family_scores", {}).items()},
            meta=d.get("meta", {}), one_sided=tuple(d.get("one_sided", ())),
            evidence_k=float(d.get("evidence_k", 0.0)), benign_center=list(d.get("benign_center", [])),
        )

    @classmethod
    def load(cls, path: str | Path | None = None) -> ScoringModel:
        """A model file, or the one shipped with the package."""
        if path is None:
            text = (resources.files("distillguard.detect") / MODEL_FILE).read_text()
        else:
            text = Path(path).read_text()
        return cls.from_json(json.loads(text))


# Domain prior on the direction of the distillation-vs-benign weights (see ``fit``): +1 may only raise the score,
# -1 may only lower it; features not listed are free.
SIGN_PRIOR: dict[str, int] = {
    "single_shot": 1, "any_marker": 1, "m_generate_n": 1, "m_step_by_step": 1, "m_output_format": 1,
    "m_persona": 1, "m_length_demand": 1, "m_rewrite_variant": 1, "m_dataset_format": 1, "m_imperative": 1,
    "scaffold_reuse": 1, "templated_breadth": 1, "topic_spread": 1, "n_multi": 1, "long_max_tokens": 1,
    "out_in_ratio": 1, "out_new_ratio": 1, "answer_grounding": -1, "follow_up": -1, "bench": -1,
    "m_answer_format": -1, "short_max_tokens": -1,
}


# Shallow traits the distillation weights may not use at all (bound to 0): each is free for a harvester to change
# (temperature 0, padding or trimming prompts) or is a property of the upstream's answers rather than of what the
# client asks for (realised completion length). The simulator's tenants differ in them by construction, so a model
# allowed to use them leaned on them hardest. The evaluation-vs-benign model may still use them: labelling a
# temperature-0 benchmark run ``evaluation`` never hides a distiller (a flag always wins over that label, and
# P(distillation) does not read the evaluation model at all: ``ScoringModel.probabilities``).
# ``short_max_tokens`` joined them after a check on dev traffic: with every harvester capping answers at 256 tokens
# (one request parameter), the model that let a short cap lower the score fell to AUC 0.48 / 0.60 (standard /
# evasive); trained without it, 0.985 / 0.93 under the same cap (docs/adr/0007-detection.md).
# ``dup_prompt`` and ``m_answer_format`` joined them after an evasion check on dev traffic (``detect.evasion``):
# wrapping every harvest prompt as "Question: ... Final answer:" (an answer-format marker) took the share of
# harvesters flagged from 0.92 to 0.01, and sending each prompt twice (duplicates) to 0.81; once those were out, a
# plain system prompt on every request took the retrained model from 0.93 to 0.60 (``system_share``). Each says how
# a prompt is dressed or how often it is sent, which a harvester sets for free; none says what is being collected.
# ``long_max_tokens`` and ``n_multi`` (may only raise) are still weighted: bound to 0 as well, the retrained model
# missed the hand-built harvesters of tests/detect (score 0.92 against 0.97). So a harvester that leaves
# ``max_tokens`` unset loses that raise: a known weakness (docs/adr/0007-detection.md).
# ``single_shot`` (the share of single-turn requests) joined them when follow-ups began to need an answer that
# continues the previous one: retrained, the model gave it +0.69, and a made-up earlier exchange before every
# prompt (free: ``detect.evasion``'s ``history``) then took the flagged share of dev harvesters from 0.94 to 0.79.
NOT_FOR_DISTILLATION: frozenset[str] = frozenset((
    "temp0", "prompt_len", "log_completion", "short_max_tokens", "dup_prompt", "m_answer_format", "system_share",
    "single_shot",
))
FIXED_ZERO = 2  # a "sign" for _constrained_logistic: the weight is bound to 0
# Features that count only above their training mean (below it, their standardised value is 0): evidence one way
# only. ``answer_grounding`` (the answer made of the prompt's own words: a summary, an extraction, a RAG answer) says
# "this job processes the customer's data"; its absence says nothing, since chat answers and harvested answers both
# bring new words. As a plain linear feature, every ungrounded account (a benign chat too) was pushed up. ``bench``
# likewise: benchmark text in the prompts says "evaluation"; its absence (nearly every account) is no evidence of
# harvesting, yet as a linear feature it added +2.4 to every such account and led the reasons of flagged ones.
ONE_SIDED: frozenset[str] = frozenset(("answer_grounding", "bench"))


def _constrained_logistic(z: Any, y: Any, signs: list[int], c: float) -> tuple[Any, float]:
    """Balanced-weight L2 logistic regression (y in {0, 1}) with per-weight sign bounds (scipy L-BFGS-B): +1 ≥ 0,
    -1 ≤ 0, 0 free, ``FIXED_ZERO`` = 0."""
    import numpy as np
    from scipy.optimize import minimize

    pos = y.sum()
    neg = len(y) - pos
    w_s = np.where(y == 1, len(y) / (2.0 * max(pos, 1)), len(y) / (2.0 * max(neg, 1)))
    d = z.shape[1]

    def loss(theta: Any) -> tuple[float, Any]:
        w, b = theta[:d], theta[d]
        m = z @ w + b
        p = 1.0 / (1.0 + np.exp(-np.clip(m, -40, 40)))
        ll = w_s * (np.logaddexp(0.0, m) - y * m)
        g = w_s * (p - y)
        return float(ll.sum() + 0.5 / c * (w @ w)), np.append(z.T @ g + w / c, g.sum())

    bounds = [(0.0, 0.0) if s == FIXED_ZERO else (0.0, None) if s > 0 else (None, 0.0) if s < 0 else (None, None)
              for s in signs] + [(None, None)]
    res = minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 3000})
    return res.x[:d], float(res.x[d])


def fit(
    vectors: Sequence[dict[str, float]], labels: Sequence[str], *, c: float = 0.5, seed: int = 0,
    exclude: Sequence[str] = (), evidence_k: float = 0.0,
) -> ScoringModel:
    """Train the scorer on account vectors labelled with CLASSES.

    Two logistic regressions against the benign class (whose logit is 0): distillation vs the rest, with the
    weights' directions bounded by ``SIGN_PRIOR`` (what harvesting *is* may only raise the score, so a quirk of the
    training traffic cannot turn "single-shot templated prompts" into evidence of innocence) and the
    ``NOT_FOR_DISTILLATION`` traits fixed at 0, and evaluation vs
    benign (scikit-learn, unconstrained). ``exclude`` leaves features out of the model (ablations). With
    ``evidence_k``, every vector is first shrunk towards the benign vectors' centre by n / (n + evidence_k), n being
    its ``requests`` (vectors without it are taken as they are), as ``probabilities`` does when scoring.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    names = tuple(f for f in FEATURE_NAMES if f not in set(exclude))
    x = np.array([[v.get(f, 0.0) for f in names] for v in vectors], dtype=float)
    y = np.array([CLASSES.index(lbl) for lbl in labels])
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    z = np.clip((x - mean) / scale, -Z_CAP, Z_CAP)
    one_sided = tuple(f for f in names if f in ONE_SIDED)
    for k, f in enumerate(names):
        if f in ONE_SIDED:
            z[:, k] = np.maximum(z[:, k], 0.0)
    center: list[float] = []
    if evidence_k > 0.0:  # each vector shrunk towards the benign vectors' centre by n / (n + evidence_k)
        benign = y == CLASSES.index("benign")
        mid = z[benign].mean(axis=0) if benign.any() else np.zeros(len(names))
        n = np.array([v.get("requests", np.inf) for v in vectors], dtype=float)
        w = np.where(np.isfinite(n), n / (n + evidence_k), 1.0)
        z = mid + w[:, None] * (z - mid)
        center = mid.tolist()
    coef = np.zeros((len(CLASSES), len(names)))
    icpt = np.array([0.0, -30.0, -30.0])  # a class absent from training is never predicted
    d_i, e_i, b_i = CLASSES.index("distillation"), CLASSES.index("evaluation"), CLASSES.index("benign")
    if (y == d_i).any() and (y != d_i).any():
        coef[d_i], icpt[d_i] = _constrained_logistic(
            z, (y == d_i).astype(float),
            [FIXED_ZERO if f in NOT_FOR_DISTILLATION else SIGN_PRIOR.get(f, 0) for f in names], c)
    ev = (y == e_i) | (y == b_i)
    if (y == e_i).any() and (y == b_i).any():
        clf = LogisticRegression(C=c, max_iter=2000, class_weight="balanced", random_state=seed)
        clf.fit(z[ev], (y[ev] == e_i).astype(int))
        coef[e_i], icpt[e_i] = clf.coef_[0], clf.intercept_[0]
    return ScoringModel(
        features=names, mean=mean.tolist(), scale=scale.tolist(), coef=coef.tolist(), intercept=icpt.tolist(),
        one_sided=one_sided, evidence_k=evidence_k, benign_center=center,
    )


def provenance_note(model: ScoringModel) -> str:
    """What the detector was trained on, for reports: numbers are only honest on the other split."""
    how = model.meta.get("trained_on", "an unrecorded command")
    return (f"Detector model trained and calibrated on simulator traffic from the DEV half of the corpus ({how}). "
            "Report numbers on traffic from the TEST half (distillguard simulate --split test, the default): the halves "
            "are split by a hash of each corpus record id (ShareGPT by conversation), so no prompt is on both sides.")

