"""``hrm viz``: self-contained HTML pages that show what a trained model does, segment by segment.

Three pages:

- a **run page** (``write_run_page``): per example the input, the target, and the model's
  prediction after every ACT segment with q_halt / q_continue and the segment where it would
  halt; a slider steps through the segments and a filter shows solved or unsolved examples;
- a **code-evaluation page** (``write_code_eval_page``; ``write_run_page`` hands a ``.jsonl`` to
  it): the per-sample results of ``hrm eval code``, one card per task with samples passed / n, the
  prompt, and each sample's sandbox verdict, seconds, completion and the code that ran; the header
  has pass@k from the summary file beside the results; the filter shows solved (at least one
  sample passed) or unsolved tasks; no slider;
- a **routing explorer** (``write_dataset_page``): a city-routing dataset alone, no model: pick a
  base scenario, switch the vehicle, see its legal roads, jams, closures and optimal route.

Extending: a page is its data (a dict with ``page``, ``kind``, ``title``, ``meta``, ``examples``)
plus template scripts, put together by ``page.render_page``. On a run page ``viewer.js`` owns the
cards, the solved/unsolved filter, the segment slider (only when the data has ``segments``) and
the self-test; a kind adds one script registering ``VIZ.kinds[kind]``, which draws a card (and may
add its own self-test checks). Puzzle families are listed in ``RUN_VIEWS``, their page data made
from a dataset split and a model tracer; the code kind's page data comes from a results file
(``code_view.code_eval_page``) and its card script is ``code.js`` (``CODE_VIEW_SCRIPTS``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hrmkit.code.view import code_eval_page
from hrmkit.puzzles.format import PuzzleSplit, load_split, model_misfit
from hrmkit.puzzles.symmetries import KINDS as SYMMETRY_KINDS
from hrmkit.puzzles.views.arc import arc_page
from hrmkit.puzzles.views.candidates import candidate_fields
from hrmkit.puzzles.kind import KINDS, puzzle_kind
from hrmkit.puzzles.views.paths import maze_page, routing_page
from hrmkit.puzzles.views.routing_explorer import routing_explorer_page
from hrmkit.puzzles.views.sudoku import sudoku_page
from hrmkit.puzzles.views.trace import Tracer, model_tracer, read_rows
from hrmkit.viz.page import render_page, write_page
from hrmkit.viz.page_data import ViewerError, first_rows

DEFAULT_EXAMPLES = 50


@dataclass(frozen=True)
class RunView:
    """How one kind of run is shown: its page data, and the template script that draws a card."""

    page_data: Callable[[PuzzleSplit, Tracer, int], dict[str, Any]]
    scripts: tuple[str, ...]


RUN_VIEWS: dict[str, RunView] = {
    "sudoku": RunView(sudoku_page, ("sudoku.js",)),
    "maze": RunView(maze_page, ("paths.js",)),
    "routing": RunView(routing_page, ("paths.js",)),
    "arc": RunView(arc_page, ("arc.js",)),
}
CODE_VIEW_SCRIPTS = ("code.js",)
RUN_PAGE_SCRIPT = "viewer.js"  # after the kind's scripts: it builds the cards with their renderer
CODE_RESULTS_SUFFIX = ".jsonl"  # what `hrm eval code` writes; a run is a folder or a .pt file
EXPLORER_SCRIPTS = ("paths.js", "explorer.js")


def resolve_checkpoint(run: str | Path) -> Path:
    from hrmkit.loading import resolve_run_checkpoint
    try:
        return resolve_run_checkpoint(run)
    except FileNotFoundError as error:
        raise ViewerError(str(error)) from None

def _check_count(n: int) -> None:
    if n < 1:
        raise ViewerError(f"--n must be at least 1, got {n}")


def _load_puzzle_split(dataset: str | Path, split: str) -> tuple[PuzzleSplit, str]:
    loaded = load_split(dataset, split)
    kind = puzzle_kind(dataset, loaded)
    if kind is None:
        raise ViewerError(f"{dataset}: not a dataset the viewer can draw (it draws {', '.join(KINDS)})")
    return loaded, kind


def _run_meta(run: Path, checkpoint: Path, dataset: str, model, solved_means: str) -> list[list[str]]:
    config = model.config
    halting_rival = "0" if config.halts_on_q_halt_alone else "q_continue"
    return [["run", str(run)], ["checkpoint", str(checkpoint)], ["dataset", dataset],
            ["model", f"{config.variant.upper()}, hidden {config.hidden_size}, {config.halt_max_steps} ACT segments"],
            ["solved", solved_means], ["halts", f"at the first segment with q_halt > {halting_rival}, else the last"]]


def _load_run(run: Path, dataset: str | Path | None, device: str):
    """(model, checkpoint path, dataset, torch device, precision, autocast factory) of a run folder or
    checkpoint file; the precision is the run's own, so the page shows the answers its evaluations scored."""
    from hrmkit.loading import load_checkpoint
    from hrmkit.train.distributed import pick_device
    from hrmkit.train.speed_settings import evaluation_precision

    checkpoint = resolve_checkpoint(run)
    torch_device = pick_device(device)
    model, config = load_checkpoint(checkpoint, dataset=dataset, device=torch_device)
    precision, autocast = evaluation_precision(config.train.precision, torch_device)  # as hrm eval scores
    if config.task != "puzzle":
        raise ViewerError(f"{checkpoint} is a {config.task} model; hrm viz draws puzzle runs (Sudoku, mazes, routing, ARC) "
                          "and the results .jsonl of `hrm eval code`")
    dataset = dataset or config.data.path
    if not dataset:
        raise ViewerError(f"{checkpoint}: the checkpoint names no dataset; pass --dataset DIR")
    return model, checkpoint, dataset, torch_device, precision, autocast


def write_run_page(run: str | Path, dataset: str | Path | None = None, out: str | Path | None = None,
                   n: int = DEFAULT_EXAMPLES, split: str = "test", device: str = "auto", batch_size: int = 64,
                   tta: int = 1) -> Path:
    """Trace a run's model over ``n`` examples of ``dataset`` (default: the run's own) and write its page.
    With ``tta`` > 1 (Sudoku, mazes, routing) each card also shows the candidates of ``tta`` symmetric
    guesses and the vote among them, as ``hrm eval --tta`` makes them.

    ``run`` is a run folder or a checkpoint file; the page goes to ``out`` (default: ``viz.html``
    in the run folder, or beside the checkpoint file). Returns the page's path. A ``.jsonl`` run
    is the results of ``hrm eval code``: see :func:`write_code_eval_page` (``dataset`` is then the
    task file the prompts are read from).
    """
    if is_code_eval_results(run):
        return write_code_eval_page(run, out=out, n=n, task_file=dataset)
    _check_count(n)
    if tta < 1:
        raise ViewerError(f"--tta must be at least 1, got {tta}")
    if batch_size < 1:
        raise ViewerError(f"--batch-size must be at least 1, got {batch_size}")
    run = Path(run)
    model, checkpoint, dataset, torch_device, precision, autocast = _load_run(run, dataset, device)
    loaded, kind = _load_puzzle_split(dataset, split)
    meta = loaded.metadata
    if problem := model_misfit(model.config, meta):
        raise ViewerError(f"{checkpoint} {problem}")
    if tta > 1 and kind not in SYMMETRY_KINDS:  # before tracing: an ARC page traces every variant of its tasks
        raise ViewerError(f"--tta draws {', '.join(SYMMETRY_KINDS)} runs; the {kind} page shows its own votes")
    view = RUN_VIEWS[kind]
    tracer = model_tracer(model, torch_device, batch_size, autocast)
    data = view.page_data(loaded, tracer, n)
    if tta > 1:
        rows = read_rows(loaded, first_rows(loaded.num_examples(), n))
        fields = candidate_fields(rows, tracer, kind, meta.seq_len, meta.vocab_size, tta, meta.ignore_label_id)
        for example, extra in zip(data["examples"], fields):
            example.update(extra)
    run_name = run.name if run.is_dir() else run.parent.name
    data.update({
        "page": "run",
        "kind": kind,
        "title": f"{run_name} · {kind} · {len(data['examples'])} examples",
        "meta": [*_run_meta(run, checkpoint, f"{dataset} ({split})", model, data["solved_means"]), ["precision", precision]],
        "segments": model.config.halt_max_steps,
    })
    target = Path(out) if out else (run if run.is_dir() else run.parent) / "viz.html"
    return write_page(target, render_page(f"hrm viz: {data['title']}", [*view.scripts, RUN_PAGE_SCRIPT], data))


def is_code_eval_results(path: str | Path) -> bool:
    return Path(path).suffix == CODE_RESULTS_SUFFIX


def write_code_eval_page(results: str | Path, out: str | Path | None = None, n: int = DEFAULT_EXAMPLES,
                         task_file: str | Path | None = None) -> Path:
    """The page of the first ``n`` tasks of an ``hrm eval code`` results JSONL; returns its path.

    Prompts come from ``task_file`` (default: the task file the summary names, when it still
    exists). The page goes to ``out`` (default: beside the results, ``<results stem>.html``).
    """
    _check_count(n)
    results = Path(results)
    data = code_eval_page(results, n, task_file)
    data["page"] = "run"
    target = Path(out) if out else results.with_suffix(".html")
    return write_page(target, render_page(f"hrm viz: {data['title']}", [*CODE_VIEW_SCRIPTS, RUN_PAGE_SCRIPT], data))


def write_dataset_page(dataset: str | Path, out: str | Path | None = None, n: int = DEFAULT_EXAMPLES,
                       split: str = "test") -> Path:
    """The routing explorer for a city-routing dataset (no model needed); returns the page's path.

    The page goes to ``out`` (default: ``<dataset name>-viz.html`` in the current folder, never
    into the dataset, which may be shared or read-only).
    """
    _check_count(n)
    loaded, kind = _load_puzzle_split(dataset, split)
    if kind != "routing":
        raise ViewerError(f"{dataset} holds {kind} puzzles; without a run, hrm viz explores routing datasets only "
                          "(give a run folder to see a model's predictions)")
    data = routing_explorer_page(loaded, n)
    data.update({
        "page": "routing-explorer",
        "title": f"{Path(dataset).resolve().name} · {len(data['scenarios'])} base scenarios",
        "meta": [["dataset", f"{dataset} ({split})"], ["map", f"{data['size']}×{data['size']}"],
                 ["vehicles", ", ".join(data["vehicles"])]],
    })
    target = Path(out) if out else Path(f"{Path(dataset).resolve().name}-viz.html")
    return write_page(target, render_page(f"hrm viz: {data['title']}", list(EXPLORER_SCRIPTS), data))
