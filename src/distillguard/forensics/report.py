"""A self-contained HTML report of a trace: summary, per-org counts, examples side by side with
the original answer, shared shingles highlighted. No network, no scripts."""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any

from .normalize import MASK, tokens
from .trace import Match

_CSS = """body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}th{background:#f4f4f4}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em}.box{border:1px solid #ddd;padding:.6em;
white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:12px;max-height:24em;overflow:auto}
mark{background:#ffe07a}.meta{color:#666;font-size:12px}"""


def _highlight(text: str, shared: set[str], k: int) -> str:
    """Words of ``text`` that belong to a shared k-shingle, wrapped in <mark> (normalised view)."""
    toks = tokens(text)
    hit = [False] * len(toks)
    for i in range(len(toks) - k + 1):
        if " ".join(toks[i : i + k]) in shared:
            for j in range(i, i + k):
                hit[j] = True
    return " ".join(f"<mark>{html.escape(t)}</mark>" if h else html.escape(t) for t, h in zip(toks, hit)
                    ).replace(MASK, "\u00a7")


def render_report(
    result: Mapping[str, Any],
    matches: Mapping[int, Match],
    original: Callable[[str], str | None],
    k: int = 3,
    examples: int = 50,
    title: str = "distillguard trace report",
) -> str:
    """HTML for a trace result; ``original(request_id)`` returns the stored answer (from the ledger)."""
    s = result["summary"]
    rows = "".join(f"<tr><td>{html.escape(str(o['org']))}</td><td>{o['records']}</td></tr>" for o in s["orgs"])
    parts = [f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title><style>{_CSS}</style>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p>{s['derived']} of {s['records']} records ({100 * s['derived_share']:.1f}%) match stored API "
             f"outputs; {s['requests_matched']} distinct requests; index of {s['index_size']} outputs.</p>",
             "<h2>Per org</h2><table><tr><th>org</th><th>records</th></tr>" + rows + "</table>",
             "<h2>Examples</h2>"]
    ranked = sorted(matches.items(), key=lambda kv: -kv[1].confidence)[:examples]
    for idx, m in ranked:
        e = m.candidate.entry
        orig = original(e.id) or ""
        a_sh = _shingles(m.answer, k)
        shared = a_sh & _shingles(orig, k)
        parts.append(
            f"<h3>record {idx} → {html.escape(e.id)} ({html.escape(str(e.org))})</h3>"
            f"<p class=meta>confidence {m.confidence:.3f} · {html.escape(', '.join(m.evidence))} · "
            f"{len(shared)} shared shingles</p><div class=pair>"
            f"<div><b>dataset record</b><div class=box>{_highlight(m.answer, shared, k)}</div></div>"
            f"<div><b>original answer</b><div class=box>{_highlight(orig, shared, k)}</div></div></div>")
    return "\n".join(parts)


def _shingles(text: str, k: int) -> set[str]:
    t = tokens(text)
    return {" ".join(t[i : i + k]) for i in range(len(t) - k + 1)}
