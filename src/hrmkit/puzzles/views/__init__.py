"""The viewer's puzzle pages: what `hrm viz` shows for Sudoku, maze, routing and ARC runs."""
