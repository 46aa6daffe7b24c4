"""`hrm data prepare-language`: a folder of text data -> a processed corpus for the HRM-LM.

The source's own train / validation / test splits are kept verbatim when it has any besides
train (see layout.py); otherwise val and test are carved from the training records by ratio
(see corpus_builder.py). How records become examples is triples.py's business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hrmkit.lm.corpus import Progress
from hrmkit.lm.corpus.corpus_builder import (
    DEFAULT_TEST_RATIO,
    DEFAULT_VAL_RATIO,
    BuildResult,
    RatioSplitter,
    SplitSource,
    TokenizerChoice,
    build_corpus,
    check_ratios,
)
from hrmkit.lm.corpus.layout import SourceLayout, discover
from hrmkit.lm.corpus.triples import TriplesConfig


@dataclass
class PrepareLanguageOptions:
    source: Path
    dest: Path
    triples: TriplesConfig = field(default_factory=TriplesConfig)
    tokenizer: TokenizerChoice = field(default_factory=TokenizerChoice)
    val_ratio: float = DEFAULT_VAL_RATIO  # only for a source without splits of its own
    test_ratio: float = DEFAULT_TEST_RATIO
    seed: int = 0  # of the val / test carving and of the tokenizer sample
    max_files: int | None = None  # per split, in natural sort order
    batch_size: int = 1000  # records per tokenizer batch
    count_records: bool = False
    overwrite: bool = False


def plan_splits(layout: SourceLayout, val_ratio: float, test_ratio: float) -> tuple[dict[str, SplitSource], bool]:
    """Output split -> where its records come from; and whether splits are carved by ratio."""
    named = layout.splits
    if any(split != "train" for split in named):
        if "train" not in named:
            raise ValueError(
                f"{layout.root}: the source has {', '.join(named)} split(s) but no train split"
            )
        _refuse_ratios(layout, val_ratio, test_ratio)
        return {split: SplitSource(files) for split, files in named.items()}, False
    check_ratios(val_ratio, test_ratio)
    files = named.get("train", layout.unsplit)
    carved = val_ratio > 0 or test_ratio > 0
    plan = {"train": SplitSource(files, carved=carved)}
    if val_ratio > 0:
        plan["val"] = SplitSource(files, carved=True)
    if test_ratio > 0:
        plan["test"] = SplitSource(files, carved=True)
    return plan, carved


def _refuse_ratios(layout: SourceLayout, val_ratio: float, test_ratio: float) -> None:
    """Ratios carve splits out of a source without any; a source's own splits are kept verbatim, so a
    ratio asked for there would be silently ignored (no test split carved from train, say)."""
    given = [f"--{name}-ratio {ratio:g}" for name, ratio, default in
             (("val", val_ratio, DEFAULT_VAL_RATIO), ("test", test_ratio, DEFAULT_TEST_RATIO)) if ratio != default]
    if given:
        raise ValueError(
            f"{layout.root}: {' and '.join(given)} cannot apply: the source has splits of its own "
            f"({', '.join(layout.splits)}), which are kept verbatim; drop the ratio flag(s)"
        )


def _relative_names(files: list[Path], root: Path) -> list[str]:
    return [str(path.relative_to(root)) if root.is_dir() else path.name for path in files]


def prepare_language(options: PrepareLanguageOptions, progress: Progress | None = None) -> BuildResult:
    layout = discover(options.source, options.max_files)
    plan, carved = plan_splits(layout, options.val_ratio, options.test_ratio)
    source_info = {
        "builder": "prepare-language",
        "path": str(options.source),
        "splits_from": "ratios" if carved else "source",
        "files": {split: _relative_names(source.files, layout.root) for split, source in plan.items()},
    }
    splitter = RatioSplitter(options.val_ratio, options.test_ratio, options.seed) if carved else None
    return build_corpus(
        plan,
        options.dest,
        options.triples,
        options.tokenizer,
        splitter=splitter,
        seed=options.seed,
        batch_size=options.batch_size,
        count_records_first=options.count_records,
        overwrite=options.overwrite,
        source_info=source_info,
        progress=progress,
    )
