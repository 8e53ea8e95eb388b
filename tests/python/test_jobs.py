"""spex.heads / spex.tokens / spex.eval: the CLI's jobs from Python, writing the same files as the
commands, stoppable by Ctrl-C and resumable. They need the default model (`bash models/fetch.sh`)."""

import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

import spex

HOME = Path(os.environ.get("SPEX_HOME", Path.home() / ".cache" / "spex"))
MODEL = HOME / "models" / "smollm2-135m-instruct"
pytestmark = pytest.mark.skipif(
    not (MODEL.is_dir() and (HOME / "data" / "arc_easy").is_dir()),
    reason=f"skipped: no default model or ARC-Easy data under {HOME} (run bash models/fetch.sh)",
)

#: A small head job: the 9 heads of the last layer, 20 ARC-Easy questions (96 masks per stored
#: batch), 100 masks + 10 unseen.
HEADS = {"task": "arc-easy", "limit": 20, "layers": "29", "budget": 100, "held_out": 10, "seed": 3}
OUTPUTS = ["values.npy", "held_out_values.npy", "interactions.json", "spectrum.json", "comparison.json", "heads.json"]


@pytest.fixture
def ctrl_c_raises():
    """Python's own Ctrl-C handler for one test. A process started in the background by a shell
    without job control (`(cmd &)`, some CI runners) begins with SIGINT ignored, and Python then
    installs no handler: the signal these tests send would be dropped, not raised."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def flags(settings):
    out = []
    for k, v in settings.items():
        out += ["--" + k.replace("_", "-"), str(v)]
    return out


def cli(spex_cli, *args):
    done = subprocess.run([spex_cli, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def cli_heads(spex_cli, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli-heads")
    cli(spex_cli, "heads", *flags(HEADS), "--out", str(out))
    return out


def test_heads_writes_what_the_cli_writes(tmp_path, cli_heads):
    seen = []
    run = spex.heads(out=tmp_path / "py", progress=lambda *event: seen.append(event), **HEADS)
    for name in OUTPUTS:
        assert (tmp_path / "py" / name).read_bytes() == (cli_heads / name).read_bytes(), name
    assert run.interactions.n_players == 9 and run.held_out == 10
    reported = [m for m in run.comparison["methods"] if m["reported"]]
    assert [m["r2_held_out"] for m in reported] == [run.r2_held_out]
    assert (run.graph["first_layer"], run.graph["layers"], len(run.graph["nodes"])) == (29, 1, 9)
    # The values round-trip through the spectrum: its R^2 on the unseen masks is the reported one.
    masks = np.load(tmp_path / "py" / "held_out_masks.npy").astype(bool)
    values = np.load(tmp_path / "py" / "held_out_values.npy")
    assert run.spectrum.r2(masks, values) == pytest.approx(run.r2_held_out, abs=1e-9)
    # The progress callable saw both stages begin and end, and every mask stored.
    stages = [e for e in seen if e[0] == "begin"]
    assert [os.path.basename(s[1]) for s in stages] == ["values.log", "held_out.log"]
    assert sum(e[2] for e in seen if e[0] == "advance") == 100 + 10
    assert [e[0] for e in seen].count("end") == 2


def test_ctrl_c_stops_a_head_job_and_the_same_call_resumes_to_the_same_bytes(tmp_path, cli_heads, ctrl_c_raises):
    out = tmp_path / "stopped"
    calls = []

    def interrupt(event, store, count, total):
        calls.append(event)
        if event == "advance":
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends

    with pytest.raises(KeyboardInterrupt):
        spex.heads(out=out, progress=interrupt, **HEADS)
    assert calls.count("advance") == 1, "the job stopped after the first stored batch"
    stored = (out / "values.log").read_bytes()
    assert stored and not (out / "spectrum.json").exists()

    resumed = []
    spex.heads(out=out, progress=lambda *e: resumed.append(e), **HEADS)
    first = [e for e in resumed if e[0] == "begin"][0]
    assert first[2] > 0, "the resumed run found the stored batch"
    assert sum(e[2] for e in resumed if e[0] == "advance") == 100 + 10 - first[2]
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (cli_heads / name).read_bytes(), name


def test_layer_groups_write_what_the_cli_writes(tmp_path, spex_cli):
    settings = {**HEADS, "limit": 2}
    del settings["layers"]
    cli(spex_cli, "heads", *flags(settings), "--groups", "28,29", "--out", str(tmp_path / "cli"))
    run = spex.heads(out=tmp_path / "py", groups=["28", 29], progress=False, **settings)
    assert (tmp_path / "py" / "groups.json").read_bytes() == (tmp_path / "cli" / "groups.json").read_bytes()
    assert list(run.runs) == ["28", "29"]
    for group, folder in (("28", "layers-28-28"), ("29", "layers-29-29")):
        for name in OUTPUTS:
            assert (tmp_path / "py" / folder / name).read_bytes() == (tmp_path / "cli" / folder / name).read_bytes()
        assert run.runs[group].out == str(tmp_path / "py" / folder)
        assert run.runs[group].graph["first_layer"] == int(group)
    assert [g["folder"] for g in run.summary["groups"]] == ["layers-28-28", "layers-29-29"]
    reported = [[m["r2_held_out"] for m in g["comparison"]["methods"] if m["reported"]] for g in run.summary["groups"]]
    assert reported == [[run.runs[g].r2_held_out] for g in ("28", "29")]
    with pytest.raises(ValueError, match="groups"):
        spex.heads(out=tmp_path / "bad", groups=["29", "29"], **settings)
    with pytest.raises(ValueError, match="layers"):
        spex.heads(out=tmp_path / "bad", groups=["29"], **HEADS)


def test_job_errors_name_the_keyword(tmp_path):
    with pytest.raises(ValueError, match="layers"):
        spex.heads(out=tmp_path / "a", budget=10, layers="9-3", task="arc-easy", limit=1)
    with pytest.raises(ValueError, match="layers"):
        spex.heads(out=tmp_path / "b", budget=10, layers="40", task="arc-easy", limit=1)
    with pytest.raises(ValueError, match="device"):
        spex.heads(out=tmp_path / "c", budget=10, device="tpu", task="arc-easy", limit=1)
    with pytest.raises(ValueError, match="task"):
        spex.eval(task="arc-hard", limit=1)
    with pytest.raises(ValueError, match="mean_prompts"):
        spex.eval(task="arc-easy", limit=1, mean_prompts=tmp_path / "p.txt")
    with pytest.raises(ValueError, match="ablation"):
        spex.eval(task="arc-easy", limit=1, ablation="half")
    with pytest.raises(TypeError, match="held_ot"):
        spex.heads(out=tmp_path / "d", budget=10, held_ot=5)
    with pytest.raises(TypeError, match="budget"):
        spex.heads(out=tmp_path / "e", budget=None)
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


def test_eval_reports_what_the_cli_reports(tmp_path, spex_cli):
    cli(spex_cli, "eval", "--task", "arc-easy", "--limit", "4", "--head-mask", "29:0,29:3", "--json", str(tmp_path / "cli.json"))
    result = spex.eval(task="arc-easy", limit=4, head_mask=[(29, 0), (29, 3)], json=tmp_path / "py.json")
    assert (tmp_path / "py.json").read_bytes() == (tmp_path / "cli.json").read_bytes()
    assert len(result.questions) == 4 and result.acc_norm is not None
    assert result.accuracy == np.mean([q["gold"] == q["pred"] for q in result.questions])
    assert "arc" in result.table


def test_ctrl_c_stops_an_eval_before_its_next_batch(ctrl_c_raises):
    # 400 HellaSwag questions take a minute or more on two cores; Ctrl-C after 0.5 s must end the
    # call within a few batches, not when it would have returned anyway (when Python would raise
    # a pending KeyboardInterrupt too).
    import threading
    import time

    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        spex.eval(task="hellaswag", limit=400)
    assert time.monotonic() - start < 15
    timer.join()
    # The next call runs normally.
    assert len(spex.eval(task="arc-easy", limit=2).questions) == 2


def test_tokens_writes_what_the_cli_writes(tmp_path, spex_cli):
    settings = {"prompt": "The capital of France is", "target": " Paris", "budget": 100, "seed": 1}
    cli(spex_cli, "tokens", *flags(settings), "--out", str(tmp_path / "cli"))
    run = spex.tokens(out=tmp_path / "py", progress=False, **settings)
    for name in ["values.npy", "interactions.json", "spectrum.json", "tokens.json"]:
        assert (tmp_path / "py" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    assert [p["text"] for p in run.report["players"]] == ["The", " capital", " of", " France", " is"]
    # 100 masks cover all 2^5: the spectrum is exact, and there is no mask left to hold out.
    assert run.interactions.n_players == 5 and run.held_out == 0 and run.r2_held_out is None
    assert run.interactions.r2_queried == pytest.approx(1.0)
