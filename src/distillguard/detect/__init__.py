"""Distillation detection: per-request features, per-account scoring, cross-account rings, reasons.

``Detector(...).run(records)`` scores traffic records (contracts §1) in batch; ``online.OnlineDetector`` keeps
per-account sliding-window state inside the gateway.
"""

from .account import FEATURE_NAMES, AccountState
from .engine import AccountResult, Detector, Report
from .features import RequestFeatures, extract
from .model import ScoringModel

__all__ = ["FEATURE_NAMES", "AccountResult", "AccountState", "Detector", "Report", "RequestFeatures",
           "ScoringModel", "extract"]
