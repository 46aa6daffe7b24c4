"""Print the table of a `benchmarks/gpu_suite.sh` run from its rows folder (one JSON per row).

    python benchmarks/gpu_table.py /tmp/gpu_suite/rows

hrmkit rows are `hrm bench train --json` documents (NAME.json, stderr in NAME.err with
TORCH_LOGS=recompiles,graph_breaks); reference rows (ref.*.json) are the refbench harness's documents.
"""

import json
import sys
from pathlib import Path


def hrmkit_row(path: Path) -> list[str]:
    doc = json.loads(path.read_text())
    err = path.with_suffix(".err")
    log = err.read_text() if err.exists() else ""
    states = doc["precision"] if doc.get("state_dtype") == "autocast" and doc["precision"] != "fp32" else "fp32"
    return [path.stem, "hrmkit", doc["precision"], states, "compiled" if doc["compile"] is True else "eager",
            f"{doc['ms_per_step']:.1f}", f"{doc['peak_memory_gib']:.2f}", str(log.count("Recompiling function")),
            str(log.lower().count("graph break")), doc["device_name"]]


def reference_row(path: Path) -> list[str]:
    doc = json.loads(path.read_text())
    ref = doc.get("results", {}).get("ref", {})
    median = ref.get("median_ms")
    meta = doc.get("meta", {})
    precision = meta.get("precision", "?") if isinstance(meta, dict) else "?"
    return [path.stem, "reference", precision, precision,  # the reference's states are in its forward dtype
            "compiled" if meta.get("compile") else "eager", f"{median:.1f}" if median else ref.get("status", "failed"),
            f"{ref['peak_mem_gib']:.2f}" if "peak_mem_gib" in ref else "", "", "", meta.get("device_name", "")]


def main() -> None:
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        raise SystemExit(f"usage: python benchmarks/gpu_table.py ROWS_DIR (a gpu_suite.sh run's rows folder); got {sys.argv[1:]}")
    rows_dir = Path(sys.argv[1])
    header = ["row", "code", "precision", "states", "mode", "ms per step", "peak GiB", "recompiles", "graph breaks", "device"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for path in sorted(rows_dir.glob("*.json")):
        try:
            cells = reference_row(path) if path.stem.startswith("ref.") else hrmkit_row(path)
        except (KeyError, ValueError) as error:
            cells = [path.stem, "unreadable", repr(error)] + [""] * 7
        print("| " + " | ".join(cells) + " |")
    missing = sorted(p.stem for p in rows_dir.glob("*.err") if not p.with_suffix(".json").exists())
    if missing:
        print("rows that wrote no figures (see their .err): " + ", ".join(missing))


if __name__ == "__main__":
    main()
