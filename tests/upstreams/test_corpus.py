"""The shipped compact corpus, the full-corpus reader, and the build script."""

from __future__ import annotations

import gzip
import importlib.util
import json
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

from distillguard.upstreams.corpus import answer_points, compact_corpus_dir, load_corpus, parse_record

REPO = Path(__file__).resolve().parents[2]
ALLOWED = {"teknium1/GPTeacher", "tatsu-lab/alpaca_eval", "openai/grade-school-math", "openai/human-eval",
           "lm-sys/FastChat", "hiyouga/LLaMA-Factory", "tatsu-lab/stanford_alpaca"}


def _build_script():
    spec = importlib.util.spec_from_file_location("build_corpus", REPO / "scripts" / "build_corpus.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_compact_corpus_is_small_licensed_and_answerable(compact_records):
    path = compact_corpus_dir() / "corpus.jsonl.gz"
    assert path.stat().st_size <= 4_000_000
    assert len(compact_records) > 10_000
    assert {"/".join(r.source.split("/")[:2]) for r in compact_records} <= ALLOWED
    assert all(any(m["role"] == "assistant" and m["content"] for m in r.messages) for r in compact_records)
    assert len({r.id for r in compact_records}) == len(compact_records)
    assert all(len(m["content"]) <= 6000 for r in compact_records for m in r.messages)
    assert sum(1 for r in compact_records if sum(m["role"] == "assistant" for m in r.messages) > 1) >= 100
    with gzip.open(path, "rt", encoding="utf-8") as f:
        assert set(json.loads(f.readline())) == {"id", "source", "kind", "lang", "messages"}


def test_licences_file_lists_every_shipped_source_with_its_count(compact_records):
    text = (compact_corpus_dir() / "LICENSES.md").read_text()
    counts = Counter("/".join(r.source.split("/")[:2]) for r in compact_records)
    rows = [line for line in text.splitlines() if line.startswith("| ") and "`" in line]
    listed: Counter = Counter()
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        repo = cells[0].split()[0]
        assert cells[2] in ("MIT", "Apache-2.0")
        assert re.fullmatch(r"`[0-9a-f]{40}`", cells[3])
        listed[repo] += int(cells[4].replace(",", ""))
    assert listed == counts


def test_answer_points_of_a_multi_turn_record():
    rec = parse_record({"id": "x", "source": "s", "kind": "benign", "lang": "en", "messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "a1"}, {"role": "user", "content": "u2"},
        {"role": "assistant", "content": "a2"}]})
    points = list(answer_points(rec))
    assert [(len(p.context), p.answer) for p in points] == [(2, "a1"), (4, "a2")]


@pytest.mark.parametrize("obj", [
    {"id": "p", "messages": [{"role": "user", "content": "q"}]},
    {"id": "p", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
     "meta": {"prompts_only": True}},
    {"id": "g", "source": "s", "text": "a generation prompt"},
    ["not", "a", "record"],
])
def test_records_without_an_answer_are_skipped(obj):
    assert parse_record(obj) is None


def test_content_parts_are_read_as_text():
    rec = parse_record({"id": "c", "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hello "}, {"type": "text", "text": "there"}]},
        {"role": "assistant", "content": "hi"}]})
    assert rec.messages[0]["content"] == "hello there"


def test_missing_corpus_dir_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_corpus(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):
        load_corpus(tmp_path)  # exists, but holds no corpus files


def _source_tree(root: Path, build) -> None:
    """A tiny copy of the shared data layout: two records per shipped source, one of them unanswered."""
    commits = "\n".join(f"| {s.repo} | {'ab' * 20} |" for s in build.SOURCES)
    root.mkdir(parents=True, exist_ok=True)
    (root / "MANIFEST.md").write_text(f"# Corpus manifest\n\n| repository | commit |\n|---|---|\n{commits}\n")
    for i, s in enumerate(build.SOURCES):
        recs = [
            {"id": f"r{i}a", "source": f"{s.repo}/{s.path}", "kind": "eval", "lang": "en", "meta": {"x": 1},
             "messages": [{"role": "user", "content": f"question {i} " + "long " * 2000},
                          {"role": "assistant", "content": f"answer {i}"}]},
            {"id": f"r{i}b", "source": f"{s.repo}/{s.path}", "kind": "eval", "lang": "en",
             "messages": [{"role": "user", "content": "unanswered"}, {"role": "user", "content": "still"}]},
        ]
        p = root / s.file
        p.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(json.dumps(r) + "\n" for r in recs).encode()
        p.write_bytes(gzip.compress(data) if p.name.endswith(".gz") else data)


def test_build_script_is_deterministic_and_filters(tmp_path):
    build = _build_script()
    src = tmp_path / "data"
    _source_tree(src, build)
    assert build.main(["--source", str(src), "--out", str(tmp_path / "a")]) == 0
    assert build.main(["--source", str(src), "--out", str(tmp_path / "b")]) == 0
    for name in ("corpus.jsonl.gz", "LICENSES.md"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    recs = load_corpus(tmp_path / "a")
    assert len(recs) == len(build.SOURCES)
    assert all(len(m["content"]) <= build.MAX_CHARS for r in recs for m in r.messages)
    licences = (tmp_path / "a" / "LICENSES.md").read_text()
    assert f"`{'ab' * 20}`" in licences and "| **total** | | | | 8 |" in licences


def test_build_script_needs_a_manifest(tmp_path):
    assert _build_script().main(["--source", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
