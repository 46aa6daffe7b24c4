"""``hrm viz`` (the HTML viewer, ``hrmkit.viewer``) and ``hrm report`` (learning curves, ``hrmkit.viz.report``).

Bad input ends with one line on stderr and exit code 2, like every other verb.
"""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Write one self-contained HTML page (open it from disk: no server, no network).

With a run: per example the input, the target and the model's prediction after every ACT
segment, with q_halt / q_continue and the segment where it would halt; a slider steps through
the segments, a filter shows solved or unsolved examples. Sudoku, mazes, city routing and ARC
(where an example is one test pair, voted across all its augmented variants).

With the results .jsonl of `hrm eval code`: per task the samples passed / n and the prompt, and
per sample the sandbox verdict (passed, failed, timeout, error, killed, output-limit), seconds,
the completion and the code that ran; pass@k from the summary file beside the results in the
header; a filter shows solved (at least one sample passed) or unsolved tasks.

With a city-routing --dataset and no run: pick a base scenario and switch the vehicle to see
its legal roads, jams, closures and optimal route."""


def add_parsers(verbs) -> None:
    """Add the ``viz`` and ``report`` verbs to the ``hrm`` sub-parsers ``verbs``."""
    viz = verbs.add_parser("viz", help="an HTML page showing a run's predictions segment by segment, "
                                       "code-evaluation results, or a routing dataset",
                           description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    viz.add_argument("run", nargs="?", default=None,
                     help="run folder (runs/<name>: its best model, else final/), a weights folder, a checkpoint file, "
                          "or the results .jsonl of `hrm eval code`")
    viz.add_argument("--dataset", default=None,
                     help="dataset folder (default: the run's data.path); alone, a routing dataset to explore; "
                          "with code results, the task file to read prompts from (default: the one the summary names)")
    viz.add_argument("--n", type=int, default=50,
                     help="examples to show (ARC: test pairs; routing explorer: base scenarios; code results: tasks)")
    viz.add_argument("--out", default=None,
                     help="the page (default: viz.html in the run folder; <results stem>.html beside code results; "
                          "<dataset>-viz.html here without a run)")
    viz.add_argument("--split", default="test", help="dataset split to draw from (runs)")
    viz.add_argument("--device", default="auto", help="where the model runs: auto, cpu, cuda, mps")
    viz.add_argument("--batch-size", type=int, default=64, help="examples per forward pass")
    viz.add_argument("--tta", type=int, default=1, metavar="K",
                     help="Sudoku, maze, routing runs: also show each example's candidates from K symmetric guesses "
                          "and the vote, as hrm eval --tta K")
    viz.add_argument("--screenshot", default=None, metavar="PNG",
                     help="also save a PNG of the page as headless Chromium draws it (needs chromium)")

    report = verbs.add_parser("report", help="learning-curve plots and a summary of one run, or an overlay of several")
    report.add_argument("runs", nargs="+", help="run folders (runs/<name>)")
    report.add_argument("--out", default=None, help="output folder (required for several runs; default: the run folder)")


def run(args, extra) -> int:
    return run_viz(args) if args.verb == "viz" else _run_report(args)


def _run_report(args) -> int:
    from pathlib import Path

    from hrmkit.viz.report import write_report
    report = write_report([Path(run) for run in args.runs], Path(args.out) if args.out else None)
    print(f"wrote {report} and its plots")
    return 0


def run_viz(args) -> int:
    """Write the page (and the screenshot when asked)."""
    from hrmkit.files import refuse_folder
    from hrmkit.viewer import write_dataset_page, write_run_page
    refuse_folder(args.out)  # before the model runs, not after
    refuse_folder(args.screenshot)
    if args.run is None and args.dataset is None:
        raise ValueError("give a run folder, the results .jsonl of `hrm eval code`, "
                         "or --dataset DIR to explore a routing dataset")
    if args.run is None:
        page = write_dataset_page(args.dataset, out=args.out, n=args.n, split=args.split)
    else:
        page = write_run_page(args.run, dataset=args.dataset, out=args.out, n=args.n, split=args.split,
                              device=args.device, batch_size=args.batch_size, tta=args.tta)
    print(f"wrote {page}  (open it in a browser; it needs no server)")
    if args.screenshot:
        from hrmkit.viz.headless import screenshot
        print(f"wrote {screenshot(page, args.screenshot)}")
    return 0
