import csv
import json

import pytest

from distillguard.forensics.formats import DatasetFormatError, read_dataset

ALPACA = {"instruction": "Say hi", "input": "to Bob", "output": "Hi Bob!"}
SHAREGPT = {"conversations": [{"from": "human", "value": "q1"}, {"from": "gpt", "value": "a1"},
                              {"from": "human", "value": "q2"}, {"from": "gpt", "value": "a2"}]}
OPENAI = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"},
                       {"role": "assistant", "content": "a"}]}
TEXT = {"text": "plain"}


def test_jsonl_detects_each_record_format(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in (ALPACA, SHAREGPT, OPENAI, TEXT)) + "\n")
    recs = list(read_dataset(p))
    assert [r.format for r in recs] == ["alpaca", "sharegpt", "openai", "text"]
    assert recs[0].pairs == (("Say hi\nto Bob", "Hi Bob!"),)
    assert recs[1].pairs == (("q1", "a1"), ("q2", "a2"))
    assert recs[2].pairs == (("q", "a"),)
    assert recs[3].answer == "plain" and recs[3].prompt == ""


def test_json_array_and_data_object(tmp_path):
    a = tmp_path / "a.json"
    a.write_text(json.dumps([ALPACA, OPENAI]))
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"data": [SHAREGPT]}))
    assert [r.format for r in read_dataset(a)] == ["alpaca", "openai"]
    assert [r.answer for r in read_dataset(b)] == ["a1\na2"]


def test_csv_with_alpaca_and_text_columns(tmp_path):
    p = tmp_path / "d.csv"
    with open(p, "w", newline="") as f:
        w = csv.DictWriter(f, ["instruction", "input", "output"])
        w.writeheader()
        w.writerow(ALPACA)
    assert list(read_dataset(p))[0].pairs == (("Say hi\nto Bob", "Hi Bob!"),)
    q = tmp_path / "t.csv"
    q.write_text('text\n"line one, with comma"\n')
    assert list(read_dataset(q))[0].answer == "line one, with comma"


def test_csv_conversations_cell_is_decoded(tmp_path):
    p = tmp_path / "d.csv"
    with open(p, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["conversations"])
        w.writerow([json.dumps(SHAREGPT["conversations"])])
    assert list(read_dataset(p))[0].format == "sharegpt"


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    p = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist([ALPACA, {**ALPACA, "output": "Bye"}]), p)
    assert [r.answer for r in read_dataset(p)] == ["Hi Bob!", "Bye"]
    q = tmp_path / "noext"
    q.write_bytes(p.read_bytes())
    assert len(list(read_dataset(q))) == 2  # detected from the magic bytes


@pytest.mark.parametrize("content,name", [
    ('{"foo": 1, "bar": 2}\n', "x.jsonl"),
    ("not json at all\n", "x.jsonl"),
    ('{"data": 5}', "x.json"),
    ("just some words", "x.bin"),
])
def test_bad_input_is_a_clear_error(tmp_path, content, name):
    p = tmp_path / name
    p.write_text(content)
    with pytest.raises(DatasetFormatError) as e:
        list(read_dataset(p))
    assert str(p) in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(DatasetFormatError, match="not found"):
        list(read_dataset(tmp_path / "nope.jsonl"))
