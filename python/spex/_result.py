"""Decoded results: interaction values (dict, records, shapiq) and the Fourier spectrum."""

from __future__ import annotations

import os
from typing import Any, Iterable

import numpy as np

from . import _spex


def as_masks(masks: Any, n: int | None = None, name: str = "masks") -> np.ndarray:
    """``masks`` (bool, 0/1 integers, one mask or ``[m, n]``) as a C-contiguous uint8 ``[m, n]``."""
    arr = np.asarray(masks)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a [m, n] array of 0/1, got shape {arr.shape}")
    if n is not None and arr.shape[1] != n:
        raise ValueError(f"{name}: {arr.shape[1]} columns, but there are n = {n} players")
    if arr.dtype == np.bool_:
        return np.ascontiguousarray(arr).view(np.uint8)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name}: expected bool or 0/1 numbers, got dtype {arr.dtype}")
    if arr.size and not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name}: entries must be 0 or 1 (or bool)")
    return np.ascontiguousarray(arr, dtype=np.uint8)


class Spectrum:
    """A sparse function ``{0,1}^n -> R``: ``f(x) = sum_S F(S) (-1)^{|S ∩ x|}`` (Fourier basis;
    ``x`` = kept players) or ``f(x) = sum_S a(S) prod_{i in S} x_i`` (Moebius basis)."""

    def __init__(self, inner: "_spex.Spectrum"):
        self._inner = inner

    @classmethod
    def from_terms(cls, n: int, terms: dict[tuple[int, ...], float], basis: str = "fourier") -> "Spectrum":
        """A spectrum over ``n`` players from ``{players: coefficient}``."""
        return cls(_spex.Spectrum.from_terms(n, basis, [(list(k), float(v)) for k, v in terms.items()]))

    @property
    def n_players(self) -> int:
        """Number of players n."""
        return self._inner.n_players

    @property
    def basis(self) -> str:
        """``fourier`` or ``moebius``."""
        return self._inner.basis

    @property
    def terms(self) -> dict[tuple[int, ...], float]:
        """The non-zero coefficients ``{players: value}`` in subset order (size, then players)."""
        return dict(self._inner.terms())

    def __len__(self) -> int:
        return len(self._inner.terms())

    def evaluate(self, masks: Any) -> np.ndarray:
        """The function on each mask (bool or 0/1 ``[m, n]``, or one mask ``[n]``): ``[m]`` floats."""
        return self._inner.evaluate(as_masks(masks, self.n_players))

    def r2(self, masks: Any, values: Any) -> float:
        """Coefficient of determination of this spectrum's predictions on ``masks`` against ``values``."""
        y = np.asarray(values, dtype=np.float64)
        p = self.evaluate(masks)
        if y.shape != p.shape:
            raise ValueError(f"values: shape {y.shape}, but there are {p.shape[0]} masks")
        ss = float(np.sum((y - y.mean()) ** 2))
        return 1.0 - float(np.sum((y - p) ** 2)) / ss if ss > 0 else float("nan")

    def to_moebius(self) -> "Spectrum":
        """The same function in the Moebius basis."""
        return Spectrum(self._inner.to_moebius())

    def to_fourier(self) -> "Spectrum":
        """The same function in the Fourier basis."""
        return Spectrum(self._inner.to_fourier())

    def index(self, index: str = "k-SII", max_order: int = 2) -> "InteractionValues":
        """Values of an interaction index (shapiq's names) derived from this spectrum."""
        name, baseline, pairs = self._inner.index(index, max_order)
        return InteractionValues(
            index=name,
            max_order=max_order,
            n_players=self.n_players,
            baseline_value=baseline,
            interactions=dict(pairs),
        )

    def __repr__(self) -> str:
        return f"Spectrum(n_players={self.n_players}, basis={self.basis!r}, terms={len(self)})"


class InteractionValues:
    """Interaction values of one index, shaped like shapiq's ``InteractionValues``.

    ``interactions`` maps a sorted tuple of players to its value (the empty tuple, when present,
    is the index's value of the empty set). :meth:`to_records` gives pandas-friendly rows,
    :meth:`to_shapiq` a real ``shapiq.InteractionValues``.
    """

    def __init__(
        self,
        *,
        index: str,
        max_order: int,
        n_players: int,
        baseline_value: float,
        interactions: dict[tuple[int, ...], float],
        spectrum: Spectrum | None = None,
        estimation_budget: int | None = None,
        r2_queried: float | None = None,
        method: str | None = None,
        refit: str | None = None,
        decoded: Any = None,
    ):
        self.index = index
        self.max_order = max_order
        self.n_players = n_players
        self.baseline_value = float(baseline_value)
        self.interactions = interactions
        self.spectrum = spectrum
        self.estimation_budget = estimation_budget
        self.r2_queried = r2_queried
        self.method = method
        self.refit = refit
        self._decoded = decoded

    @classmethod
    def _from_decoded(cls, decoded: "_spex.Decoded") -> "InteractionValues":
        return cls(
            index=decoded.index,
            max_order=decoded.max_order,
            n_players=decoded.n_players,
            baseline_value=decoded.baseline_value,
            interactions=dict(decoded.interactions()),
            spectrum=Spectrum(decoded.spectrum),
            estimation_budget=decoded.queries,
            r2_queried=decoded.r2_queried,
            method=decoded.method,
            refit=decoded.refit,
            decoded=decoded,
        )

    def __getitem__(self, players: Iterable[int]) -> float:
        """The value of a set of players (0 when absent)."""
        return self.interactions.get(tuple(sorted(players)), 0.0)

    def __len__(self) -> int:
        return len(self.interactions)

    def top(self, k: int = 10, min_order: int = 1) -> list[tuple[tuple[int, ...], float]]:
        """The ``k`` interactions of order >= ``min_order`` with the largest ``|value|``."""
        items = [(s, v) for s, v in self.interactions.items() if len(s) >= min_order]
        items.sort(key=lambda sv: (-abs(sv[1]), len(sv[0]), sv[0]))
        return items[:k]

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per interaction, ``{"players", "order", "value"}``, largest ``|value|`` first:
        ``pandas.DataFrame(result.to_records())``."""
        return [
            {"players": s, "order": len(s), "value": v}
            for s, v in self.top(len(self.interactions), min_order=0)
        ]

    def to_dataframe(self) -> Any:
        """The records as a ``pandas.DataFrame`` (needs pandas)."""
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("to_dataframe() needs pandas: pip install pandas") from exc
        return pd.DataFrame(self.to_records(), columns=["players", "order", "value"])

    def to_shapiq(self) -> Any:
        """A ``shapiq.InteractionValues`` with the same values and indices (so shapiq's plots work).

        Raises ImportError when shapiq is not installed.
        """
        try:
            import shapiq
        except ImportError as exc:
            raise ImportError(
                "to_shapiq() needs shapiq (pip install shapiq; 1.4.1 on Python 3.11, 1.8 on 3.12+)"
            ) from exc
        if self.index == "Fourier":
            raise ValueError("index: shapiq has no Fourier index; decode with index='Moebius' or another")
        keys = sorted(self.interactions, key=lambda s: (len(s), s))
        if () not in self.interactions and self.index in ("k-SII", "STII", "FSII", "FBII", "BV", "Moebius"):
            keys.insert(0, ())
        min_order = min((len(s) for s in keys), default=0)
        lookup = {s: i for i, s in enumerate(keys)}
        values = np.array([self.interactions.get(s, 0.0) for s in keys], dtype=float)
        return shapiq.InteractionValues(
            values=values,
            index=self.index,
            max_order=self.max_order,
            n_players=self.n_players,
            min_order=min_order,
            interaction_lookup=lookup,
            estimated=True,
            estimation_budget=self.estimation_budget,
            baseline_value=self.baseline_value,
        )

    def write(self, out: str | os.PathLike, spectrum: str | os.PathLike | None = None) -> None:
        """Writes interactions.json (and spectrum.json) as ``spex solve`` does."""
        if self._decoded is None:
            raise ValueError("only a decoded result (approximate, solve) can be written")
        self._decoded.write(os.fspath(out), None if spectrum is None else os.fspath(spectrum))

    def __repr__(self) -> str:
        head = ", ".join(f"{s}: {v:.4g}" for s, v in self.top(5))
        return (
            f"InteractionValues(index={self.index!r}, max_order={self.max_order}, "
            f"n_players={self.n_players}, baseline_value={self.baseline_value:.4g}, "
            f"interactions={len(self)}, top=[{head}])"
        )
