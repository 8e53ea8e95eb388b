"""to_shapiq(): a real shapiq.InteractionValues with the same values and indices."""

import sys

import numpy as np
import pytest

import spex
from conftest import moebius_game


def test_to_shapiq_round_trips_values_and_indices():
    shapiq = pytest.importorskip("shapiq")
    game = moebius_game({(): 0.25, (0,): 1.0, (1, 2): 2.0, (3,): -0.5})
    for index in ("k-SII", "SII", "FBII", "Moebius", "STII", "FSII", "BII"):
        result = spex.SPEX(10, max_order=2, index=index, random_state=0).approximate(1500, game)
        iv = result.to_shapiq()
        assert isinstance(iv, shapiq.InteractionValues)
        assert iv.index == index and iv.max_order == 2 and iv.n_players == 10
        assert iv.baseline_value == pytest.approx(result.baseline_value)
        assert iv.estimation_budget == result.estimation_budget
        for players, value in result.interactions.items():
            assert iv[players] == pytest.approx(value), (index, players)
        # and back: every entry shapiq holds is one of ours (or zero).
        for players, i in iv.interaction_lookup.items():
            assert iv.values[i] == pytest.approx(result.interactions.get(players, 0.0)), (index, players)


def test_to_shapiq_without_shapiq_says_how_to_install(monkeypatch):
    result = spex.ProxySPEX(6, random_state=0).approximate(200, moebius_game({(0,): 1.0}))
    monkeypatch.setitem(sys.modules, "shapiq", None)
    with pytest.raises(ImportError, match="to_shapiq\\(\\) needs shapiq"):
        result.to_shapiq()


def test_shapiqs_plots_accept_the_result():
    pytest.importorskip("shapiq")
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    game = moebius_game({(0,): 2.0, (1, 2): -3.0, (7,): 0.5})
    iv = spex.ProxySPEX(16, random_state=0).approximate(500, game).to_shapiq()
    iv.plot_force(show=False)
    iv.plot_upset(show=False)
    iv.plot_network(show=False)
