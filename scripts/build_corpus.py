#!/usr/bin/env python3
"""Build the compact replay corpus shipped in the package from the shared data (MANIFEST format).

    python scripts/build_corpus.py [--source ../shared/data] [--out src/distillguard/data/corpus]

Only MIT / Apache-2.0 sources go in. Output is deterministic (same input → same bytes): one
``corpus.jsonl.gz`` of ``{id, source, kind, lang, messages}`` records (records without an assistant
answer dropped, messages clipped) and ``LICENSES.md`` listing each source with its licence, upstream
commit (from MANIFEST.md) and record count.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MAX_CHARS = 6000  # per message
MAX_MESSAGES = 8  # per record


@dataclass(frozen=True)
class Source:
    file: str  # relative to the source dir
    repo: str
    path: str
    licence: str
    copyright: str
    what: str


SOURCES: tuple[Source, ...] = (
    Source("distill/gpteacher_codegen.jsonl.gz", "teknium1/GPTeacher", "Codegen/codegen-instruct.json",
           "MIT", "Copyright (c) 2023 Teknium", "code instructions answered by GPT-4"),
    Source("distill/gpteacher_toolformer.jsonl.gz", "teknium1/GPTeacher",
           "Toolformer/toolformer-dedupe-only-dataset.json", "MIT", "Copyright (c) 2023 Teknium",
           "tool-use instructions answered by GPT-4"),
    Source("eval/alpaca_eval_gpt4o_mini.jsonl", "tatsu-lab/alpaca_eval",
           "results/gpt-4o-mini-2024-07-18/model_outputs.json", "Apache-2.0", "",
           "AlpacaEval instructions with gpt-4o-mini's answers"),
    Source("eval/gsm8k_test.jsonl", "openai/grade-school-math", "grade_school_math/data/test.jsonl",
           "MIT", "Copyright (c) 2021 OpenAI", "GSM8K test questions with reference solutions"),
    Source("eval/humaneval.jsonl", "openai/human-eval", "data/HumanEval.jsonl.gz", "MIT",
           "Copyright (c) OpenAI", "HumanEval prompts with canonical solutions"),
    Source("eval/mt_bench.jsonl", "lm-sys/FastChat", "fastchat/llm_judge/data/mt_bench/", "Apache-2.0", "",
           "MT-bench two-turn questions with GPT-4 reference answers (answered ones only)"),
    Source("benign/glaive_toolcall.jsonl", "hiyouga/LLaMA-Factory", "data/glaive_toolcall_en_demo.json",
           "Apache-2.0", "", "function-calling app conversations (glaive toolcall demo)"),
    Source("distill/alpaca_seed_tasks.jsonl", "tatsu-lab/stanford_alpaca", "seed_tasks.jsonl", "Apache-2.0", "",
           "the human-written self-instruct seed tasks"),
)

MIT_TEXT = """\
Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def read_commits(manifest: Path) -> dict[str, str]:
    """repo → commit, from the "Upstream commits" table of MANIFEST.md."""
    commits: dict[str, str] = {}
    for line in manifest.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*([\w.-]+/[\w.-]+)\s*\|\s*([0-9a-f]{40})\s*\|", line)
        if m:
            commits[m.group(1)] = m.group(2)
    return commits


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def compact(rec: dict) -> dict | None:
    """The shipped form of a record, or None when it holds no assistant answer."""
    msgs = []
    for m in (rec.get("messages") or [])[:MAX_MESSAGES]:
        content = m.get("content")
        if not isinstance(content, str):
            continue
        msgs.append({"role": str(m.get("role", "user")), "content": content[:MAX_CHARS]})
    while msgs and msgs[-1]["role"] != "assistant":  # a trailing unanswered turn teaches replay nothing
        msgs.pop()
    if (rec.get("meta") or {}).get("prompts_only") or not any(m["role"] == "assistant" for m in msgs):
        return None
    if not any(m["role"] == "user" for m in msgs):
        return None
    return {"id": rec["id"], "source": rec["source"], "kind": rec["kind"], "lang": rec.get("lang", "xx"),
            "messages": msgs}


def build(source_dir: Path, out_dir: Path) -> dict[str, int]:
    commits = read_commits(source_dir / "MANIFEST.md")
    counts: dict[str, int] = {}
    seen: set[str] = set()
    lines: list[bytes] = []
    for src in SOURCES:
        n = 0
        for rec in read_jsonl(source_dir / src.file):
            out = compact(rec)
            if out is None or out["id"] in seen:
                continue
            seen.add(out["id"])
            lines.append(json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")
            n += 1
        counts[src.file] = n
    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.writelines(lines)
    (out_dir / "corpus.jsonl.gz").write_bytes(buf.getvalue())
    (out_dir / "LICENSES.md").write_text(licences_md(counts, commits), encoding="utf-8")
    return counts


def licences_md(counts: dict[str, int], commits: dict[str, str]) -> str:
    rows = []
    for src in SOURCES:
        commit = commits.get(src.repo, "unknown")
        rows.append(f"| {src.repo} `{src.path}` | {src.what} | {src.licence} | `{commit}` | {counts[src.file]:,} |")
    mit_holders = sorted({f"{s.copyright} ({s.repo})" for s in SOURCES if s.licence == "MIT"})
    return "\n".join([
        "# Compact replay corpus: sources and licences",
        "",
        "`corpus.jsonl.gz` holds real prompts and the real answers recorded for them, one JSON record per line",
        "(`{id, source, kind, lang, messages}`); the replay upstream answers from it. It is generated by",
        "`scripts/build_corpus.py` from the normalised copies described in the project's data manifest.",
        "Changes made to the upstream data: converted to this common chat format, records without an answer",
        f"dropped, messages clipped to {MAX_CHARS:,} characters and records to {MAX_MESSAGES} messages.",
        "Only sources under the MIT or Apache-2.0 licence are included.",
        "",
        "| source (repository, path) | what it is | licence | upstream commit | records |",
        "|---|---|---|---|---:|",
        *rows,
        f"| **total** | | | | {sum(counts.values()):,} |",
        "",
        "## MIT",
        "",
        "The MIT-licensed sources carry these copyright notices:",
        "",
        *[f"- {h}" for h in mit_holders],
        "",
        "```",
        MIT_TEXT.rstrip("\n"),
        "```",
        "",
        "## Apache-2.0",
        "",
        "The Apache-2.0 sources are redistributed under the Apache License, Version 2.0",
        "(https://www.apache.org/licenses/LICENSE-2.0); the changes made are listed above. Licensed on an",
        '"AS IS" BASIS, WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.',
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=REPO.parent / "shared" / "data",
                    help="directory in the MANIFEST format (default: ../shared/data)")
    ap.add_argument("--out", type=Path, default=REPO / "src" / "distillguard" / "data" / "corpus")
    args = ap.parse_args(argv)
    if not (args.source / "MANIFEST.md").is_file():
        print(f"no MANIFEST.md under {args.source}", file=sys.stderr)
        return 2
    counts = build(args.source, args.out)
    size = (args.out / "corpus.jsonl.gz").stat().st_size
    for name, n in counts.items():
        print(f"{n:>7,}  {name}", file=sys.stderr)
    print(f"{sum(counts.values()):>7,}  records, {size / 1e6:.2f} MB → {args.out / 'corpus.jsonl.gz'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
