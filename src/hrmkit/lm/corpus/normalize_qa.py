"""`hrm data normalize-qa`: question-answering records of any layout -> prompt / response JSONL.

Fields are dotted paths with list indices (`data.question`, `data.answers.text[0]`). The
prompt is `prompt_template` filled with {question} and, when a context field is given,
{context}. Output lines are `{"prompt": ..., "response": ...}`, ready for
`prepare-language --mode prompt-response`.

A record missing a field is never dropped silently: it is counted, reported and written,
with the reason, to the rejects file (`<output stem>.rejects.jsonl`, always written, empty
when nothing was rejected, so an old one never lingers). A field absent from the *first*
record is taken as a typo in the command instead, and stops the run before anything is
written.
"""

from __future__ import annotations

import string
import time
from dataclasses import dataclass
from pathlib import Path

from hrmkit.files import staged_file
from hrmkit.lm.corpus import Progress
from hrmkit.lm.corpus.extract import json_line
from hrmkit.lm.corpus.field_paths import FieldMissing, FieldPath, check_schema
from hrmkit.lm.corpus.sources import count_records, first_record, iter_record_batches, open_compressed_as

PLACEHOLDERS = ("question", "context")


def default_template(with_context: bool) -> str:
    return "{context}\n\nQuestion: {question}\nAnswer:" if with_context else "Question: {question}\nAnswer:"


def check_template(template: str, with_context: bool) -> None:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as error:
        raise ValueError(f"bad --prompt-template {template!r}: {error} (write literal braces as {{{{ and }}}})") from None
    unknown = sorted(names - set(PLACEHOLDERS))
    if unknown:
        raise ValueError(f"--prompt-template uses unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; "
                         "it may use {question} and {context}")
    if "question" not in names:
        raise ValueError("--prompt-template must contain {question}")
    if "context" in names and not with_context:
        raise ValueError("--prompt-template uses {context} but no --context-field was given")


def rejects_path(output: Path) -> Path:
    name = output.name
    for suffix in (".gz", ".zst", ".jsonl"):  # prompts.jsonl.gz -> prompts.rejects.jsonl
        name = name.removesuffix(suffix)
    return output.with_name(f"{name}.rejects.jsonl")


@dataclass
class NormalizeResult:
    records: int = 0
    written: int = 0
    rejected: int = 0
    reasons: dict[str, int] | None = None
    rejects: Path | None = None
    seconds: float = 0.0


def normalize_qa(
    source: str | Path,
    output: str | Path,
    question_field: str,
    answer_field: str,
    context_field: str | None = None,
    prompt_template: str | None = None,
    batch_size: int = 1000,
    count_first: bool = False,
    progress: Progress | None = None,
) -> NormalizeResult:
    started = time.perf_counter()
    source, output = Path(source), Path(output)
    with_context = bool(context_field)
    template = prompt_template if prompt_template is not None else default_template(with_context)
    check_template(template, with_context)
    fields = {"question": FieldPath.parse(question_field), "response": FieldPath.parse(answer_field)}
    if context_field:
        fields["context"] = FieldPath.parse(context_field)
    record = first_record([source])
    if record is not None:
        check_schema(list(fields.values()), record, str(source))
    total = count_records(source) if count_first else None
    result = NormalizeResult(reasons={}, rejects=rejects_path(output))
    output.parent.mkdir(parents=True, exist_ok=True)  # as every hrm data tool does for its output
    with staged_file(output) as temporary, staged_file(result.rejects) as temporary_rejects:
        with open_compressed_as(output, temporary) as out, open(temporary_rejects, "wb") as rejected:
            for records in iter_record_batches(source, batch_size):  # whole records: rejects keep them entire
                for record in records:
                    result.records += 1
                    try:
                        values = {name: path.text_of(record) for name, path in fields.items()}
                    except FieldMissing as missing:
                        result.rejected += 1
                        result.reasons[missing.reason] = result.reasons.get(missing.reason, 0) + 1
                        rejected.write(json_line({"index": result.records - 1, "reason": missing.reason, "record": record}))
                        continue
                    prompt = template.format(question=values["question"], context=values.get("context", ""))
                    out.write(json_line({"prompt": prompt, "response": values["response"]}))
                    result.written += 1
                if progress:
                    progress("normalize-qa: records", result.records, total)
    result.seconds = time.perf_counter() - started
    return result
