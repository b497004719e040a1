"""A self-contained HTML evaluation report: headline metrics, per-kind and per-scenario tables, ROC
curves and score histograms as inline SVG (no scripts, no network)."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import Row, evaluate, fmt, join, roc

W, H, PAD = 360, 260, 36
COLOURS = {"benign": "#2b8a3e", "distillation": "#c92a2a", "evaluation": "#1864ab"}


def _poly(xs: Iterable[float], ys: Iterable[float], log_x: bool = False) -> str:
    pts = []
    for x, y in zip(xs, ys):
        if log_x:
            x = (np.log10(max(x, 1e-4)) + 4) / 4  # 1e-4 .. 1 → 0 .. 1
        pts.append(f"{PAD + x * (W - 2 * PAD):.1f},{H - PAD - y * (H - 2 * PAD):.1f}")
    return " ".join(pts)


def _axes(xlabel: str, ylabel: str, xticks: list[tuple[float, str]], yticks: list[tuple[float, str]]) -> str:
    parts = [f'<rect x="{PAD}" y="{PAD}" width="{W - 2 * PAD}" height="{H - 2 * PAD}" fill="none" stroke="#999"/>']
    for v, t in xticks:
        x = PAD + v * (W - 2 * PAD)
        parts.append(f'<text x="{x:.1f}" y="{H - PAD + 14}" font-size="10" text-anchor="middle">{t}</text>')
    for v, t in yticks:
        y = H - PAD - v * (H - 2 * PAD)
        parts.append(f'<text x="{PAD - 4}" y="{y + 3:.1f}" font-size="10" text-anchor="end">{t}</text>')
    parts.append(f'<text x="{W / 2}" y="{H - 4}" font-size="11" text-anchor="middle">{xlabel}</text>')
    parts.append(f'<text x="10" y="{H / 2}" font-size="11" text-anchor="middle" '
                 f'transform="rotate(-90 10 {H / 2})">{ylabel}</text>')
    return "".join(parts)


def roc_svg(rows: list[Row], title: str, log_x: bool = False) -> str:
    fpr, tpr, _ = roc(rows)
    ticks = ([(i / 4, f"1e-{4 - i}" if i < 4 else "1") for i in range(5)] if log_x
             else [(i / 4, f"{i / 4:g}") for i in range(5)])
    body = _axes("false positive rate" + (" (log)" if log_x else ""), "true positive rate", ticks,
                 [(i / 4, f"{i / 4:g}") for i in range(5)])
    if len(fpr):
        body += f'<polyline fill="none" stroke="#c92a2a" stroke-width="2" points="{_poly(fpr, tpr, log_x)}"/>'
    if not log_x:
        body += f'<polyline fill="none" stroke="#bbb" stroke-dasharray="4" points="{_poly([0, 1], [0, 1])}"/>'
    return (f'<figure><svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img">'
            f'<title>{html.escape(title)}</title>{body}</svg><figcaption>{html.escape(title)}</figcaption></figure>')


def histogram_svg(rows: list[Row], title: str, bins: int = 20) -> str:
    """Score histograms per label, each normalised to its own count (overlaid outlines)."""
    body = _axes("score", "share of accounts", [(i / 4, f"{i / 4:g}") for i in range(5)], [])
    edges = np.linspace(0.0, 1.0, bins + 1)
    for label, colour in COLOURS.items():
        s = np.clip([r.score for r in rows if r.label == label], 0.0, 1.0)
        if len(s) == 0:
            continue
        counts, _ = np.histogram(s, bins=edges)
        share = counts / counts.sum()
        xs, ys = [0.0], [0.0]
        for i, c in enumerate(share):
            xs += [edges[i], edges[i + 1]]
            ys += [float(c), float(c)]
        xs.append(1.0)
        ys.append(0.0)
        body += (f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{_poly(xs, ys)}">'
                 f'<title>{label}</title></polyline>')
    legend = "".join(f'<text x="{W - PAD - 4}" y="{PAD + 14 + 13 * i}" font-size="11" text-anchor="end" '
                     f'fill="{c}">{lab}</text>' for i, (lab, c) in enumerate(COLOURS.items()))
    return (f'<figure><svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img">'
            f'<title>{html.escape(title)}</title>{body}{legend}</svg>'
            f'<figcaption>{html.escape(title)}</figcaption></figure>')


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(r.get(c)))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;"
        "margin:1em 0}td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}th{background:#f4f4f4}"
        "td:first-child,th:first-child{text-align:left}figure{display:inline-block;margin:0 1em 1em 0}"
        "figcaption{font-size:12px;color:#555;text-align:center}")


def render(accounts: Iterable[Mapping[str, Any]], labels: Iterable[Mapping[str, Any]], title: str = "distillguard "
           "detection report", notes: str = "") -> str:
    """The report as one HTML document."""
    accounts, labels = list(accounts), list(labels)
    rows = join(accounts, labels)
    m = evaluate(accounts, labels)
    headline = [{"metric": k, "value": m[k]} for k in ("accounts", "positives", "negatives", "auc",
                                                        "tpr_at_fpr_0.01", "tpr_at_fpr_0.001", "tpr_flagged",
                                                        "fpr_flagged", "ring_recall", "evaluation_label_accuracy")]
    med = [{"kind": k, "median requests to flag": v} for k, v in m["median_requests_to_flag"].items()]
    figs = [roc_svg(rows, "ROC, all accounts"), roc_svg(rows, "ROC, all accounts (log FPR)", log_x=True),
            histogram_svg(rows, "score by true label")]
    scenarios = sorted({r.scenario for r in rows})
    if len(scenarios) > 1:
        for s in scenarios:
            sub = [r for r in rows if r.scenario == s]
            figs += [roc_svg(sub, f"ROC, {s} (log FPR)", log_x=True), histogram_svg(sub, f"scores, {s}")]
    cols_s = ["scenario", "accounts", "auc", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001", "tpr_flagged", "fpr_flagged",
              "ring_recall", "evaluation_label_accuracy"]
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            f"{'<p>' + html.escape(notes) + '</p>' if notes else ''}"
            f"<h2>Headline</h2>{_table(headline, ['metric', 'value'])}"
            f"<h2>Per scenario</h2>{_table(m['per_scenario'], cols_s)}"
            f"<h2>Per tenant kind</h2>{_table(m['per_kind'], ['kind', 'label', 'accounts', 'flagged', 'median_score', 'median_requests_to_flag', 'label_accuracy'])}"
            f"<h2>Requests until flagged (distillers)</h2>{_table(med, ['kind', 'median requests to flag'])}"
            f"<h2>Curves</h2>{''.join(figs)}</body></html>")


def write_report(path: Path, accounts: Iterable[Mapping[str, Any]], labels: Iterable[Mapping[str, Any]],
                 **kw: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(accounts, labels, **kw), encoding="utf-8")
    return path


def text_tables(m: Mapping[str, Any]) -> str:
    """The metrics of ``metrics.evaluate`` as plain-text tables (for a terminal or a note)."""

    def table(rows: list[dict[str, Any]], cols: list[str]) -> str:
        cells = [[c for c in cols]] + [[fmt(r.get(c)) for c in cols] for r in rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
        lines = ["  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths)))
                 for row in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    head = [{"metric": k, "value": m.get(k)} for k in ("accounts", "auc", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001",
                                                        "tpr_flagged", "fpr_flagged", "ring_recall",
                                                        "evaluation_label_accuracy")]
    med = [{"kind": k, "median_requests_to_flag": v} for k, v in (m.get("median_requests_to_flag") or {}).items()]
    return "\n\n".join([
        table(head, ["metric", "value"]),
        table(list(m.get("per_scenario") or []), ["scenario", "accounts", "auc", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001",
                                                  "ring_recall", "evaluation_label_accuracy"]),
        table(list(m.get("per_kind") or []), ["kind", "label", "accounts", "flagged", "median_score",
                                              "median_requests_to_flag", "label_accuracy"]),
        table(med, ["kind", "median_requests_to_flag"]),
    ])
