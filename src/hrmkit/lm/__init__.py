"""The sequence-to-sequence family: text corpora, tokenizers, the seq2seq task and generation.

    text.py              the processed-corpus format (JSONL + meta.json + tokenizer), batching, arithmetic data
    tokenizers.py        character and BPE tokenizers, saved beside every corpus
    corpus/              the corpus tools behind `hrm data <verb>` (streaming, bounded memory)
    task.py              the seq2seq Task the trainer runs (teacher-forced loss, generation-based evaluation)
    generate.py          KV-cached generation from a Seq2SeqHRM

Dependency rule: this package imports `hrmkit.model`, `hrmkit.train` and the shared modules
(`config`, `config_base`, `files`, `progress`), never another family (`hrmkit.puzzles`,
`hrmkit.code`). tests/test_layout.py checks it.
"""
