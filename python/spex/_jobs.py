"""The model jobs of the ``spex`` command line from Python: :func:`heads`, :func:`tokens` and
:func:`eval`. The keyword arguments are the CLI's flags (``--held-out`` is ``held_out``); each job
writes the same folder as the command and returns its results as Python objects. The Rust work runs
with the GIL released; Ctrl-C stops a head or token job after the batch in flight (what is stored
stays, and the same call again resumes), and a progress bar is drawn with tqdm where it is
installed (``tqdm.auto``: the terminal or Jupyter), else as lines on stderr."""

from __future__ import annotations

import json as _json
import os
import sys
import time
from typing import Any, Callable

from . import _spex
from ._result import InteractionValues

#: The defaults of the flags every model job shares (``spex eval --help``).
_MODEL = {"model": None, "revision": None, "device": "auto", "dtype": "auto"}
_TASK = {
    "task": "mmlu",
    "data_dir": None,
    "subjects": "all",
    "split": None,
    "offset": 0,
    "limit": None,
    "shots": 0,
    "strict": False,
    "format": None,
}
_ABLATION = {"ablation": "zero", "mean_prompts": None, "max_batch_tokens": None}
_ONE_SHOT = {
    "method": "proxyspex",
    "degree": 5,
    "decoder": "soft",
    "seed": 0,
    "keep_prob": 0.5,
    "index": "k-SII",
    "max_order": None,
    "refit": "cv",
    "held_out": None,
}


def _settings(given: dict[str, Any], *defaults: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """The job's settings: the defaults overridden by ``given``; an unknown or missing keyword is
    a TypeError naming it (as a mistyped flag is an error on the command line)."""
    allowed: dict[str, Any] = {}
    for d in defaults:
        allowed.update(d)
    unknown = sorted(set(given) - set(allowed) - set(required))
    if unknown:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(unknown)}")
    missing = [k for k in required if given.get(k) is None]
    if missing:
        raise TypeError(f"missing keyword argument(s): {', '.join(missing)}")
    settings = {**allowed, **given}
    for key in ("out", "data_dir", "mean_prompts"):
        if settings.get(key) is not None:
            settings[key] = os.fspath(settings[key])
    if isinstance(settings.get("layers"), int) and not isinstance(settings["layers"], bool):
        settings["layers"] = str(settings["layers"])
    if isinstance(settings.get("subjects"), (list, tuple)):
        settings["subjects"] = ",".join(settings["subjects"])
    return settings


class _Progress:
    """The callback the Rust job calls between stored batches: a tqdm bar per stage (the plan's
    masks, then the unseen ones), or a line on stderr every few seconds without tqdm."""

    def __init__(self, show: bool | Callable[..., Any]):
        self._user = show if callable(show) else None
        self._show = bool(show) and not callable(show)
        self._bar: Any = None
        self._last = 0.0
        self._done = 0
        self._total = 0
        self._stage = ""

    def __call__(self, event: str, store: str | None, count: int, total: int) -> None:
        if self._user is not None:
            self._user(event, store, count, total)
            return
        if not self._show:
            return
        if event == "begin":
            self._stage = "unseen masks" if store and os.path.basename(store).startswith("held_out") else "masks"
            self._done, self._total = count, total
            self._bar = _tqdm(total, count, self._stage)
            self._print(force=True)
        elif event == "advance":
            self._done += count
            if self._bar is not None:
                self._bar.update(count)
            self._print()
        elif event == "end":
            if self._bar is not None:
                self._bar.close()
                self._bar = None

    def _print(self, force: bool = False) -> None:
        if self._bar is not None:
            return
        now = time.monotonic()
        if force or now - self._last > 5 or self._done == self._total:
            self._last = now
            print(f"spex: {self._done}/{self._total} {self._stage}", file=sys.stderr, flush=True)


def _tqdm(total: int, done: int, unit: str) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=done, unit=" " + unit, desc="spex", leave=False)


class _OneShotRun:
    """What a head or token job returns: the decoded interactions, the R^2 on unseen masks and
    the output folder's report files as dicts."""

    def __init__(self, out: str, decoded: "_spex.Decoded", r2_held_out: float | None, held_out: int):
        self.out = out
        #: The reported index over the players (``InteractionValues``: ``top``, ``to_shapiq``, ...).
        self.interactions = InteractionValues._from_decoded(decoded)
        #: R^2 of the decoded spectrum on the unseen masks (``None`` without a held-out check).
        self.r2_held_out = r2_held_out
        #: How many unseen masks checked it.
        self.held_out = held_out
        #: ``[(r2, unseen)]`` for a spectrum that explains less than R^2 0.5 of the values.
        self.warnings = decoded.warnings()

    @property
    def spectrum(self) -> Any:
        """The decoded Fourier spectrum (``.evaluate(masks)`` predicts new masks)."""
        return self.interactions.spectrum

    @property
    def comparison(self) -> dict[str, Any] | None:
        """comparison.json: every method on the unseen masks and the energy split (or ``None``)."""
        return self._read("comparison.json")

    def _read(self, name: str) -> Any:
        path = os.path.join(self.out, name)
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as f:
            return _json.load(f)


class HeadsRun(_OneShotRun):
    """A finished :func:`heads` job; its files are in ``out``."""

    @property
    def graph(self) -> dict[str, Any]:
        """heads.json: the head-interaction graph (``nodes`` per head, ``edges`` per pair)."""
        return self._read("heads.json")

    def __repr__(self) -> str:
        return f"HeadsRun(out={self.out!r}, players={self.interactions.n_players}, r2_held_out={self.r2_held_out})"


class TokensRun(_OneShotRun):
    """A finished :func:`tokens` job; its files are in ``out``."""

    @property
    def report(self) -> dict[str, Any]:
        """tokens.json: every player's text, positions and value, and the strongest pairs."""
        return self._read("tokens.json")

    def __repr__(self) -> str:
        return f"TokensRun(out={self.out!r}, players={self.interactions.n_players}, r2_held_out={self.r2_held_out})"


class GroupsRun:
    """A finished :func:`heads` job over layer groups: ``runs`` maps each group (``"27-29"``) to its
    :class:`HeadsRun` (in ``out/layers-A-B``); ``summary`` is groups.json (the groups side by side)."""

    def __init__(self, out: str, runs: dict[str, HeadsRun]):
        self.out = out
        self.runs = runs

    @property
    def summary(self) -> dict[str, Any]:
        """groups.json: each group's R^2 on unseen masks, energy split and strongest heads."""
        with open(os.path.join(self.out, "groups.json"), encoding="utf-8") as f:
            return _json.load(f)

    def __repr__(self) -> str:
        return f"GroupsRun(out={self.out!r}, groups={list(self.runs)})"


def heads(
    *, out: str | os.PathLike, budget: int, progress: bool | Callable[..., Any] = True, **kwargs: Any
) -> HeadsRun | GroupsRun:
    """``spex heads``: which heads, and which pairs of heads, drive the model's score on a task.

    Keyword arguments are ``spex heads``'s flags: ``model``, ``revision``, ``device``, ``dtype``, ``task``,
    ``data_dir``, ``subjects``, ``split``, ``offset``, ``limit``, ``shots``, ``strict``,
    ``format``, ``value``, ``ablation``, ``mean_prompts``, ``max_batch_tokens``, ``layers``
    (``"27-29"`` or ``25``), ``groups`` (``["0-2", "14-16", "27-29"]``: each its own game, and a
    :class:`GroupsRun` back), ``method``, ``degree``, ``decoder``, ``seed``, ``keep_prob``,
    ``index``, ``max_order``, ``refit``, ``held_out`` and ``top_edges``. Writes ``out`` as the
    command does (the same call again resumes); ``progress`` is True (a bar), False, or a
    callable ``(event, store, count, total)``.

    >>> run = spex.heads(task="arc-easy", limit=40, layers="27-29", budget=400, held_out=100,
    ...                  seed=7, out="runs/arc-late")   # doctest: +SKIP
    >>> run.r2_held_out, run.interactions.top(5)   # doctest: +SKIP
    """
    settings = _settings(
        {"out": out, "budget": budget, **kwargs},
        _MODEL,
        _TASK,
        _ABLATION,
        _ONE_SHOT,
        {"value": None, "layers": None, "top_edges": 40, "groups": None},
        required=("out", "budget"),
    )
    groups = settings.pop("groups")
    if groups is None:
        decoded, r2, held_out = _spex.heads_job(settings, _Progress(progress))
        return HeadsRun(settings["out"], decoded, r2, held_out)
    if isinstance(groups, str):
        groups = groups.split(",")
    settings["groups"] = [str(g) for g in groups]
    runs = _spex.head_groups_job(settings, _Progress(progress))
    return GroupsRun(
        settings["out"],
        {g: HeadsRun(os.fspath(folder), *result) for g, (folder, result) in zip(settings["groups"], runs)},
    )


def tokens(
    *,
    prompt: str,
    target: str,
    out: str | os.PathLike,
    budget: int,
    progress: bool | Callable[..., Any] = True,
    **kwargs: Any,
) -> TokensRun:
    """``spex tokens``: which words (or tokens) of ``prompt``, and which pairs of them, drive the
    log-probability of ``target`` (mind its leading space).

    Keyword arguments are ``spex tokens``'s flags: ``players`` (``words`` or ``tokens``),
    ``baseline_token``, ``max_batch_tokens``, ``model``, ``revision``, ``device``, ``dtype`` and the design's
    (``method``, ``seed``, ``held_out``, ...). Writes ``out`` as the command does (resumable).
    """
    settings = _settings(
        {"prompt": prompt, "target": target, "out": out, "budget": budget, **kwargs},
        _MODEL,
        _ONE_SHOT,
        {"players": "words", "baseline_token": None, "max_batch_tokens": None},
        required=("prompt", "target", "out", "budget"),
    )
    decoded, r2, held_out = _spex.tokens_job(settings, _Progress(progress))
    return TokensRun(settings["out"], decoded, r2, held_out)


class Evaluation:
    """A finished :func:`eval`: ``accuracy`` (acc), ``acc_norm`` (where the harness reports it),
    ``questions`` (per-question gold, predictions and log-likelihoods), ``subjects`` and
    ``report`` (the whole of what ``spex eval --json`` writes)."""

    def __init__(self, report: dict[str, Any], table: str):
        self.report = report
        self.table = table
        self.accuracy: float = report["accuracy"]
        self.acc_norm: float | None = report.get("acc_norm")
        self.questions: list[dict[str, Any]] = report["questions"]
        self.subjects: list[dict[str, Any]] = report["subjects"]

    def __repr__(self) -> str:
        return (
            f"Evaluation(task={self.report['task']!r}, questions={len(self.questions)}, "
            f"accuracy={self.accuracy:.4f}, acc_norm={self.acc_norm})"
        )


def eval(*, json: str | os.PathLike | None = None, head_mask: Any = None, **kwargs: Any) -> Evaluation:  # noqa: A001 - the CLI's names
    """``spex eval``: the model's accuracy on a task (lm-evaluation-harness's acc and acc_norm),
    optionally with heads ablated for the whole run.

    Keyword arguments are ``spex eval``'s flags: ``model``, ``revision``, ``device``, ``dtype``, ``task``,
    ``data_dir``, ``subjects``, ``split``, ``offset``, ``limit``, ``shots``, ``strict``,
    ``format``, ``ablation``, ``mean_prompts``, ``max_batch_tokens``; ``head_mask`` is the flag's
    text (``"29:0,29:3"``, ``"29:*"``, a JSON file) or a list of ``(layer, head)`` pairs;
    ``json`` writes the report file as ``--json`` does (checked writable before the model loads).
    """
    if head_mask is not None and not isinstance(head_mask, (str, os.PathLike)):
        try:
            head_mask = ",".join(f"{int(layer)}:{int(head)}" for layer, head in head_mask)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"head_mask: expected a string or (layer, head) pairs, got {head_mask!r}") from exc
    settings = _settings(kwargs, _MODEL, _TASK, _ABLATION)
    settings["head_mask"] = None if head_mask is None else os.fspath(head_mask)
    settings["json"] = None if json is None else os.fspath(json)
    text, table = _spex.eval_job(settings)
    return Evaluation(_json.loads(text), table)
