"""spex.SPEX, spex.ProxySPEX, spex.ProxySPEXCV: recovery, the result object, and named errors."""

import numpy as np
import pytest

import spex
from conftest import fourier_game, moebius_game

SPARSE = {(): 0.5, (3,): 2.0, (7,): -1.25, (3, 7): 1.5, (10, 20): -2.0, (1, 5, 30): 0.75}


def test_import_and_version():
    assert spex.__version__
    assert {"SPEX", "ProxySPEX", "ProxySPEXCV", "plan", "solve", "GameError"} <= set(spex.__all__)


def test_spex_recovers_a_sparse_game_exactly():
    n = 32
    result = spex.SPEX(n, max_order=None, index="Fourier", random_state=3).approximate(3000, fourier_game(SPARSE))
    terms = result.spectrum.terms
    assert set(terms) == set(SPARSE)
    for s, v in SPARSE.items():
        assert abs(terms[s] - v) < 1e-9, s
    assert result.r2_queried == pytest.approx(1.0)
    assert result.spectrum.basis == "fourier"
    # The spectrum evaluates new masks exactly.
    masks = np.random.default_rng(0).integers(0, 2, size=(200, n)).astype(bool)
    np.testing.assert_allclose(result.spectrum.evaluate(masks), fourier_game(SPARSE)(masks), atol=1e-9)


def test_spex_k_sii_of_a_moebius_game_matches_its_definition():
    # Moebius a({0})=1, a({1,2})=2: k-SII at order 2 = the Moebius values themselves.
    game = moebius_game({(0,): 1.0, (1, 2): 2.0})
    result = spex.SPEX(12, max_order=2, index="k-SII", random_state=0).approximate(2000, game)
    assert result.index == "k-SII"
    assert result[(0,)] == pytest.approx(1.0)
    assert result[(2, 1)] == pytest.approx(2.0)
    assert result[(3,)] == pytest.approx(0.0, abs=1e-9)
    assert result.baseline_value == pytest.approx(0.0, abs=1e-9)


def test_proxyspex_reference_and_cv_decode_a_sparse_game():
    game = moebius_game({(0,): 2.0, (4,): -1.0, (1, 2): -3.0})
    test = np.random.default_rng(1).integers(0, 2, size=(300, 24)).astype(bool)
    for cls, refit in ((spex.ProxySPEX, "reference"), (spex.ProxySPEXCV, "cv")):
        result = cls(24, max_order=2, random_state=0).approximate(600, game)
        assert result.method == "proxyspex" and result.refit == refit
        assert result.spectrum.r2(test, game(test)) > 0.95, cls
        assert result.top(1)[0][0] == (1, 2)


def test_same_seed_same_result_and_seed_matters():
    game = moebius_game({(0,): 2.0, (1, 2): -3.0, (5,): 0.3})
    a = spex.ProxySPEX(16, random_state=5).approximate(300, game)
    b = spex.ProxySPEX(16, random_state=5).approximate(300, game)
    assert a.interactions == b.interactions


def test_records_dataframe_and_batches():
    game = moebius_game({(0,): 2.0, (1, 2): -3.0})
    calls = []

    def counted(masks):
        calls.append(masks.shape[0])
        assert masks.dtype == np.bool_
        return game(masks)

    result = spex.ProxySPEX(10, random_state=0).approximate(500, counted, batch_size=128)
    assert sum(calls) == result.estimation_budget and max(calls) <= 128 and len(calls) > 1
    records = result.to_records()
    assert records[0]["players"] == (1, 2) and records[0]["order"] == 2
    pd = pytest.importorskip("pandas")
    frame = result.to_dataframe()
    assert list(frame.columns) == ["players", "order", "value"] and len(frame) == len(result)


def test_fit_decodes_given_samples():
    rng = np.random.default_rng(4)
    masks = rng.integers(0, 2, size=(500, 20)).astype(bool)
    game = moebius_game({(2,): 1.0, (3, 4): 2.0})
    result = spex.ProxySPEX(20, random_state=0).fit(masks, game(masks))
    assert result.estimation_budget == 500
    assert result.top(1)[0][0] == (3, 4)
    with pytest.raises(ValueError, match="values: shape"):
        spex.ProxySPEX(20).fit(masks, np.zeros(3))
    with pytest.raises(ValueError, match="masks: 19 columns"):
        spex.ProxySPEX(20).fit(masks[:, 1:], np.zeros(500))


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda m: np.zeros(m.shape[0] - 1), r"call 1 of 1 \(rows 0\.\.\d+, masks of shape .*returned shape"),
        (lambda m: np.zeros((m.shape[0], 2)), "returned shape"),
        (lambda m: np.where(np.arange(m.shape[0]) == 3, np.nan, 0.0), r"non-finite value\(s\) .* at row\(s\) 3"),
        (lambda m: np.full(m.shape[0], np.inf), "non-finite"),
        (lambda m: ["a"] * m.shape[0], "not an array of floats"),
    ],
)
def test_bad_games_raise_named_errors(bad, match):
    with pytest.raises(spex.GameError, match=match):
        spex.ProxySPEX(12, random_state=0).approximate(200, bad)


def test_a_raising_game_is_chained_and_names_the_batch():
    def game(masks):
        if masks.shape[0] < 50:
            raise RuntimeError("model went away")
        return np.zeros(masks.shape[0])

    with pytest.raises(spex.GameError, match=r"game\(masks\) on call 5 of 5 .*raised RuntimeError: model went away") as info:
        spex.ProxySPEX(12, random_state=0).approximate(449, game, batch_size=100)
    assert isinstance(info.value.__cause__, RuntimeError)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: spex.ProxySPEX(12, keep_prob=1.5), "keep_prob: invalid `keep_probability`"),
        (lambda: spex.ProxySPEX(12, index="nope"), "index: invalid `index`: unknown index `nope`"),
        (lambda: spex.ProxySPEX(12, max_order=0), "max_order: invalid `max_order`"),
        (lambda: spex.ProxySPEX(12, refit="magic"), "refit: invalid `refit`"),
        (lambda: spex.SPEX(12, decoder_type="wild"), "decoder: invalid `decoder`"),
        (lambda: spex.ProxySPEX(0), "n: must be a positive integer"),
        (lambda: spex.ProxySPEX(12, random_state=-1), "random_state"),
    ],
)
def test_bad_arguments_raise_value_errors_named_as_the_library(make, match):
    calls = []

    def game(masks):
        calls.append(1)
        return np.zeros(masks.shape[0])

    with pytest.raises(ValueError, match=match):
        make().approximate(200, game)
    assert not calls, "the game must not be called before the arguments are checked"


def test_a_budget_too_small_names_budget():
    with pytest.raises(ValueError, match=r"budget: budget 5 is too small"):
        spex.SPEX(40, random_state=0).approximate(5, lambda m: np.zeros(m.shape[0]))


def test_spectrum_helpers():
    s = spex.Spectrum.from_terms(4, {(): 1.0, (0, 1): 2.0}, basis="moebius")
    np.testing.assert_allclose(s.evaluate([[1, 1, 0, 0], [1, 0, 0, 0]]), [3.0, 1.0])
    np.testing.assert_allclose(s.to_fourier().evaluate(np.ones((1, 4), bool)), [3.0])
    assert s.index("Moebius", 2)[(0, 1)] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="masks: 3 columns"):
        s.evaluate(np.ones((1, 3)))
    with pytest.raises(ValueError, match="0 or 1"):
        s.evaluate(np.full((1, 4), 2))
