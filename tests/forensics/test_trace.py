import json
import random

from distillguard.forensics.adversary import (
    desensitize_fake,
    desensitize_placeholders,
    light_edits,
    truncate,
)
from distillguard.forensics.index import OutputIndex
from distillguard.forensics.report import render_report
from distillguard.forensics.trace import trace, trace_records


def _dataset(tmp_path, outputs, answers):
    """Derived records (desensitized / reformatted / truncated / edited) at known places, the rest unrelated."""
    rng = random.Random(5)
    derived = {}
    rows = []
    for i, (p, a) in enumerate(answers[200:260]):  # never stored
        rows.append({"instruction": p, "input": "", "output": a})
    for k, o in enumerate(outputs[:40]):
        a = o.answer
        a = [desensitize_placeholders(a, rng), desensitize_fake(a, rng), truncate(a, rng, 0.6, 0.9),
             light_edits(a, rng)][k % 4]
        fmt = k % 3
        rec = ({"conversations": [{"from": "human", "value": o.prompt}, {"from": "gpt", "value": a}]} if fmt == 0
               else {"messages": [{"role": "user", "content": o.prompt}, {"role": "assistant", "content": a}]}
               if fmt == 1 else {"text": a})
        pos = rng.randrange(len(rows) + 1)
        rows.insert(pos, rec)
        derived = {kk + (1 if kk >= pos else 0): v for kk, v in derived.items()}
        derived[pos] = o
    path = tmp_path / "suspect.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, derived


def test_transformed_outputs_are_traced_to_org_and_request(tmp_path, outputs, answers):
    index = OutputIndex.memory()
    index.add_outputs(outputs)
    path, derived = _dataset(tmp_path, outputs, answers)
    res = trace(path, index, threshold=0.5)  # the machinery; the tuned operating point is measured by trace-eval
    by_index = {r["index"]: r for r in res["records"]}
    assert len(res["records"]) == 100
    for i, o in derived.items():
        r = by_index[i]
        assert r["derived"], (i, r)
        assert r["org"] == o.org and r["matched_request"] == o.id
        assert r["evidence"][0].startswith("minhash ") and 0.5 <= r["confidence"] <= 1.0
    unrelated = [r for i, r in by_index.items() if i not in derived]
    assert not any(r["derived"] for r in unrelated)
    s = res["summary"]
    assert s["records"] == 100 and s["derived"] == 40 and s["index_size"] == 200
    assert sorted(o["org"] for o in s["orgs"]) == ["org_a", "org_b"]
    assert sum(o["records"] for o in s["orgs"]) == 40


def test_prompt_match_is_evidence(outputs):
    from distillguard.forensics.formats import DatasetRecord

    index = OutputIndex.memory()
    index.add_outputs(outputs[:20])
    o = outputs[4]
    same = trace_records([DatasetRecord(0, ((o.prompt, o.answer),))], index)["records"][0]
    other = trace_records([DatasetRecord(0, (("an unrelated question about gardening and soil", o.answer),))],
                          index)["records"][0]
    assert any(e.startswith("prompt match") for e in same["evidence"])
    assert not any(e.startswith("prompt match") for e in other["evidence"])
    assert same["confidence"] > other["confidence"]


def test_extra_evidence_provider_is_called(outputs):
    from distillguard.forensics.formats import DatasetRecord

    index = OutputIndex.memory()
    index.add_outputs(outputs[:5])
    seen = []

    def watermark(record, match):
        seen.append(record.index)
        return (["watermark p=1e-7"], 0.99) if match else ([], 0.0)

    rec = trace_records([DatasetRecord(0, (("", outputs[0].answer),)), DatasetRecord(1, (("", "short text"),))],
                        index, evidence=[watermark])["records"]
    assert seen == [0, 1]
    assert rec[0]["evidence"][-1] == "watermark p=1e-7" and not rec[1]["derived"]


def test_html_report(tmp_path, outputs, answers):
    index = OutputIndex.memory()
    index.add_outputs(outputs)
    path, derived = _dataset(tmp_path, outputs, answers)
    res = trace(path, index, keep_matches=True, threshold=0.5)
    stored = {o.id: o.answer for o in outputs}
    html = render_report(res, res["_matches"], stored.get)
    assert "<mark>" in html and "org_a" in html and "org_b" in html
    assert "http://" not in html and "https://" not in html.split("</style>")[0]
    assert f"{len(derived)} of 100 records" in html


def test_alignment_with_stored_texts_keeps_copies_and_drops_regenerations(tmp_path, outputs, answers):
    """With the stored texts at hand, copies are kept and an answer that reuses half a stored answer is not."""
    index = OutputIndex.memory()
    index.add_outputs(outputs)
    path, derived = _dataset(tmp_path, outputs, answers)
    stored = {o.id: o.answer for o in outputs}
    res = trace(path, index, originals=stored.get, align_rule=(0.15, 0.7))  # the tuned rule: trace-eval
    asked: list[list[str]] = []

    def many(ids):
        asked.append(ids)
        return {i: stored[i] for i in ids if i in stored}

    batched = trace(path, index, originals_many=many, align_rule=(0.15, 0.7))  # one lookup per batch
    assert len(asked) == 1 and batched["records"] == res["records"]
    by_index = {r["index"]: r for r in res["records"]}
    for i, o in derived.items():
        r = by_index[i]
        assert r["derived"] and r["matched_request"] == o.id, (i, r)
        assert any(e.startswith("aligned ") for e in r["evidence"])
    assert not any(r["derived"] for i, r in by_index.items() if i not in derived)
    # a regeneration: the first 70% of a stored answer, then text of its own
    from distillguard.forensics.formats import DatasetRecord

    o = outputs[50]
    words = o.answer.split(" ")
    cut = int(len(words) * 0.7)
    regen = " ".join(words[:cut]) + " " + answers[300][1]
    rec = DatasetRecord(0, [(o.prompt, regen)])
    assert trace_records([rec], index, threshold=0.3, min_distinct=0)["records"][0]["derived"]  # MinHash alone
    assert not trace_records([rec], index, originals=stored.get, align_threshold=0.3,
                             min_distinct=0)["records"][0]["derived"]


def _tool_answer(call: str, result: str) -> str:
    return ("The result of the calculation you asked about is shown below, computed with the python tool so that "
            f"you can check it yourself: python('import math; print(math.{call})') and the interpreter returns "
            f"{result}, which answers the question.")


def test_text_about_as_close_to_several_different_stored_answers_is_a_template_not_a_copy():
    """A copy is closer to its source than to any other stored answer; a text equally close to two different ones
    is their shared template (an independent author writes it too). One answer stored twice is no ambiguity."""
    from distillguard.forensics.formats import DatasetRecord
    from distillguard.forensics.index import Output

    prompt = "Use the python tool to compute a value with the math module and show the call."
    a = Output("req_a", "org_a", 1.0, prompt, _tool_answer("sqrt(144)", "twelve"))
    b = Output("req_b", "org_b", 2.0, prompt, _tool_answer("factorial(5)", "one hundred twenty"))
    twin = Output("req_a2", "org_a", 3.0, prompt, a.answer)
    rec = [DatasetRecord(0, ((prompt, _tool_answer("log10(1000)", "three")),))]

    def derived(*outs: Output) -> dict:
        index = OutputIndex.memory()
        index.add_outputs(outs)
        stored = {o.id: o.answer for o in outs}
        return trace_records(rec, index, originals=stored.get)["records"][0]

    def ambiguous(*outs: Output) -> list[bool]:
        from distillguard.forensics.trace import _ambiguous

        index = OutputIndex.memory()
        index.add_outputs(outs)
        sk = index.sketcher.batch([rec[0].pairs[0][1]])
        return _ambiguous(index, index.score(sk.values, sk.sizes, top=2)).tolist()

    alone = derived(a)
    assert alone["derived"] and alone["matched_request"] == "req_a"  # corroborated by the prompt
    assert not derived(a, b)["derived"]  # two different answers of one template
    assert ambiguous(a, b) == [True, False] and ambiguous(a, twin) == [False, False] and ambiguous(a) == [False]
    # the same answer served to another org, marked with that org's variants: closer to the first copy than the
    # record is, so still one answer
    marked = Output("req_m", "org_m", 4.0, prompt, a.answer.replace("shown below", "displayed below"))
    assert ambiguous(a, marked) == [False, False]
    # the decision: a short aligned copy corroborated by its prompt is derived, unless it is ambiguous
    from distillguard.forensics.align import align
    from distillguard.forensics.corroborate import decide

    text = rec[0].pairs[0][1]
    args = (align(text, a.answer), 10.0, 1.0, text, a.answer, (0.12, 0.75))
    assert decide(*args).derived and not decide(*args, ambiguous=True).derived


def test_a_lower_cased_or_capitalised_copy_is_traced_through_its_candidates_names(outputs):
    """Lower case costs a dataset builder nothing; normalisation masks names by their capitals, so a lower-cased
    copy of an answer full of names shares few shingles with it unless it is re-cased from its best candidate."""
    from distillguard.forensics.formats import DatasetRecord
    from distillguard.forensics.index import Output

    answer = ("Ada Lovelace is often described as the first computer programmer. She worked with Charles Babbage "
              "on his design for a mechanical general-purpose computer, and in her notes on that machine she "
              "described a method for calculating a sequence of numbers, which is now seen as the first published "
              "algorithm. Her notes were written as a translation of an article by Luigi Menabrea, but they grew to "
              "three times its length. She also saw that the machine could act on symbols other than numbers, "
              "such as musical notes. A century later, Alan Turing read her notes at Bletchley Park, and the Ada "
              "programming language of the Department of Defense was named after her.")
    stored = Output("req_names", "org_n", 1.0, "Who was Ada Lovelace?", answer)
    index = OutputIndex.memory()
    index.add_outputs([stored, *outputs[:50]])
    texts = {o.id: o.answer for o in [stored, *outputs[:50]]}
    recs = [DatasetRecord(0, (("", answer.lower()),)), DatasetRecord(1, (("", answer.upper()),))]
    res = trace_records(recs, index, originals=texts.get)["records"]
    for r in res:
        assert r["derived"] and r["matched_request"] == "req_names", r
        assert "strong near-exact copy" in r["evidence"][1]
    # the batched lookup of stored texts takes the same path
    many = trace_records(recs, index, originals_many=lambda ids: {i: texts[i] for i in ids})["records"]
    assert [r["matched_request"] for r in many] == ["req_names", "req_names"]
