"""The sequence-to-sequence family: text corpora, tokenizers, the seq2seq task and generation.

    examples.py          one sequence-to-sequence example: made from ids or text, cut to length, checked
    corpus_format.py     the processed-corpus format (JSONL + meta.json + tokenizer): write, read, split access
    line_index.py        cached byte offsets of a JSONL file's lines (random access to a corpus split)
    batches.py           padding, the resumable training batch stream, ordered evaluation batches
    arithmetic.py        synthetic arithmetic corpora
    tokenizers.py        character and BPE tokenizers, saved beside every corpus
    corpus/              the corpus tools behind `hrm data <verb>` (streaming, bounded memory)
    task.py              the seq2seq Task the trainer runs (teacher-forced loss, generation-based evaluation)
    generate.py          KV-cached generation from a Seq2SeqHRM

Dependency rule: this package imports `hrmkit.model`, `hrmkit.train` and the shared modules
(`config`, `config_base`, `files`, `progress`), never another family (`hrmkit.puzzles`,
`hrmkit.code`). tests/test_layout.py checks it.
"""
