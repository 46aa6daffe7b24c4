"""What every page-data builder shares: the error it raises and the compact encodings it embeds.

Pages carry their data inline (they must open from disk, with no server), so grids travel as
short strings: one base-36 character per token, which every puzzle vocabulary here fits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

TOKEN_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
Q_DECIMALS = 3


class ViewerError(ValueError):
    """A page cannot be made from what was given; the message is one line meant for the user."""


def tokens_text(tokens: Any) -> str:
    """A row of tokens (< 36 each) as one string, a base-36 digit per token (the page's ``parseInt(c, 36)``)."""
    values = np.asarray(tokens).reshape(-1).astype(np.int64)
    if values.size and (values.min() < 0 or values.max() >= len(TOKEN_DIGITS)):
        raise ViewerError(f"token {int(values.max())} is outside 0..{len(TOKEN_DIGITS) - 1}; the viewer cannot draw it")
    return "".join(TOKEN_DIGITS[value] for value in values.tolist())


def grid_record(grid: np.ndarray) -> dict[str, Any]:
    """A small 2-D grid of colours or digits as ``{"h", "w", "c"}`` (``c``: row-major tokens_text)."""
    grid = np.asarray(grid)
    height, width = grid.shape if grid.ndim == 2 else (0, 0)
    return {"h": int(height), "w": int(width), "c": tokens_text(grid)}


def rounded(values: Any) -> list[float]:
    return [round(float(value), Q_DECIMALS) for value in np.asarray(values).reshape(-1)]


def first_rows(total: int, n: int) -> np.ndarray:
    """Rows 0..n-1 of a split holding ``total``; an empty split is an error, not an empty page."""
    if total == 0:
        raise ViewerError("the split holds no examples")
    return np.arange(min(n, total))
