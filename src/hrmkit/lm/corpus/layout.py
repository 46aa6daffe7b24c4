"""Which files of a source folder hold data, and which split each belongs to.

A file belongs to a split when its name, or failing that the nearest folder above it, has a
word that names one: train / training, validation / valid / val / dev, test / testing
(words are separated by `-`, `_`, `.`). That covers the usual layouts::

    my_corpus/train.jsonl.gz, my_corpus/validation.jsonl.gz
    save_to_disk folder:      train/data-00000-of-00002.arrow, test/data-00000-of-00001.arrow
    datasets cache:           <hash>/squad-train.arrow, <hash>/squad-validation.arrow
    hub cache:                datasets--org--name/snapshots/<rev>/data/train-00000-of-00004.parquet

In a hub cache (a folder with `snapshots/` and `refs/`) only the snapshot `refs/main` names
is read (else the newest), so older revisions are not read twice. Metadata files the caches
keep beside the data (dataset_info.json, state.json, ...), `cache-*.arrow` files of
`datasets.map`, hidden files and unfinished downloads are skipped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hrmkit.files import DatasetError
from hrmkit.lm.corpus.sources import file_format

SPLIT_WORDS = {
    "train": "train",
    "training": "train",
    "validation": "val",
    "valid": "val",
    "val": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}
SPLIT_ORDER = ("train", "val", "test")
METADATA_FILES = frozenset(
    {
        "dataset_info.json",
        "dataset_infos.json",
        "dataset_dict.json",
        "state.json",
        "meta.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "config.json",
    }
)
_WORD_BREAK = re.compile(r"[-_.\s]+")


@dataclass
class SourceLayout:
    """The data files of a source, by split; `unsplit` files name no split."""

    root: Path
    splits: dict[str, list[Path]] = field(default_factory=dict)
    unsplit: list[Path] = field(default_factory=list)

    def all_files(self) -> list[Path]:
        return [path for files in self.splits.values() for path in files] + self.unsplit


def split_of(path: Path, root: Path) -> str | None:
    """The split `path`'s own name names, else its nearest folder's (below `root`), else None."""
    parts = path.relative_to(root).parts if path != root else (path.name,)
    for part in reversed(parts):
        for word in _WORD_BREAK.split(part.lower()):
            if word in SPLIT_WORDS:
                return SPLIT_WORDS[word]
    return None


def _is_data_file(path: Path) -> bool:
    name = path.name
    if name.startswith(".") or name.lower() in METADATA_FILES or name.startswith("cache-"):
        return False
    return file_format(path) is not None


def _hub_snapshot(repo: Path) -> Path | None:
    """The snapshot folder a hub-cache repository folder serves, or None if it is not one."""
    snapshots = repo / "snapshots"
    if not (snapshots.is_dir() and (repo / "refs").is_dir()):
        return None
    main = repo / "refs" / "main"
    if main.is_file():
        revision = main.read_text(encoding="utf-8").strip()
        if (snapshots / revision).is_dir():
            return snapshots / revision
    candidates = [path for path in snapshots.iterdir() if path.is_dir()]
    return max(candidates, key=lambda path: path.stat().st_mtime) if candidates else None


def _walk_data_files(folder: Path) -> Iterator[Path]:
    snapshot = _hub_snapshot(folder)
    if snapshot is not None:
        yield from _walk_data_files(snapshot)
        return
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError as error:
        raise DatasetError(folder, f"cannot list ({error.strerror or error})") from None
    for entry in entries:
        path = Path(entry.path)
        if entry.name.startswith(".") or entry.name in ("blobs", "refs"):
            continue
        if entry.is_dir():  # follows symbolic links, as hub snapshots are made of them
            yield from _walk_data_files(path)
        elif entry.is_file() and _is_data_file(path):
            yield path


def _natural_key(path: Path) -> list:
    """Sort shard-00010 after shard-00009 and shard-2 before shard-10."""
    return [int(piece) if piece.isdigit() else piece for piece in re.split(r"(\d+)", str(path))]


def discover(source: str | os.PathLike, max_files_per_split: int | None = None) -> SourceLayout:
    """Find the data files of a folder (or take a single file) and sort them by split.

    A mix of files that name a split and files that do not is refused: which split the
    latter belong to would be a guess.
    """
    root = Path(source)
    if not root.exists():
        raise DatasetError(root, "source not found")
    if root.is_file():
        if file_format(root) is None:
            raise DatasetError(root, "unknown file type: expected .jsonl / .json (optionally .gz / .zst), .parquet or .arrow")
        return SourceLayout(root=root, unsplit=[root])
    layout = SourceLayout(root=root)
    named: dict[str, list[Path]] = {}
    for path in _walk_data_files(root):
        split = split_of(path, root)
        if split is None:
            layout.unsplit.append(path)
        else:
            named.setdefault(split, []).append(path)
    if not named and not layout.unsplit:
        raise DatasetError(root, "no data files found (.jsonl, .ndjson, .json, optionally .gz / .zst; .parquet; .arrow)")
    if named and layout.unsplit:
        example_named = next(iter(named.values()))[0].relative_to(root)
        raise DatasetError(
            root,
            f"{sum(map(len, named.values()))} file(s) name a split (e.g. {example_named}) but "
            f"{len(layout.unsplit)} do not (e.g. {layout.unsplit[0].relative_to(root)}); "
            "put them under train/, validation/ or test/ folders, or point --source at one kind",
        )
    limit = max_files_per_split if max_files_per_split and max_files_per_split > 0 else None
    layout.unsplit = sorted(layout.unsplit, key=_natural_key)[:limit]
    layout.splits = {
        split: sorted(named[split], key=_natural_key)[:limit] for split in SPLIT_ORDER if split in named
    }
    return layout
