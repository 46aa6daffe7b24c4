"""``hrm data``: ``check`` (a puzzle dataset) and the language-data tools (language.py)."""

from __future__ import annotations


def add_parsers(verbs) -> None:
    data = verbs.add_parser("data", help="dataset tools")
    data_tools = data.add_subparsers(dest="tool", required=True)
    check = data_tools.add_parser("check", help="check a reference-format dataset (ours or the reference's); exit 1 on any fault",
                                  description="Structure and metadata, token ranges, index monotonicity, train/test input "
                                              "overlap, puzzles per group, label distribution, and each family's "
                                              "labels: Sudoku validity, maze and routing path validity and "
                                              "optimality, ARC's layout and test puzzles.")
    check.add_argument("dir", help="dataset folder")
    check.add_argument("--json", default=None, help="also write the report as JSON here")
    from hrmkit.cli.language import add_language_tools
    add_language_tools(data_tools)


def run(args, extra) -> int:
    if args.tool != "check":
        from hrmkit.cli.language import run_language_tool
        return run_language_tool(args)
    from hrmkit.files import refuse_folder
    from hrmkit.puzzles.check import main_check
    refuse_folder(args.json)  # before the check, not after it
    return main_check(args.dir, args.json)

