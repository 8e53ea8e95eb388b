"""Calling a user's game on a plan's masks, with errors that name the call at fault."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

Game = Callable[[np.ndarray], Any]


class GameError(ValueError):
    """The game raised, or returned something other than one finite float per mask.

    The message names the call (``call 2 of 4, rows 1000..2000``), the masks' shape and what was
    wrong; no partial result is kept. A game that raised is chained as ``__cause__``.
    """


def _name(game: Game) -> str:
    name = getattr(game, "__qualname__", None) or getattr(game, "__name__", None)
    return name if isinstance(name, str) else type(game).__name__


def call_game(game: Game, masks: np.ndarray, batch_size: int | None = None) -> np.ndarray:
    """Evaluates ``game`` on every row of ``masks`` (bool ``[m, n]``), in batches of
    ``batch_size`` rows (all at once when ``None``); returns ``[m]`` float64 values.

    Raises :class:`GameError` naming the call when the game raises, returns another shape or a
    non-finite value.
    """
    if not callable(game):
        raise TypeError(f"game must be callable (masks [m, n] -> values [m]), got {type(game).__name__}")
    m = masks.shape[0]
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size: must be a positive integer or None, got {batch_size!r}")
    step = m if batch_size is None else batch_size
    starts = list(range(0, m, max(step, 1))) or [0]
    out = np.empty(m, dtype=np.float64)
    name = _name(game)
    for k, start in enumerate(starts):
        stop = min(start + step, m)
        batch = masks[start:stop]
        where = f"{name}(masks) on call {k + 1} of {len(starts)} (rows {start}..{stop}, masks of shape {tuple(batch.shape)})"
        try:
            raw = game(batch)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - re-raised with the call named
            raise GameError(f"{where} raised {type(exc).__name__}: {exc}") from exc
        try:
            values = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise GameError(
                f"{where} returned {type(raw).__name__}, which is not an array of floats: {exc}"
            ) from exc
        if values.shape != (stop - start,):
            raise GameError(
                f"{where} returned shape {tuple(values.shape)}; expected ({stop - start},): one float per mask"
            )
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            rows = ", ".join(str(start + int(r)) for r in bad[:8])
            more = f" and {bad.size - 8} more" if bad.size > 8 else ""
            raise GameError(
                f"{where} returned {bad.size} non-finite value(s) (NaN or infinite) at row(s) {rows}{more}"
            )
        out[start:stop] = values
    return out
