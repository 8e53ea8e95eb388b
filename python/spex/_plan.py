"""Two-phase use: ``plan`` writes/returns the masks, ``solve`` decodes their values, with the same
files as ``spex plan`` and ``spex solve``."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import _spex
from ._result import InteractionValues


class Plan:
    """A decoder's plan: the masks to evaluate (``.masks``, bool ``[m, n]``) and how to decode
    their values. ``Plan.read(dir)`` loads a folder written by ``spex plan`` or :func:`plan`."""

    def __init__(self, inner: "_spex.Plan", folder: str | None = None):
        self._inner = inner
        self.folder = folder

    @classmethod
    def read(cls, folder: str | os.PathLike) -> "Plan":
        """The plan in ``folder`` (plan.json and masks.npy, checked against each other)."""
        return cls(_spex.Plan.read(os.fspath(folder)), os.fspath(folder))

    @property
    def masks(self) -> np.ndarray:
        """The masks ``[m, n]`` (True keeps the player), in the order ``solve`` expects values."""
        return self._inner.masks().view(np.bool_)

    @property
    def n_players(self) -> int:
        """Number of players n."""
        return self._inner.n_players

    @property
    def n_queries(self) -> int:
        """Number of masks m."""
        return self._inner.n_queries

    @property
    def method(self) -> str:
        """``spex`` or ``proxyspex``."""
        return self._inner.method

    def to_json(self) -> str:
        """plan.json's text."""
        return self._inner.to_json()

    def write(self, folder: str | os.PathLike) -> None:
        """Writes plan.json and masks.npy into ``folder`` (created if missing), as ``spex plan``."""
        self._inner.write(os.fspath(folder))
        self.folder = os.fspath(folder)

    def __repr__(self) -> str:
        return f"Plan(method={self.method!r}, n_players={self.n_players}, n_queries={self.n_queries}, folder={self.folder!r})"


def plan(
    players: int,
    budget: int,
    *,
    method: str = "proxyspex",
    degree: int = 5,
    decoder: str = "soft",
    seed: int = 0,
    keep_prob: float = 0.5,
    out: str | os.PathLike | None = None,
) -> Plan:
    """``spex plan``: the masks a decoder needs over ``players`` players, written to ``out``
    (plan.json, masks.npy) when given. Keyword arguments are the CLI's flags."""
    for name, value in (("players", players), ("budget", budget), ("degree", degree), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name}: must be a non-negative integer, got {value!r}")
    p = Plan(_spex.Plan.new(int(players), method, int(budget), int(degree), decoder, int(seed), float(keep_prob)))
    if out is not None:
        p.write(out)
    return p


def solve(
    plan: Plan | str | os.PathLike,
    values: Any,
    *,
    index: str = "k-SII",
    max_order: int | None = None,
    refit: str = "cv",
    out: str | os.PathLike | None = None,
    spectrum: str | os.PathLike | None = None,
) -> InteractionValues:
    """``spex solve``: decodes one value per mask of ``plan`` (a :class:`Plan` or its folder).

    ``values``: ``[m]`` floats, or the path of a float ``.npy``. Writes interactions.json to
    ``out`` and spectrum.json to ``spectrum`` when given, byte for byte as the CLI does.
    """
    p = plan if isinstance(plan, Plan) else Plan.read(plan)
    if isinstance(values, (str, os.PathLike)):
        values = np.load(os.fspath(values))
    v = np.ascontiguousarray(values, dtype=np.float64)
    if v.ndim != 1:
        raise ValueError(f"values: expected [m] floats, got shape {v.shape}")
    result = InteractionValues._from_decoded(p._inner.decode(v, index, max_order, refit))
    if out is not None:
        result.write(out, spectrum)
    elif spectrum is not None:
        raise ValueError("spectrum: needs out (interactions.json) too, as `spex solve --spectrum` needs --out")
    return result
