"""spex.plan / spex.solve write the same files as `spex plan` / `spex solve`, byte for byte."""

import subprocess
from pathlib import Path

import numpy as np
import pytest

import spex
from conftest import moebius_game

GAME = moebius_game({(0,): 1.0, (2, 5): -2.0, (7,): 0.5, (1, 3, 4): 0.25})


def files(folder):
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}


@pytest.mark.parametrize(
    "method, extra",
    [("proxyspex", {}), ("proxyspex", {"keep_prob": 0.9, "seed": 4}), ("spex", {"degree": 3, "seed": 2}), ("spex", {"decoder": "hard"})],
)
def test_plan_and_solve_equal_the_cli_byte_for_byte(tmp_path, spex_cli, method, extra):
    n, budget = 12, 700
    flags = ["--players", str(n), "--budget", str(budget), "--method", method]
    for k, v in extra.items():
        flags += ["--" + k.replace("_", "-"), str(v)]
    subprocess.run([spex_cli, "plan", *flags, "--out", str(tmp_path / "cli")], check=True, capture_output=True)
    p = spex.plan(n, budget, method=method, out=tmp_path / "py", **extra)
    assert files(tmp_path / "cli") == files(tmp_path / "py")
    assert p.n_queries == np.load(tmp_path / "cli" / "masks.npy").shape[0]

    values = GAME(p.masks)
    np.save(tmp_path / "values.npy", values)
    for index, refit in (("k-SII", "cv"), ("FBII", "reference"), ("Moebius", "centred")):
        if method == "spex" and refit != "cv":
            continue
        cli_out = tmp_path / f"cli-{index}.json"
        cli_spec = tmp_path / f"cli-{index}-spectrum.json"
        subprocess.run(
            [spex_cli, "solve", "--plan", str(tmp_path / "cli"), "--values", str(tmp_path / "values.npy"),
             "--index", index, "--refit", refit, "--out", str(cli_out), "--spectrum", str(cli_spec)],
            check=True, capture_output=True,
        )
        py_out, py_spec = tmp_path / f"py-{index}.json", tmp_path / f"py-{index}-spectrum.json"
        # From the folder (as the CLI reads it) and from the in-memory plan: the same bytes.
        spex.solve(tmp_path / "py", values, index=index, refit=refit, out=py_out, spectrum=py_spec)
        assert py_out.read_bytes() == cli_out.read_bytes(), index
        assert py_spec.read_bytes() == cli_spec.read_bytes(), index
        r = spex.solve(p, tmp_path / "values.npy", index=index, refit=refit, out=py_out)
        assert py_out.read_bytes() == cli_out.read_bytes(), index
        assert r.index == index


def test_plan_read_checks_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="plan.json"):
        spex.Plan.read(tmp_path / "missing")
    p = spex.plan(10, 300, out=tmp_path / "p")
    masks = np.load(tmp_path / "p" / "masks.npy")
    masks[3] ^= 1
    np.save(tmp_path / "p" / "masks.npy", masks)
    with pytest.raises(ValueError, match="masks.npy: the masks differ"):
        spex.Plan.read(tmp_path / "p")
    assert p.method == "proxyspex" and p.n_players == 10


def test_solve_errors_name_the_values(tmp_path):
    p = spex.plan(10, 300)
    with pytest.raises(ValueError, match="value\\(s\\) given but the plan has"):
        spex.solve(p, np.zeros(5))
    values = np.zeros(p.n_queries)
    values[7] = np.nan
    with pytest.raises(ValueError, match=r"non-finite .* row\(s\) 7"):
        spex.solve(p, values)
    with pytest.raises(ValueError, match="keep_prob: invalid `keep_probability`"):
        spex.plan(10, 300, keep_prob=0.0)
