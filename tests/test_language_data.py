"""The language-data tools of `hrm data`: prepare-language, prepare, chunk, merge, normalize-qa, download-slice.

Everything runs on real text: docstrings of the standard library and MBPP's problems.
"""

import gzip
import http.server
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cli_helpers import MBPP_DIR

from hrmkit.cli.common import OneLineParser
from hrmkit.cli.language import add_language_tools, run_language_tool
from hrmkit.lm.corpus import sources
from hrmkit.lm.corpus.corpus_builder import RatioSplitter
from hrmkit.lm.corpus.field_paths import FieldMissing, FieldPath
from hrmkit.lm.corpus.layout import discover, split_of
from hrmkit.lm.corpus.merge import default_total, quotas
from hrmkit.lm.corpus_format import CorpusSplit, load_corpus_meta
from hrmkit.lm.tokenizers import BPETokenizer, load_tokenizer, train_bpe_tokenizer

pyarrow = pytest.importorskip("pyarrow")
zstandard = pytest.importorskip("zstandard")
import pyarrow.parquet as pq  # noqa: E402

MBPP = MBPP_DIR / "mbpp.jsonl"
STDLIB_MODULES = ("argparse", "collections", "functools", "inspect", "json", "pathlib", "re", "shutil",
                  "subprocess", "tempfile", "textwrap", "threading", "typing", "zipfile", "csv", "logging")


# --------------------------------------------------------------------------- helpers and fixtures


def run_tool(*argv):
    """Run `hrm data <argv>` in this process: (exit code, stdout, stderr)."""
    import contextlib
    import io

    parser = OneLineParser(prog="hrm data")
    add_language_tools(parser.add_subparsers(dest="tool", required=True))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = run_language_tool(parser.parse_args([str(arg) for arg in argv]))
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def one_line_error(code, err):
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    return err


@pytest.fixture(scope="session")
def docstrings():
    """Real prose: the docstrings of some standard-library modules and their members, in a fixed order."""
    import importlib
    import warnings

    texts = []
    for name in STDLIB_MODULES:
        module = importlib.import_module(name)
        for attribute in sorted(vars(module)):
            with warnings.catch_warnings():  # some attributes are deprecated aliases
                warnings.simplefilter("ignore")
                doc = getattr(getattr(module, attribute), "__doc__", None)
            if isinstance(doc, str) and len(doc.strip()) > 60 and doc not in texts:
                texts.append(doc.strip())
    assert len(texts) > 300
    return texts


@pytest.fixture(scope="session")
def mbpp():
    if not MBPP.is_file():
        pytest.skip(f"MBPP not found at {MBPP}")
    return [json.loads(line) for line in MBPP.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def bpe_file(tmp_path_factory, docstrings):
    path = tmp_path_factory.mktemp("tokenizer") / "tokenizer.json"
    train_bpe_tokenizer(iter(docstrings), vocab_size=400).save(path)
    return path


def write_jsonl(path, records, opener=open):
    with opener(path, "wt", encoding="utf-8") as file:
        for record in records:
            file.write(json.dumps(record) + "\n")
    return path


def write_zst(path, records):
    data = "".join(json.dumps(record) + "\n" for record in records).encode()
    path.write_bytes(zstandard.ZstdCompressor().compress(data))
    return path


def write_arrow(path, records, file_format=False):
    table = pyarrow.Table.from_pylist(records)
    with pyarrow.OSFile(str(path), "wb") as sink:
        open_writer = pyarrow.ipc.new_file if file_format else pyarrow.ipc.new_stream
        with open_writer(sink, table.schema) as writer:
            for batch in table.to_batches(max_chunksize=50):
                writer.write_batch(batch)
    return path


def read_lines(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def corpus_texts(corpus, split):
    """(prompt text, answer text) of every example of a written corpus split."""
    tokenizer = load_tokenizer(corpus / "tokenizer.json")
    return [(tokenizer.decode(example["encoder_ids"]), tokenizer.decode(example["labels"]))
            for example in read_lines(corpus / f"{split}.jsonl")]


# --------------------------------------------------------------------------- readers


def test_every_file_format_streams_the_same_records(tmp_path, mbpp):
    records = [{"text": row["text"], "code": row["code"], "task_id": row["task_id"]} for row in mbpp[:240]]
    files = [
        write_jsonl(tmp_path / "a.jsonl", records),
        write_jsonl(tmp_path / "a.jsonl.gz", records, gzip.open),
        write_zst(tmp_path / "a.ndjson.zst", records),
        tmp_path / "array.json",
        tmp_path / "concatenated.json",
        tmp_path / "a.parquet",
        write_arrow(tmp_path / "stream.arrow", records),
        write_arrow(tmp_path / "file.arrow", records, file_format=True),
    ]
    (tmp_path / "array.json").write_text(json.dumps(records, indent=1))
    (tmp_path / "concatenated.json").write_text("\n\n".join(json.dumps(record, indent=2) for record in records))
    pq.write_table(pyarrow.Table.from_pylist(records), tmp_path / "a.parquet", row_group_size=64)
    for path in files:
        batches = list(sources.iter_record_batches(path, batch_size=100))
        assert [record for batch in batches for record in batch] == records, path.name
        assert max(map(len, batches)) <= 100
        assert sources.count_records(path) == len(records)
    only_text = next(sources.iter_record_batches(tmp_path / "a.parquet", columns=["text"]))
    assert set(only_text[0]) == {"text"}


def test_a_json_array_streams_through_a_small_read_buffer(tmp_path, monkeypatch, docstrings):
    records = [{"text": text, "n": index} for index, text in enumerate(docstrings[:80])]
    (tmp_path / "docs.json").write_text(json.dumps(records))
    monkeypatch.setattr(sources, "_READ_BYTES", 97)  # values straddle every buffer boundary
    got = [record for batch in sources.iter_record_batches(tmp_path / "docs.json", 7) for record in batch]
    assert got == records


def test_unreadable_or_malformed_files_raise_one_line_errors(tmp_path, mbpp):
    (tmp_path / "bad.jsonl").write_text(json.dumps({"text": mbpp[0]["text"]}) + "\n{broken\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: not valid JSON"):
        list(sources.iter_record_batches(tmp_path / "bad.jsonl"))
    (tmp_path / "cut.json").write_text(json.dumps([{"text": row["text"]} for row in mbpp[:5]])[:-40])
    with pytest.raises(ValueError, match="cut.json: not valid JSON"):
        list(sources.iter_record_batches(tmp_path / "cut.json"))
    (tmp_path / "fake.jsonl.gz").write_text("not gzip at all\n")
    with pytest.raises(ValueError, match="fake.jsonl.gz: cannot"):
        list(sources.iter_record_batches(tmp_path / "fake.jsonl.gz"))
    (tmp_path / "fake.parquet").write_text("not parquet\n")
    with pytest.raises(ValueError, match="fake.parquet: not a readable parquet file"):
        list(sources.iter_record_batches(tmp_path / "fake.parquet"))
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(ValueError, match="unknown file type"):
        list(sources.iter_record_batches(tmp_path / "notes.txt"))


def test_field_paths_follow_keys_and_list_indices_and_tell_typos_from_empty_values():
    record = {"data": {"question": "Why?", "answers": {"text": ["Because.", "So."]}, "empty": []}, "n": 3}
    assert FieldPath.parse("data.answers.text[0]").lookup(record) == "Because."
    assert FieldPath.parse("data.answers.text[-1]").lookup(record) == "So."
    assert FieldPath.parse("n").text_of(record) == "3"
    with pytest.raises(FieldMissing) as typo:
        FieldPath.parse("data.qestion").lookup(record)
    assert typo.value.structural and "question" in typo.value.available
    with pytest.raises(FieldMissing) as empty:
        FieldPath.parse("data.empty[0]").lookup(record)
    assert not empty.value.structural
    with pytest.raises(FieldMissing, match=r"not text \(pick one item"):
        FieldPath.parse("data.answers.text").text_of(record)
    for bad in ("data..x", "a[x]", "", "[0]"):
        with pytest.raises(ValueError, match="field path"):
            FieldPath.parse(bad)


# --------------------------------------------------------------------------- layouts


def test_layouts_of_hugging_face_caches_are_read_with_their_splits(tmp_path, mbpp):
    rows = [{"text": row["text"]} for row in mbpp[:30]]
    disk = tmp_path / "saved"  # datasets.save_to_disk
    for split in ("train", "test"):
        (disk / split).mkdir(parents=True)
        write_arrow(disk / split / "data-00000-of-00001.arrow", rows)
        (disk / split / "state.json").write_text("{}")
        (disk / split / "dataset_info.json").write_text("{}")
    (disk / "dataset_dict.json").write_text('{"splits": ["train", "test"]}')
    layout = discover(disk)
    assert {split: [path.parent.name for path in files] for split, files in layout.splits.items()} == {
        "train": ["train"], "test": ["test"]}

    hub = tmp_path / "datasets--org--name"  # the hub cache: two revisions, refs/main names one
    for revision in ("old", "new"):
        data = hub / "snapshots" / revision / "data"
        data.mkdir(parents=True)
        for shard in range(2 if revision == "new" else 1):
            pq.write_table(pyarrow.Table.from_pylist(rows), data / f"train-0000{shard}-of-00002.parquet")
        pq.write_table(pyarrow.Table.from_pylist(rows), data / "validation-00000-of-00001.parquet")
    (hub / "refs").mkdir()
    (hub / "refs" / "main").write_text("new")
    (hub / "blobs").mkdir()
    layout = discover(hub)
    assert all("new" in path.parts for path in layout.all_files())
    assert [path.name for path in layout.splits["train"]] == ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
    assert list(layout.splits) == ["train", "val"]
    assert len(discover(hub, max_files_per_split=1).splits["train"]) == 1

    assert split_of(tmp_path / "squad-validation.arrow", tmp_path) == "val"
    assert split_of(tmp_path / "contest.jsonl", tmp_path) is None
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    write_jsonl(mixed / "train.jsonl", rows)
    write_jsonl(mixed / "extra.jsonl", rows)
    with pytest.raises(ValueError, match="name a split .* do not"):
        discover(mixed)


def test_ratio_assignment_depends_on_the_record_number_only():
    splitter = RatioSplitter(0.1, 0.2, seed=3)
    whole = splitter.codes(0, 10_000)
    pieces = [splitter.codes(start, 777) for start in range(0, 10_000, 777)]
    import numpy as np

    assert np.array_equal(whole, np.concatenate(pieces)[:10_000])
    shares = np.bincount(whole, minlength=3) / 10_000
    assert abs(shares[1] - 0.1) < 0.02 and abs(shares[2] - 0.2) < 0.02
    assert not np.array_equal(whole, RatioSplitter(0.1, 0.2, seed=4).codes(0, 10_000))


# --------------------------------------------------------------------------- prepare-language


@pytest.fixture(scope="session")
def docs_source(tmp_path_factory, docstrings):
    """An unsplit folder: half the docstrings as jsonl.gz, half as parquet (plus one record without text)."""
    root = tmp_path_factory.mktemp("docs")
    half = len(docstrings) // 2
    write_jsonl(root / "part-0.jsonl.gz", [{"text": text} for text in docstrings[:half]] + [{"title": "no text"}],
                gzip.open)
    pq.write_table(pyarrow.Table.from_pylist([{"text": text, "id": i} for i, text in enumerate(docstrings[half:])]),
                   root / "part-1.parquet")
    return root


def test_prepare_language_trains_a_tokenizer_and_carves_splits(tmp_path, docs_source, docstrings):
    dest = tmp_path / "corpus"
    code, out, err = run_tool("prepare-language", "--source", docs_source, "--out", dest, "--vocab-size", 400,
                              "--max-seq-len", 48, "--val-ratio", 0.1, "--test-ratio", 0.1, "--count-records")
    assert code == 0, err
    assert f"wrote {dest}" in out and "tokens/s" in out and "1 record(s) without a usable field" in out
    meta = load_corpus_meta(dest)
    assert (meta["pad_id"], meta["bos_id"], meta["eos_id"], meta["unk_id"]) == (0, 1, 2, 3)
    assert meta["vocab_size"] == 400 and meta["max_seq_len"] == 48
    assert set(meta["splits"]) == {"train", "val", "test"} and min(meta["splits"].values()) > 0
    records = meta["records"]
    assert sum(stat["records"] for stat in records.values()) == len(docstrings) + 1
    assert sum(stat["missing_field"] for stat in records.values()) == 1
    assert meta["source"]["splits_from"] == "ratios"
    assert isinstance(load_tokenizer(dest / "tokenizer.json"), BPETokenizer)
    assert len(CorpusSplit(dest, "train")) == meta["splits"]["train"]
    # Every example is a piece of a source document followed by its continuation.
    joined = "\n".join(docstrings)
    for prompt, answer in corpus_texts(dest, "val")[:50]:
        assert prompt + answer in joined
    assert not [path for path in tmp_path.iterdir() if ".tmp-" in path.name]


def test_prepare_language_keeps_source_splits_verbatim_and_reuses_a_tokenizer(tmp_path, bpe_file, mbpp):
    source = tmp_path / "src"
    source.mkdir()
    parts = {"train": mbpp[:300], "validation": mbpp[300:350], "test": mbpp[350:380]}
    for name, rows in parts.items():
        write_jsonl(source / f"mbpp-{name}.jsonl", [{"prompt": r["text"], "response": r["code"]} for r in rows])
    dest = tmp_path / "corpus"
    code, out, err = run_tool("prepare-language", "--source", source, "--out", dest, "--tokenizer", bpe_file,
                              "--mode", "prompt-response", "--max-seq-len", 256)
    assert code == 0, err
    meta = load_corpus_meta(dest)
    assert meta["splits"] == {"train": 300, "val": 50, "test": 30}
    assert meta["source"]["splits_from"] == "source"
    assert (dest / "tokenizer.json").read_text() == bpe_file.read_text()
    prompts = [prompt for prompt, _ in corpus_texts(dest, "val")]
    assert prompts == [row["text"] for row in parts["validation"]]


def test_prepare_language_refuses_ratio_flags_for_a_source_with_its_own_splits(tmp_path, bpe_file, mbpp):
    """--test-ratio 0.2 on a source with train and validation files was silently ignored: no test split, no word."""
    source = tmp_path / "src"
    source.mkdir()
    for name, rows in (("train", mbpp[:100]), ("validation", mbpp[100:120])):
        write_jsonl(source / f"{name}.jsonl", [{"text": row["text"]} for row in rows])
    dest = tmp_path / "corpus"
    for flags in (["--test-ratio", 0.2], ["--val-ratio", 0.2, "--test-ratio", 0.1]):
        code, _, err = run_tool("prepare-language", "--source", source, "--out", dest, "--tokenizer", bpe_file,
                                "--max-seq-len", 32, *flags)
        assert "has splits of its own (train, val), which are kept verbatim" in one_line_error(code, err)
        assert f"--test-ratio {flags[-1]:g}" in err and not dest.exists()
    code, _, err = run_tool("prepare-language", "--source", source, "--out", dest, "--tokenizer", bpe_file,
                            "--max-seq-len", 32, "--val-ratio", 0.05)  # the default, as if not given
    assert code == 0, err
    meta = load_corpus_meta(dest)
    assert set(meta["splits"]) == {"train", "val"} and meta["source"]["splits_from"] == "source"


def test_prepare_language_output_does_not_depend_on_the_batch_size(tmp_path, docs_source, bpe_file):
    outputs = []
    for batch_size in (7, 1000):
        dest = tmp_path / f"corpus-{batch_size}"
        code, _, err = run_tool("prepare-language", "--source", docs_source, "--out", dest, "--tokenizer", bpe_file,
                                "--max-seq-len", 32, "--tokenizer-batch-size", batch_size, "--val-ratio", 0.2)
        assert code == 0, err
        outputs.append([(dest / f"{split}.jsonl").read_bytes() for split in ("train", "val")])
    assert outputs[0] == outputs[1]


def test_prepare_language_refuses_bad_input_with_one_line_and_leaves_nothing(tmp_path, docs_source, bpe_file, mbpp):
    dest = tmp_path / "corpus"
    cases = [
        (["--val-ratio", 0.6, "--test-ratio", 0.5], "sum to less than 1"),
        (["--text-field", "txet"], "unknown field 'txet'.*did you mean 'text'"),
        (["--tokenizer", docs_source / "part-1.parquet"], "part-1.parquet: cannot read|not valid JSON"),
        (["--val-ratio", "abc"], "--val-ratio"),
        (["--max-seq-len", 1], "--max-seq-len"),
        (["--prefix-tokens", 99, "--max-seq-len", 32], "prefix_tokens must be in 1..max_seq_len=32"),
    ]
    for extra, message in cases:
        sizing = [] if "--tokenizer" in extra else ["--vocab-size", 300]  # it sizes a tokenizer trained here
        code, _, err = run_tool("prepare-language", "--source", docs_source, "--out", dest, *sizing, *extra)
        assert re.search(message, one_line_error(code, err)), err
    not_a_tokenizer = tmp_path / "tokenizer.json"
    not_a_tokenizer.write_text(json.dumps({"vocab": {"a": 1}}))
    code, _, err = run_tool("prepare-language", "--source", docs_source, "--out", dest, "--tokenizer", not_a_tokenizer)
    assert "unknown tokenizer file" in one_line_error(code, err)

    late_fault = tmp_path / "late"
    late_fault.mkdir()
    write_jsonl(late_fault / "a.jsonl", [{"text": row["text"]} for row in mbpp[:200]])
    with open(late_fault / "a.jsonl", "a") as file:
        file.write('{"text": "cut off\n')
    code, _, err = run_tool("prepare-language", "--source", late_fault, "--out", dest, "--tokenizer", bpe_file)
    assert "a.jsonl:201: not valid JSON" in one_line_error(code, err)
    assert not dest.exists() and not [path for path in tmp_path.iterdir() if ".tmp-" in path.name]

    code, _, err = run_tool("prepare-language", "--source", tmp_path / "nowhere", "--out", dest)
    assert "source not found" in one_line_error(code, err)
    dest.mkdir()
    code, _, err = run_tool("prepare-language", "--source", docs_source, "--out", dest)
    assert "--force" in one_line_error(code, err)


# --------------------------------------------------------------------------- prepare (staged)


def test_prepare_extracts_then_builds_triples_and_reuses_finished_stages(tmp_path, mbpp, bpe_file):
    source = tmp_path / "mbpp.parquet"
    rows = [{"problem": {"text": row["text"]}, "code": row["code"] if row["task_id"] % 50 else None} for row in mbpp]
    pq.write_table(pyarrow.Table.from_pylist(rows), source)
    out = tmp_path / "out"
    base = ["prepare", "--source", source, "--out", out, "--fields", "problem.text,code"]
    triples = ["--to-triples", "--mode", "prompt-response", "--prompt-field", "problem.text", "--response-field",
               "code", "--tokenizer", bpe_file, "--max-seq-len", 128]
    code, printed, err = run_tool(*base, *triples, "--count-records")
    assert code == 0, err
    missing = sum(1 for row in rows if row["code"] is None)
    extracted = read_lines(out / "extracted.jsonl")
    assert len(extracted) == len(rows) - missing and extracted[0] == {"problem.text": mbpp[0]["text"], "code": mbpp[0]["code"]}
    rejects = read_lines(out / "extracted.rejects.jsonl")
    assert len(rejects) == missing and rejects[0]["reason"] == "'code' is null"
    assert f"{missing} record(s) missing a field" in printed
    meta = load_corpus_meta(out / "triples")
    assert sum(meta["splits"].values()) == len(extracted)
    stamp = (out / "extracted.jsonl").stat().st_mtime_ns, (out / "triples" / "meta.json").stat().st_mtime_ns

    code, printed, err = run_tool(*base, *triples)
    assert code == 0, err
    assert "reusing" in printed and "wrote" not in printed
    assert stamp == ((out / "extracted.jsonl").stat().st_mtime_ns, (out / "triples" / "meta.json").stat().st_mtime_ns)

    code, _, err = run_tool(*base, *triples[:-1], 64)
    assert "--force-triples" in one_line_error(code, err)
    code, printed, err = run_tool(*base, *triples[:-1], 64, "--force-triples")
    assert code == 0 and "reusing" in printed and load_corpus_meta(out / "triples")["max_seq_len"] == 64

    code, _, err = run_tool("prepare", "--source", source, "--out", out, "--fields", "problem.text")
    assert "--force-extract" in one_line_error(code, err)
    code, _, err = run_tool("prepare", "--source", source, "--out", tmp_path / "o2", "--fields", "problm.text")
    assert "did you mean 'problem'" in one_line_error(code, err)
    code, _, err = run_tool("prepare", "--source", source, "--out", tmp_path / "o3", "--fields", "code",
                            "--to-triples", "--text-field", "problem.text")
    assert "not one of the extracted --fields" in one_line_error(code, err)


# --------------------------------------------------------------------------- chunk


def test_chunk_windows_overlap_cover_every_token_and_do_not_depend_on_num_proc(tmp_path, docstrings, bpe_file):
    source = write_jsonl(tmp_path / "docs.jsonl", [{"text": text} for text in docstrings[:150]] + [{"text": ""}])
    outputs = []
    for num_proc in (1, 2):
        output = tmp_path / f"windows-{num_proc}.jsonl"
        code, printed, err = run_tool("chunk", "--source", source, "--out", output, "--tokenizer", bpe_file,
                                      "--target-length", 32, "--stride", 24, "--batch-size", 16,
                                      "--num-proc", num_proc, "--count-records")
        assert code == 0, err
        assert "1 empty document(s)" in printed
        outputs.append(output.read_bytes())
    assert outputs[0] == outputs[1]

    tokenizer = load_tokenizer(bpe_file)
    windows = read_lines(tmp_path / "windows-1.jsonl")
    by_record = {}
    for window in windows:
        by_record.setdefault(window["record"], []).append(window)
        assert len(window["input_ids"]) <= 32
    for record, pieces in list(by_record.items())[:40]:
        ids = tokenizer.encode(docstrings[record])
        assert [piece["start"] for piece in pieces] == list(range(0, 24 * len(pieces), 24))
        rebuilt = pieces[0]["input_ids"] + [token for piece in pieces[1:] for token in piece["input_ids"][8:]]
        assert rebuilt == ids  # neighbours share 8 tokens; together they are the whole document

    code, _, err = run_tool("chunk", "--source", source, "--out", tmp_path / "x.jsonl", "--tokenizer", bpe_file,
                            "--target-length", 16, "--stride", 20)
    assert "would skip tokens" in one_line_error(code, err)
    assert not (tmp_path / "x.jsonl").exists()


# --------------------------------------------------------------------------- merge


@pytest.fixture
def chunk_corpora(tmp_path, docstrings, bpe_file):
    """Three corpora made by separate runs over thirds of the docstrings, in a folder of chunks."""
    chunks = tmp_path / "chunks"
    third = len(docstrings) // 3
    for number in range(3):
        source = tmp_path / f"src{number}"
        source.mkdir()
        write_jsonl(source / "docs.jsonl", [{"text": text} for text in docstrings[number * third:(number + 1) * third]])
        code, _, err = run_tool("prepare-language", "--source", source, "--out", chunks / f"chunk-{number}",
                                "--tokenizer", bpe_file, "--max-seq-len", 40, "--val-ratio", 0.1, "--seed", number)
        assert code == 0, err
    return chunks


def test_merge_concatenates_chunks_and_deletes_them_only_after_verifying(tmp_path, chunk_corpora):
    counts = [load_corpus_meta(chunk)["splits"] for chunk in sorted(chunk_corpora.iterdir())]
    expected_train = b"".join((chunk / "train.jsonl").read_bytes() for chunk in sorted(chunk_corpora.iterdir()))
    kept = tmp_path / "kept"
    code, printed, err = run_tool("merge", "--batches", chunk_corpora, "--out", kept, "--keep-chunks")
    assert code == 0, err and "kept the chunk folders" in printed
    assert (kept / "train.jsonl").read_bytes() == expected_train
    meta = load_corpus_meta(kept)
    assert meta["splits"] == {split: sum(count[split] for count in counts) for split in ("train", "val")}
    assert len(meta["source"]["merged_chunks"]) == 3 and chunk_corpora.is_dir()

    # A chunk whose meta claims more than its file holds: the merge fails and deletes nothing.
    broken = chunk_corpora / "chunk-1" / "meta.json"
    saved = broken.read_text()
    meta1 = json.loads(saved)
    meta1["splits"]["val"] += 1
    broken.write_text(json.dumps(meta1))
    code, _, err = run_tool("merge", "--batches", chunk_corpora, "--out", tmp_path / "bad")
    assert "inputs were left in place" in one_line_error(code, err)
    assert len(list(chunk_corpora.iterdir())) == 3 and not (tmp_path / "bad").exists()
    broken.write_text(saved)

    merged = tmp_path / "merged"
    code, printed, err = run_tool("merge", "--batches", chunk_corpora, "--out", merged)
    assert code == 0, err
    assert "deleted the 3 chunk folder(s)" in printed and not chunk_corpora.exists()
    assert (merged / "train.jsonl").read_bytes() == expected_train


def test_merge_refuses_corpora_with_different_tokenizers(tmp_path, chunk_corpora, docstrings):
    other = chunk_corpora / "chunk-2" / "tokenizer.json"
    train_bpe_tokenizer(iter(docstrings[:60]), vocab_size=400).save(other)  # same size, other merges
    code, _, err = run_tool("merge", "--batches", chunk_corpora, "--out", tmp_path / "merged")
    assert "tokenizer differs" in one_line_error(code, err)
    assert len(list(chunk_corpora.iterdir())) == 3


def test_blend_meets_quotas_is_fixed_by_the_seed_and_repeats_small_sources(tmp_path, chunk_corpora):
    a, b = chunk_corpora / "chunk-0", chunk_corpora / "chunk-1"
    train_a, train_b = load_corpus_meta(a)["splits"]["train"], load_corpus_meta(b)["splits"]["train"]
    runs = {}
    for name, seed in (("one", 1), ("again", 1), ("other", 2)):
        code, printed, err = run_tool("merge", "--sources", a, b, "--weights", 3, 1, "--out", tmp_path / name,
                                      "--seed", seed)
        assert code == 0, err
        runs[name] = (tmp_path / name / "train.jsonl").read_bytes()
    assert runs["one"] == runs["again"] and runs["one"] != runs["other"]
    meta = load_corpus_meta(tmp_path / "one")
    quota = {entry["path"]: entry["quota"]["train"] for entry in meta["source"]["blend"]}
    assert quota[str(a)] == train_a and quota[str(b)] == round(train_a / 3)  # a is the binding source
    assert meta["splits"]["train"] == train_a + round(train_a / 3)
    lines_a = set((a / "train.jsonl").read_bytes().splitlines())
    lines_b = set((b / "train.jsonl").read_bytes().splitlines())
    blended = set((tmp_path / "one" / "train.jsonl").read_bytes().splitlines())
    assert lines_a <= blended <= lines_a | lines_b  # all of a (its whole quota), the rest from b

    code, _, err = run_tool("merge", "--sources", a, b, "--weights", 1, 1, "--train-samples", 4 * train_b,
                            "--out", tmp_path / "big")
    assert code == 0, err
    assert load_corpus_meta(tmp_path / "big")["splits"]["train"] == 4 * train_b
    assert quotas(10, [1, 1, 1]) == [4, 3, 3] and default_total([10, 100], [1, 1]) == 20
    code, _, err = run_tool("merge", "--sources", a, b, "--weights", 1, "--out", tmp_path / "w")
    assert "one weight per source" in one_line_error(code, err)


# --------------------------------------------------------------------------- normalize-qa


def squad_like(mbpp):
    """MBPP problems dressed as nested QA records; every 40th has no answer."""
    return [{"id": row["task_id"], "data": {"question": row["text"], "context": row["test_list"][0],
                                            "answers": {"text": [] if row["task_id"] % 40 == 0 else [row["code"]]}}}
            for row in mbpp[:400]]


def test_normalize_qa_writes_prompts_and_rejects_records_missing_a_field(tmp_path, mbpp):
    records = squad_like(mbpp)
    for source in (write_jsonl(tmp_path / "qa.jsonl", records), tmp_path / "qa.parquet"):
        pq.write_table(pyarrow.Table.from_pylist(records), tmp_path / "qa.parquet")
        output = tmp_path / f"{source.suffix[1:]}-prompts.jsonl"
        code, printed, err = run_tool("normalize-qa", "--source", source, "--out", output,
                                      "--question-field", "data.question", "--answer-field", "data.answers.text[0]",
                                      "--context-field", "data.context", "--prompt-template",
                                      "{context}\nTask: {question}", "--count-records")
        assert code == 0, err
        rows = read_lines(output)
        missing = [record for record in records if not record["data"]["answers"]["text"]]
        assert len(rows) == len(records) - len(missing)
        assert rows[0] == {"prompt": f"{records[0]['data']['context']}\nTask: {records[0]['data']['question']}",
                           "response": records[0]["data"]["answers"]["text"][0]}
        rejects = read_lines(tmp_path / f"{source.suffix[1:]}-prompts.rejects.jsonl")
        assert [reject["record"]["id"] for reject in rejects] == [record["id"] for record in missing]
        assert f"{len(missing)} record(s) missing a field" in printed

    code, _, err = run_tool("normalize-qa", "--source", tmp_path / "qa.jsonl", "--out", tmp_path / "x.jsonl",
                            "--question-field", "data.qustion", "--answer-field", "data.answers.text[0]")
    assert "unknown field 'data.qustion'" in one_line_error(code, err) and "did you mean 'question'" in err
    code, _, err = run_tool("normalize-qa", "--source", tmp_path / "qa.jsonl", "--out", tmp_path / "x.jsonl",
                            "--question-field", "data.question", "--answer-field", "data.answers.text")
    assert "not text" in one_line_error(code, err)
    code, _, err = run_tool("normalize-qa", "--source", tmp_path / "qa.jsonl", "--out", tmp_path / "x.jsonl",
                            "--question-field", "data.question", "--answer-field", "data.answers.text[0]",
                            "--prompt-template", "{context} {question}")
    assert "no --context-field" in one_line_error(code, err)
    code, _, err = run_tool("normalize-qa", "--source", tmp_path / "missing.jsonl", "--out", tmp_path / "x.jsonl",
                            "--question-field", "q", "--answer-field", "a")
    assert "file not found" in one_line_error(code, err)
    assert not (tmp_path / "x.jsonl").exists()


# --------------------------------------------------------------------------- download-slice


class ShardServer:
    """Serves files on 127.0.0.1 with Range support; drops the connection halfway through some files once."""

    def __init__(self, files, drop_once=()):
        self.files, self.drop_once, self.requests = files, set(drop_once), []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                data = server.files.get(self.path)
                server.requests.append((self.path, self.headers.get("Range")))
                if data is None:
                    self.send_error(404)
                    return
                start, end = 0, len(data) - 1
                if self.headers.get("Range"):
                    first, _, last = self.headers["Range"].split("=")[1].partition("-")
                    start, end = int(first), min(int(last), end) if last else end
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:end + 1]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in server.drop_once:
                    server.drop_once.discard(self.path)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def shard_site(mbpp):
    """Six shards of MBPP problems, gzip and zstd in turn, and a gzipped index of their paths."""
    files, texts = {}, []
    for number in range(6):
        rows = mbpp[number * 40:(number + 1) * 40]
        text = "".join(json.dumps({"text": row["text"]}) + "\n" for row in rows).encode()
        texts.append(text)
        if number % 2:
            files[f"/data/shard-{number}.jsonl.zst"] = zstandard.ZstdCompressor().compress(text)
        else:
            files[f"/data/shard-{number}.jsonl.gz"] = gzip.compress(text)
    index = "\n".join(path.lstrip("/") for path in files) + "\n"
    files["/index.txt.gz"] = gzip.compress(index.encode())
    return files, texts


def test_download_slice_resumes_a_dropped_connection_and_continues_after_used_ranges(tmp_path, shard_site):
    files, texts = shard_site
    with ShardServer(files, drop_once={"/data/shard-1.jsonl.zst"}) as server:
        common = ["--index-url", f"{server.url}/index.txt.gz", "--base-url", server.url, "--downloader", "python"]
        first = tmp_path / "slice-a.jsonl"
        code, printed, err = run_tool("download-slice", *common, "--out", first, "--start", 0, "--count", 3)
        assert code == 0, err
        assert first.read_bytes() == b"".join(texts[:3])
        assert ("/data/shard-1.jsonl.zst", None) in server.requests
        assert any(path == "/data/shard-1.jsonl.zst" and rng for path, rng in server.requests)  # resumed by Range
        meta = json.loads((tmp_path / "slice-a.jsonl.meta.json").read_text())
        assert (meta["start"], meta["end"], meta["sample_start"], meta["sample_end"]) == (0, 3, 0, 120)
        assert meta["shards"][1]["url"] == f"{server.url}/data/shard-1.jsonl.zst"
        assert not (tmp_path / "slice-a.jsonl.parts").exists()

        second = tmp_path / "slice-b.jsonl.zst"
        code, printed, err = run_tool("download-slice", *common, "--out", second, "--count", 2, "--compress")
        assert code == 0, err
        assert zstandard.ZstdDecompressor().stream_reader(second.read_bytes()).read() == b"".join(texts[3:5])
        meta = json.loads((tmp_path / "slice-b.jsonl.zst.meta.json").read_text())
        assert (meta["start"], meta["end"], meta["sample_start"], meta["sample_end"]) == (3, 5, 120, 200)

        code, _, err = run_tool("download-slice", *common, "--out", second, "--count", 1)
        assert "finished slice" in one_line_error(code, err)

        # An interrupted earlier run left half of shard 5: the rerun asks only for the rest.
        third = tmp_path / "slice-c.jsonl"
        parts = tmp_path / "slice-c.jsonl.parts"
        parts.mkdir()
        data = files["/data/shard-5.jsonl.zst"]
        (parts / "00000005-shard-5.jsonl.zst.part").write_bytes(data[:100])
        code, printed, err = run_tool("download-slice", *common, "--out", third, "--target-size", "1K")
        assert code == 0, err
        assert third.read_bytes() == texts[5]
        assert "; 100 bytes were kept from interrupted downloads" in printed
        assert ("/data/shard-5.jsonl.zst", "bytes=100-") in server.requests

        code, _, err = run_tool("download-slice", *common, "--out", tmp_path / "none.jsonl", "--count", 1)
        assert "nothing is left from shard 6" in one_line_error(code, err)
        code, _, err = run_tool("download-slice", "--index-url", f"{server.url}/missing.gz", "--base-url", server.url,
                                "--out", tmp_path / "x.jsonl", "--count", 1)
        assert code == 1 and "HTTP 404" in err and not (tmp_path / "x.jsonl").exists()
        code, _, err = run_tool("download-slice", *common, "--out", tmp_path / "y.jsonl", "--target-size", "lots")
        assert "--target-size" in one_line_error(code, err)


@pytest.mark.skipif(shutil.which("aria2c") is None, reason="aria2c is not installed")
def test_download_slice_with_aria2c_survives_a_dropped_connection(tmp_path, shard_site):
    files, texts = shard_site
    with ShardServer(files, drop_once={"/data/shard-0.jsonl.gz"}) as server:
        output = tmp_path / "slice.jsonl"
        code, printed, err = run_tool("download-slice", "--index-url", f"{server.url}/index.txt.gz",
                                      "--base-url", server.url, "--out", output, "--count", 2,
                                      "--downloader", "aria2c", "--aria2c-connections", 2, "--aria2c-split", 2)
        assert code == 0, err
        assert "with aria2c" in printed
        assert output.read_bytes() == b"".join(texts[:2])


def test_triples_and_fetch_flags_are_generated_from_their_dataclasses(monkeypatch):
    import argparse
    import dataclasses

    from hrmkit.cli.flags import dataclass_from_flags, field_docs
    from hrmkit.lm.corpus import fetch, triples

    def verb_parsers():
        parser = OneLineParser(prog="hrm data")
        add_language_tools(parser.add_subparsers(dest="tool", required=True))
        return parser, next(action for action in parser._actions
                            if isinstance(action, argparse._SubParsersAction)).choices

    parser, verbs = verb_parsers()
    for verb, config_class in (("prepare-language", triples.TriplesConfig), ("prepare", triples.TriplesConfig),
                               ("download-slice", fetch.FetchOptions)):
        flags = {action.dest: action for action in verbs[verb]._actions}
        for field in dataclasses.fields(config_class):
            action = flags[field.name]
            assert action.option_strings == ["--" + field.name.replace("_", "-")]
            assert action.default == field.default
            assert action.help.startswith(field_docs(config_class)[field.name]), (verb, field.name)
    required = {"prepare-language": ["--source", "s", "--out", "d"],
                "download-slice": ["--index-url", "i", "--base-url", "b", "--out", "o", "--count", "1"]}
    given = parser.parse_args(["download-slice", *required["download-slice"], "--downloader", "python", "--retries", "0",
                               "--timeout", "2.5", "--aria2c-split", "3"])
    assert dataclass_from_flags(fetch.FetchOptions, given) == fetch.FetchOptions(
        downloader="python", retries=0, timeout=2.5, aria2c_split=3)

    # A changed default in the dataclass is the flag's default: nothing else spells it.
    @dataclasses.dataclass(frozen=True)
    class LongerTriples(triples.TriplesConfig):
        max_seq_len: int = 1024
        """longest sequence"""

    @dataclasses.dataclass
    class PatientFetch(fetch.FetchOptions):
        retries: int = 9
        """retries"""

    monkeypatch.setattr(triples, "TriplesConfig", LongerTriples)
    monkeypatch.setattr(fetch, "FetchOptions", PatientFetch)
    parser, _ = verb_parsers()
    assert parser.parse_args(["prepare-language", *required["prepare-language"]]).max_seq_len == 1024
    assert parser.parse_args(["download-slice", *required["download-slice"]]).retries == 9
    monkeypatch.undo()

    for extra, message in ((["--retries", -1], "argument --retries: must be >= 0, got -1"),
                           (["--aria2c-split", 0], "argument --aria2c-split: must be >= 1, got 0"),
                           (["--downloader", "curl"], "argument --downloader: invalid choice: 'curl'")):
        code, _, err = run_tool("download-slice", *required["download-slice"], *extra)
        assert message in one_line_error(code, err)
    code, _, err = run_tool("prepare-language", *required["prepare-language"], "--continuation-tokens", 0)
    assert "argument --continuation-tokens: must be >= 1, got 0" in one_line_error(code, err)


# --------------------------------------------------------------------------- the real `hrm` command


def _wired():
    result = subprocess.run([sys.executable, "-m", "hrmkit", "data", "--help"], capture_output=True, text=True)
    return "prepare-language" in result.stdout


@pytest.mark.cli
@pytest.mark.skipif(not _wired(), reason="hrm data is not wired to the language tools yet")
def test_hrm_data_verbs_run_as_a_user_would(tmp_path, docs_source):
    from cli_helpers import hrm

    for verb in ("prepare-language", "prepare", "chunk", "merge", "normalize-qa", "download-slice"):
        assert "--" in hrm("data", verb, "--help").stdout
    result = hrm("data", "prepare-language", "--source", str(docs_source), "--out", str(tmp_path / "c"),
                 "--vocab-size", "300", "--max-seq-len", "32")
    assert "wrote" in result.stdout and load_corpus_meta(tmp_path / "c")["vocab_size"] == 300
    bad = hrm("data", "prepare-language", "--source", str(docs_source), "--out", str(tmp_path / "d"),
              "--val-ratio", "0.7", "--test-ratio", "0.5", check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    shutil.rmtree(tmp_path / "c")


@pytest.mark.parametrize("suffix", [".gz", ".zst"])
def test_an_output_named_gz_or_zst_is_compressed_so_the_next_tool_reads_it(tmp_path, mbpp, docstrings, bpe_file, suffix):
    """normalize-qa and chunk wrote plain JSONL under a .gz / .zst name, which every tool then refused
    ('Not a gzipped file')."""
    source = write_jsonl(tmp_path / "qa.jsonl", squad_like(mbpp))
    fields = ["--question-field", "data.question", "--answer-field", "data.answers.text[0]"]
    for output in (tmp_path / "plain.jsonl", tmp_path / f"packed.jsonl{suffix}"):
        code, _, err = run_tool("normalize-qa", "--source", source, "--out", output, *fields)
        assert code == 0, err
    assert (tmp_path / "packed.rejects.jsonl").exists()
    packed = [record for batch in sources.iter_record_batches(tmp_path / f"packed.jsonl{suffix}") for record in batch]
    assert packed == read_lines(tmp_path / "plain.jsonl")
    assert (tmp_path / f"packed.jsonl{suffix}").read_bytes()[:2] != b'{"'
    if suffix == ".gz":  # the header names the file as it is called (gunzip -N), not its temporary name
        header = (tmp_path / "packed.jsonl.gz").read_bytes()[:40]
        assert header[10:].startswith(b"packed.jsonl\0") and header[4:8] == bytes(4)  # and holds no time

    docs = write_jsonl(tmp_path / "docs.jsonl", [{"text": text} for text in docstrings[:20]])
    for output in (tmp_path / "windows.jsonl", tmp_path / f"windows.jsonl{suffix}"):
        code, _, err = run_tool("chunk", "--source", docs, "--out", output, "--tokenizer", bpe_file,
                                "--target-length", 32, "--stride", 24)
        assert code == 0, err
    windows = [record for batch in sources.iter_record_batches(tmp_path / f"windows.jsonl{suffix}") for record in batch]
    assert windows == read_lines(tmp_path / "windows.jsonl")


def test_builders_refuse_an_empty_train_split_and_leave_nothing(tmp_path, docstrings, bpe_file):
    """`hrm train` refuses a corpus without training examples, yet prepare-language (an empty file, or records
    that all give no example) and merge --train-samples 0 wrote one and exited 0."""
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "e.jsonl").write_text("")
    unusable = tmp_path / "unusable"
    unusable.mkdir()
    write_jsonl(unusable / "u.jsonl", [{"text": None if number % 2 else "a"} for number in range(20)])
    for source, tokenizer, message in (
        (empty, ["--vocab-size", 300], "e.jsonl: no records in the training split; nothing to train on"),
        (unusable, ["--tokenizer", bpe_file], "u.jsonl: no training examples: its "),
    ):
        code, _, err = run_tool("prepare-language", "--source", source, "--out", tmp_path / "corpus", *tokenizer)
        assert message in one_line_error(code, err)
    assert "without a usable field" in err and "under two tokens" in err

    corpora = []
    for number in range(2):
        source = tmp_path / f"src{number}"
        source.mkdir()
        write_jsonl(source / "docs.jsonl", [{"text": text} for text in docstrings[number * 20:(number + 1) * 20]])
        corpora.append(tmp_path / f"c{number}")
        code, _, err = run_tool("prepare-language", "--source", source, "--out", corpora[-1], "--tokenizer", bpe_file,
                                "--max-seq-len", 40)
        assert code == 0, err
    code, _, err = run_tool("merge", "--sources", *corpora, "--train-samples", 0, "--out", tmp_path / "blend")
    assert "blend: its train split would hold 0 examples" in one_line_error(code, err)
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(("corpus", "blend"))]


def test_single_file_outputs_go_into_folders_that_do_not_exist_yet(tmp_path, mbpp, docstrings, bpe_file):
    """normalize-qa and chunk failed on a missing folder with an error naming their temporary file
    ('x.jsonl.tmp-16383'), where the other hrm data tools create the folders of their output."""
    source = write_jsonl(tmp_path / "qa.jsonl", squad_like(mbpp)[:40])
    output = tmp_path / "nodir" / "sub" / "prompts.jsonl"
    code, _, err = run_tool("normalize-qa", "--source", source, "--out", output,
                            "--question-field", "data.question", "--answer-field", "data.answers.text[0]")
    assert code == 0, err
    assert len(read_lines(output)) == 39 and (output.parent / "prompts.rejects.jsonl").is_file()

    docs = write_jsonl(tmp_path / "docs.jsonl", [{"text": text} for text in docstrings[:10]])
    windows = tmp_path / "other" / "deeper" / "windows.jsonl"
    code, _, err = run_tool("chunk", "--source", docs, "--out", windows, "--tokenizer", bpe_file, "--target-length", 32)
    assert code == 0, err
    assert read_lines(windows) and not [path for path in windows.parent.iterdir() if ".tmp-" in path.name]


def test_field_messages_say_what_a_field_holds_and_number_records_as_the_rejects_file_does(tmp_path, mbpp):
    """A field that exists but holds an object was called 'unknown'; 'a int'; and prepare's summary
    numbered the first reject from 1 while extracted.rejects.jsonl's "index" counts from 0."""
    source = write_jsonl(tmp_path / "qa.jsonl", squad_like(mbpp)[:60])
    code, _, err = run_tool("normalize-qa", "--source", source, "--out", tmp_path / "x.jsonl",
                            "--question-field", "data", "--answer-field", "data.answers.text[0]")
    assert one_line_error(code, err).endswith("qa.jsonl: field 'data' is an object, not text\n")
    numbers = tmp_path / "numbers"
    numbers.mkdir()
    write_jsonl(numbers / "n.jsonl", [1, 2, 3])
    code, _, err = run_tool("prepare-language", "--source", numbers, "--out", tmp_path / "c", "--vocab-size", 300)
    assert one_line_error(code, err).endswith("n.jsonl: unknown field 'text': the record is an int, not an object\n")

    code, printed, err = run_tool("prepare", "--source", source, "--out", tmp_path / "prep",
                                  "--fields", "data.question,data.answers.text[0]")
    assert code == 0, err
    first = read_lines(tmp_path / "prep" / "extracted.rejects.jsonl")[0]
    assert first["index"] == 39  # task 40, every 40th has no answer
    assert f"(first: index 39: {first['reason']})" in printed


@pytest.mark.parametrize("flag", [["--vocab-size", "5000"], ["--tokenizer-sample-mb", "3"]])
def test_tokenizer_sizing_flags_given_with_a_tokenizer_are_refused(tmp_path, docs_source, bpe_file, flag):
    """They size the BPE trained when no tokenizer is given; beside --tokenizer they were silently ignored."""
    code, _, err = run_tool("prepare-language", "--source", docs_source, "--out", tmp_path / "lm",
                            "--tokenizer", bpe_file, *flag)
    assert f"{flag[0]} size the tokenizer trained when no --tokenizer is given" in one_line_error(code, err)
    assert not (tmp_path / "lm").exists()


def test_a_given_tokenizer_that_does_not_know_the_text_is_reported(tmp_path, docs_source):
    """A tokenizer made for other text turned most labels into <unk> without a word."""
    from hrmkit.lm.tokenizers import SimpleTokenizer
    letters = tmp_path / "letters.json"
    SimpleTokenizer.for_texts(["abcdefghijklmnopqrstuvwxyz "]).save(letters)  # no capitals, digits, punctuation
    code, printed, err = run_tool("prepare-language", "--source", docs_source, "--out", tmp_path / "lm",
                                  "--tokenizer", letters, "--max-seq-len", 64)
    assert code == 0, err
    found = re.search(r"warning: train: ([\d,]+) of ([\d,]+) tokens \([\d.]+%\) are <unk>", printed)
    assert found, printed
    unknown, total = (int(group.replace(",", "")) for group in found.groups())
    labels = [json.loads(line)["labels"] for line in (tmp_path / "lm" / "train.jsonl").read_text().splitlines()]
    assert 0 < unknown < total and any(3 in row for row in labels)  # <unk> is id 3, in the corpus as reported

    docs = write_jsonl(tmp_path / "docs.jsonl", [{"text": "Hello World 42"}, {"text": "hello world"}])
    for num_proc in (1, 2):  # counted in the worker processes too
        code, printed, err = run_tool("chunk", "--source", docs, "--out", tmp_path / f"w{num_proc}.jsonl",
                                      "--tokenizer", letters, "--target-length", 8, "--num-proc", num_proc)
        assert code == 0, err
        assert "warning: 4 of 25 tokens (16.0%) are <unk>" in printed  # H, W, 4, 2


@pytest.mark.cli
def test_ctrl_c_stops_a_parallel_chunk_in_one_line_leaving_nothing(tmp_path, docstrings, bpe_file):
    """Ctrl-C reaches the whole process group: each chunk worker printed a KeyboardInterrupt traceback."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time
    rng = random.Random(0)
    words = "the quick brown fox jumps over lazy dog model reason".split()
    source = write_jsonl(tmp_path / "docs.jsonl", [{"text": " ".join(rng.choice(words) for _ in range(rng.randint(20, 120)))}
                                                   for _ in range(60_000)])  # enough to keep both workers encoding
    out = tmp_path / "windows.jsonl"
    chunk = subprocess.Popen([sys.executable, "-m", "hrmkit", "data", "chunk", "--source", str(source), "--out", str(out),
                              "--tokenizer", str(bpe_file), "--target-length", "16", "--stride", "4", "--num-proc", "2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("windows.jsonl.tmp-*")) and chunk.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.5)  # the workers are encoding
    assert chunk.poll() is None, "chunk ended before it could be interrupted"
    os.killpg(chunk.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, err = chunk.communicate(timeout=120)
    assert chunk.returncode == 130 and "Traceback" not in err, err
    assert sorted(path.name for path in tmp_path.iterdir()) == ["docs.jsonl"]
