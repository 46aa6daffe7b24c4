"""The puzzle family: fixed-length grid tasks (Sudoku, mazes, ARC-AGI, city routing).

    format.py            the reference on-disk format: read, write, validate
    batches.py           batches from a split: the reference's training sampler, evaluation batches
    sudoku.py, maze.py, routing.py, arc.py
                         each kind itself: its tokens and rules (Sudoku solver, shortest paths, the
                         routing oracle, ARC variant names), all that checks, evaluation and views need
    sudoku_dataset.py, maze_dataset.py, routing_dataset.py, arc_dataset.py, arc_tasks.py
                         the builders (`hrm prepare`); build.py, selection.py, grid.py: what they share
    kind.py              which family a dataset holds: one answer for the checker, eval, train and views
    check.py, check_paths.py, check_arc.py, check_base.py
                         `hrm data check`; path scores for `hrm eval`
    task.py              the puzzle Task the trainer runs (batches, ACT segment loss, evaluation)
    evaluate.py          exact accuracy over every ACT segment; arc_vote.py: ARC voting and submissions
    symmetries.py, guesses.py, vote.py
                         test-time guesses (`hrm eval --tta`): each family's symmetries, asking the model
                         on transformed copies, and the vote over their answers (vote.py: ARC votes with it too)
    views/               the viewer's puzzle pages (segment traces, Sudoku, paths, ARC, routing explorer)

Dependency rule: this package imports `hrmkit.model`, `hrmkit.train`, `hrmkit.viz` (page
machinery) and the shared modules (`config`, `config_base`, `files`, `progress`), never another
family (`hrmkit.lm`, `hrmkit.code`). tests/test_layout.py checks it.
"""
