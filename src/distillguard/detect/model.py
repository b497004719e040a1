"""The account scorer: a multinomial logistic regression over ``account.FEATURE_NAMES``, stored as plain JSON.

A linear model on standardised, scale-free features is deliberately simple: every score decomposes into per-feature
contributions that a reviewer can check (``contributions``), and it is less able to latch onto quirks of the traffic
it was trained on than a deep tree ensemble. The file also holds the scores of the benign *dev* accounts, so the flag
threshold for any target FPR is their (1 − FPR) quantile (calibration on benign traffic only).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from .account import FEATURE_NAMES

CLASSES = ("benign", "distillation", "evaluation")
MODEL_FILE = "model.json"
DEFAULT_TARGET_FPR = 0.001


@dataclass
class ScoringModel:
    features: tuple[str, ...]
    mean: list[float]
    scale: list[float]
    coef: list[list[float]]  # one row per class in CLASSES
    intercept: list[float]
    benign_scores: list[float] = field(default_factory=list)  # sorted P(distillation) of benign dev accounts
    meta: dict[str, Any] = field(default_factory=dict)

    # -- scoring --------------------------------------------------------------------------------------------------
    def _z(self, v: dict[str, float]) -> list[float]:
        return [(v.get(f, 0.0) - m) / s for f, m, s in zip(self.features, self.mean, self.scale)]

    def probabilities(self, v: dict[str, float]) -> dict[str, float]:
        z = self._z(v)
        logits = [b + sum(c * x for c, x in zip(row, z)) for row, b in zip(self.coef, self.intercept)]
        top = max(logits)
        ex = [math.exp(x - top) for x in logits]
        tot = sum(ex)
        return {c: e / tot for c, e in zip(CLASSES, ex)}

    def contributions(self, v: dict[str, float], cls: str = "distillation") -> list[tuple[str, float, float]]:
        """(feature, value, contribution to the class logit relative to benign), largest first."""
        i, b = CLASSES.index(cls), CLASSES.index("benign")
        z = self._z(v)
        out = [
            (f, v.get(f, 0.0), (self.coef[i][k] - self.coef[b][k]) * z[k]) for k, f in enumerate(self.features)
        ]
        return sorted(out, key=lambda t: -t[2])

    # -- calibration ----------------------------------------------------------------------------------------------
    def threshold(self, target_fpr: float = DEFAULT_TARGET_FPR) -> float:
        """Smallest score above the benign dev accounts' (1 − target_fpr) quantile (never below 0.5)."""
        s = self.benign_scores
        if not s:
            return 0.5
        k = min(len(s) - 1, max(0, math.ceil((1.0 - target_fpr) * len(s)) - 1))
        q = s[k]
        # A margin halfway towards 1 in logit space keeps unseen benign accounts from sitting on the threshold.
        return max(0.5, 1.0 - (1.0 - q) * 0.5)

    # -- storage --------------------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(self.features), "mean": self.mean, "scale": self.scale, "classes": list(CLASSES),
            "coef": self.coef, "intercept": self.intercept, "benign_scores": self.benign_scores, "meta": self.meta,
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "ScoringModel":
        if tuple(d.get("classes", CLASSES)) != CLASSES:
            raise ValueError("model classes do not match")
        return cls(
            features=tuple(d["features"]), mean=list(d["mean"]), scale=list(d["scale"]), coef=d["coef"],
            intercept=list(d["intercept"]), benign_scores=sorted(d.get("benign_scores", [])), meta=d.get("meta", {}),
        )

    @classmethod
    def load(cls, path: str | Path | None = None) -> "ScoringModel":
        """A model file, or the one shipped with the package."""
        if path is None:
            text = (resources.files("distillguard.detect") / MODEL_FILE).read_text()
        else:
            text = Path(path).read_text()
        return cls.from_json(json.loads(text))


def fit(
    vectors: Sequence[dict[str, float]], labels: Sequence[str], *, c: float = 0.5, seed: int = 0
) -> ScoringModel:
    """Train the scorer on account vectors labelled with CLASSES (scikit-learn LogisticRegression)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    x = np.array([[v.get(f, 0.0) for f in FEATURE_NAMES] for v in vectors], dtype=float)
    y = np.array([CLASSES.index(lbl) for lbl in labels])
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    z = (x - mean) / scale
    clf = LogisticRegression(C=c, max_iter=2000, class_weight="balanced", random_state=seed)
    clf.fit(z, y)
    coef = np.zeros((len(CLASSES), len(FEATURE_NAMES)))
    icpt = np.full(len(CLASSES), -30.0)  # a class absent from training is never predicted
    present = list(clf.classes_)
    if len(present) == 2:  # binary fit: sklearn returns one row for the positive class
        coef[present[1]] = clf.coef_[0]
        icpt[present[1]] = clf.intercept_[0]
        icpt[present[0]] = 0.0
    else:
        for row, k in enumerate(present):
            coef[k] = clf.coef_[row]
            icpt[k] = clf.intercept_[row]
    model = ScoringModel(
        features=FEATURE_NAMES, mean=mean.tolist(), scale=scale.tolist(), coef=coef.tolist(),
        intercept=icpt.tolist(),
    )
    return model
