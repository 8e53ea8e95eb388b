"""shapiq-style decoders: ``SPEX``, ``ProxySPEX`` (the reference refit) and ``ProxySPEXCV``."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _spex
from ._game import Game, call_game
from ._result import InteractionValues, as_masks


def _seed(random_state: int | None) -> int:
    if random_state is None:
        return 0
    if isinstance(random_state, (bool, np.bool_)) or not isinstance(random_state, (int, np.integer)):
        raise ValueError(f"random_state: must be a non-negative integer or None, got {random_state!r}")
    if random_state < 0 or random_state >= 2**64:
        raise ValueError(f"random_state: must be in 0..2**64, got {random_state}")
    return int(random_state)


def _check_n(n: Any) -> int:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: must be a positive integer (the number of players), got {n!r}")
    return int(n)


def _check_order(max_order: Any) -> int | None:
    if max_order is None:
        return None
    if isinstance(max_order, (bool, np.bool_)) or not isinstance(max_order, (int, np.integer)) or max_order < 0:
        raise ValueError(f"max_order: must be a non-negative integer or None, got {max_order!r}")
    return int(max_order)


def _check_budget(budget: Any) -> int:
    if isinstance(budget, (bool, np.bool_)) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(f"budget: must be a positive integer (the most game evaluations), got {budget!r}")
    return int(budget)


class _Decoder:
    """What SPEX and ProxySPEX share: the plan, the game's call and the decode."""

    _method = ""

    def __init__(self, n: int, max_order: int | None, index: str, random_state: int | None):
        self.n = _check_n(n)
        self.max_order = _check_order(max_order)
        self.index = index
        self.random_state = random_state
        self._seed = _seed(random_state)
        self.last_plan: _spex.Plan | None = None

    def _refit(self) -> str:
        return "cv"

    def _plan(self, budget: int) -> "_spex.Plan":
        raise NotImplementedError

    def approximate(self, budget: int, game: Game, *, batch_size: int | None = None) -> InteractionValues:
        """Queries ``game`` on at most ``budget`` masks and decodes its sparse spectrum.

        ``game`` takes a bool array ``[m, n]`` (True keeps the player) and returns ``[m]``
        floats; with ``batch_size`` it is called on slices of that many rows. A game that
        raises, returns another shape or a non-finite value raises :class:`spex.GameError`
        naming the call, and nothing is decoded.
        """
        budget = _check_budget(budget)
        # The index and order are checked before any evaluation.
        _spex.check_decode_options(self.index, self.max_order, self._refit())
        plan = self._plan(budget)
        masks = plan.masks().view(np.bool_)
        values = call_game(game, masks, batch_size)
        self.last_plan = plan
        return InteractionValues._from_decoded(plan.decode(values, self.index, self.max_order, self._refit()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={self.n}, max_order={self.max_order}, index={self.index!r}, random_state={self.random_state!r})"


class SPEX(_Decoder):
    """SPEX (Kang et al., ICML 2025): BCH-coded structured subsampling decoded by peeling.

    Same calling convention as ``shapiq.SPEX``: ``SPEX(n, max_order=2, index="k-SII",
    random_state=0).approximate(budget, game)``. ``decoder_type`` (``soft`` or ``hard``) and
    ``degree_parameter`` (the largest degree the BCH code corrects, lowered to fit the budget)
    are shapiq's names. The budget is rounded down to the structured design's size.
    """

    def __init__(
        self,
        n: int,
        max_order: int | None = 2,
        index: str = "k-SII",
        *,
        decoder_type: str = "soft",
        degree_parameter: int = 5,
        random_state: int | None = None,
    ):
        super().__init__(n, max_order, index, random_state)
        self.decoder_type = decoder_type
        self.degree_parameter = degree_parameter

    def _plan(self, budget: int) -> "_spex.Plan":
        return _spex.Plan.new(
            self.n, "spex", budget, int(self.degree_parameter), self.decoder_type, self._seed, 0.5
        )


class ProxySPEX(_Decoder):
    """ProxySPEX (Butler et al., NeurIPS 2025) as shapiq decodes it: boosted trees fitted to
    random masks, their exact Fourier terms, the 95 % energy cut and a ridge refit.

    ``refit="reference"`` (default) is shapiq's; ``"cv"`` is :class:`ProxySPEXCV`'s, ``"centred"``
    ridge with an unpenalised constant. ``keep_prob`` is the probability that a random mask keeps
    each player (0.5: uniform over the cube, as shapiq).
    """

    _default_refit = "reference"

    def __init__(
        self,
        n: int,
        max_order: int | None = 2,
        index: str = "k-SII",
        *,
        keep_prob: float = 0.5,
        refit: str | None = None,
        random_state: int | None = None,
    ):
        super().__init__(n, max_order, index, random_state)
        self.keep_prob = float(keep_prob)
        self.refit = self._default_refit if refit is None else refit

    def _refit(self) -> str:
        return self.refit

    def _plan(self, budget: int) -> "_spex.Plan":
        return _spex.Plan.new(self.n, "proxyspex", budget, 5, "soft", self._seed, self.keep_prob)

    def fit(self, masks: Any, values: Any) -> InteractionValues:
        """Decodes given samples instead of drawing masks: ``masks`` bool or 0/1 ``[m, n]``,
        ``values`` ``[m]`` floats (e.g. the masks another library drew, for a comparison on the
        same samples)."""
        masks = as_masks(masks, self.n)
        values = np.ascontiguousarray(values, dtype=np.float64)
        if values.shape != (masks.shape[0],):
            raise ValueError(f"values: shape {values.shape}, but there are {masks.shape[0]} masks")
        plan = _spex.Plan.proxyspex_on(masks, self._seed)
        return InteractionValues._from_decoded(plan.decode(values, self.index, self.max_order, self._refit()))


class ProxySPEXCV(ProxySPEX):
    """ProxySPEX with spex's default refit (``refit="cv"``): the trees' terms united with every
    single player and pair the samples afford, fitted by l1 (or ridge) chosen by 5-fold
    cross-validation. Keeps the pairs the 95 % energy cut drops; the head experiment's decoder."""

    _default_refit = "cv"
