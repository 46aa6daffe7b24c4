"""The puzzle family: fixed-length grid tasks (Sudoku, mazes, ARC-AGI, city routing).

    format.py            the reference on-disk format: read, write, validate, the training sampler
    sudoku.py, maze.py, arc.py, routing.py, grid.py, selection.py    dataset builders
    check.py, check_arc.py, check_base.py                           `hrm data check`
    task.py              the puzzle Task the trainer runs (batches, ACT segment loss, evaluation)
    evaluate.py          exact accuracy over every ACT segment; arc_vote.py: ARC voting and submissions
    views/               the viewer's puzzle pages (segment traces, Sudoku, paths, ARC, routing explorer)

Dependency rule: this package imports `hrmkit.model`, `hrmkit.train`, `hrmkit.viz` (page
machinery) and the shared modules (`config`, `config_base`, `files`, `progress`), never another
family (`hrmkit.lm`, `hrmkit.code`). tests/test_layout.py checks it.
"""
