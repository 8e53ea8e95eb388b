"""spex: sparse Fourier interaction decoders (SPEX, ProxySPEX) in Rust, with shapiq's calling
convention, and the transformer attribution jobs of the ``spex`` command line.

>>> import numpy as np, spex
>>> game = lambda masks: 2.0 * masks[:, 0] - 3.0 * (masks[:, 1] & masks[:, 2])
>>> result = spex.ProxySPEX(n=16, max_order=2, random_state=0).approximate(500, game)
>>> result.top(2)   # doctest: +SKIP
>>> result.to_shapiq()   # doctest: +SKIP
>>> run = spex.heads(task="arc-easy", limit=40, layers="27-29", budget=400, out="runs/arc-late")   # doctest: +SKIP
"""

from ._spex import __version__
from ._game import GameError
from ._result import InteractionValues, Spectrum
from ._decoders import SPEX, ProxySPEX, ProxySPEXCV
from ._plan import Plan, plan, solve
from ._jobs import Evaluation, GroupsRun, HeadsRun, TokensRun, eval, heads, tokens

__all__ = [
    "__version__",
    "GameError",
    "InteractionValues",
    "Spectrum",
    "SPEX",
    "ProxySPEX",
    "ProxySPEXCV",
    "Plan",
    "plan",
    "solve",
    "heads",
    "tokens",
    "eval",
    "HeadsRun",
    "GroupsRun",
    "TokensRun",
    "Evaluation",
]
