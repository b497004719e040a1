"""Traffic simulator: labelled tenant traffic grounded in the real corpus, offline or against a live gateway,
and the evaluation maths and HTML report for detectors run over it.

- ``corpus``: prompt pools, split into disjoint ``dev``/``test`` halves by a hash of each record's group
  (develop detectors on dev, report numbers on test).
- ``benign`` / ``distill`` / ``evals``: tenant behaviours; ``scenarios``: named mixes (``mixed-small``,
  ``standard``, ``sybil``, ``evasive``, ``demo``, ``tiny``).
- ``generate``: offline, answers from the replay upstream, reproducible byte for byte from
  (scenario, seed, split, corpus); ``live``: the same tenants over HTTP against a gateway on loopback.
- ``metrics`` / ``report``: AUC, TPR at fixed FPR, requests until flagged, ring recall, evaluation-label
  accuracy, per-kind and per-scenario tables; a self-contained HTML report.
"""

from .corpus import SimCorpus, split_of
from .generate import Summary, generate
from .scenarios import SCENARIOS, Scenario, get

__all__ = ["SCENARIOS", "Scenario", "SimCorpus", "Summary", "generate", "get", "split_of"]
