"""Pull chosen fields out of every record of a file into a slim JSON Lines file.

Each output line is an object whose keys are the field paths as given (`data.question`),
holding the values found there. A record missing any of the fields is not dropped
silently: it goes, with the reason, to a rejects file, and the counts are returned.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hrmkit.files import staged_file
from hrmkit.lm.corpus import Progress
from hrmkit.lm.corpus.field_paths import FieldMissing, FieldPath, check_schema
from hrmkit.lm.corpus.sources import count_records, first_record, iter_record_batches


@dataclass
class ExtractResult:
    records: int = 0
    written: int = 0
    rejected: int = 0
    first_reject: str | None = None
    seconds: float = 0.0


def json_line(value: Any) -> bytes:
    """One compact JSON line; values JSON has no type for (dates, bytes from parquet) as strings."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8") + b"\n"


def extract_fields(
    source: str | Path,
    fields: Sequence[str],
    output: str | Path,
    rejects: str | Path,
    batch_size: int = 1000,
    count_first: bool = False,
    progress: Progress | None = None,
) -> ExtractResult:
    """Write `output` (and `rejects`) atomically; see the module docstring."""
    started = time.perf_counter()
    source = Path(source)
    paths = [FieldPath.parse(text) for text in fields]
    if not paths:
        raise ValueError("name at least one field to extract")
    record = first_record([source])
    if record is not None:
        check_schema(paths, record, str(source), need_text=False)
    total = count_records(source) if count_first else None
    result = ExtractResult()
    with staged_file(output) as temporary, staged_file(rejects) as temporary_rejects:
        with open(temporary, "wb") as out, open(temporary_rejects, "wb") as rejected:
            for records in iter_record_batches(source, batch_size):  # whole records: rejects keep them entire
                for record in records:
                    result.records += 1
                    try:
                        values = {path.text: path.lookup(record) for path in paths}
                    except FieldMissing as missing:
                        result.rejected += 1
                        index = result.records - 1  # 0-based, in the message as in the rejects file
                        result.first_reject = result.first_reject or f"index {index}: {missing.reason}"
                        rejected.write(json_line({"index": index, "reason": missing.reason, "record": record}))
                        continue
                    out.write(json_line(values))
                    result.written += 1
                if progress:
                    progress("extract: records", result.records, total)
    result.seconds = time.perf_counter() - started
    return result
