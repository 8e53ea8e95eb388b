"""Collect lm-eval --log_samples output of the cloze sets into tests/data/lmeval_cloze_sample.json.

Called by make_lmeval_cloze_reference.sh. For each set it reads
WORK/out_<set>/**/samples_spex_<set>_*.jsonl (one line per doc: doc_id, doc, target, arguments
{gen_args_i: {arg_0: context, arg_1: continuation}}, filtered_resps [[loglikelihood, is_greedy]]
with both logged as strings, and the per-sample metrics), WORK/out_<set>/**/results_*.json (the
aggregate metrics, total_evaluation_time_seconds), WORK/out_<set>.log (the loglikelihood progress
bar) and WORK/seconds_<set> (the lm_eval process's wall time), and writes ONE JSON file:

  {"made_by", "versions", "limit",
   "tasks": {"<set>": {"n", "metrics": {"acc", "acc_norm"}, "seconds": {...},
                       "rows": [{"doc_id", "gold", "contexts", "continuations", "loglikelihoods",
                                 "is_greedy", "acc"[, "acc_norm"]}, ...]}}}

Rows are sorted by doc_id. `contexts` has one entry when every choice shares the context (all sets
but winogrande), else one per choice; `continuations` has one entry when every choice shares it
(winogrande), else one per choice. `loglikelihoods` and `is_greedy` are one per choice, in the
data's choice order (floats parsed from the logged strings, so they print back as logged).
`acc`/`acc_norm` are the per-sample metrics the harness logged, only those it reports for the set
(winogrande, boolq and copa report acc only).

`gold` is the index of the correct choice as the harness scores it (process_results):
  - most sets: the logged `target`, which is doc_to_target's int written as a string ("3");
  - copa: the logged `target` is doc_to_target's *text* (" water flowed from the spout.", with
    copa's leading space); gold is its index in doc_to_choice (continuation = " " + choice);
  - winogrande: the logged `target` is the shared continuation without the target delimiter
    ("always got the easier cases."): the harness's gold for multiple-input tasks is
    doc_to_text(doc) = {"1": 0, "2": 1}[doc["answer"]], taken here from the logged doc.
Every gold is also checked against the logged doc's own answer field, every row's number of
loglikelihoods against its number of choices, and acc/acc_norm are recomputed from the
loglikelihoods (acc: first argmax of ll; acc_norm: first argmax of ll / len(choice), len in
characters of the choice without the target delimiter) and must equal the logged ones; the
aggregates must equal the row means.
`seconds`: wall (the lm_eval process, imports to exit), harness (its
total_evaluation_time_seconds: model load, task build, requests), requests (the tqdm time of
"Running loglikelihood requests", whole seconds), requests_n (loglikelihood requests made),
questions_per_s = n / harness, questions_per_s_requests = n / requests, loadavg_at_end (the
1/5/15-minute load averages when the set finished: other processes on the machine slow it).
"""

import argparse
import json
import os
import platform
import re
import sys
from importlib.metadata import version
from pathlib import Path

SETS = [
    "arc_easy",
    "arc_challenge",
    "sciq",
    "piqa",
    "hellaswag",
    "winogrande",
    "boolq",
    "copa",
    "openbookqa",
]
# Sets whose harness config reports acc_norm too (the others report acc only).
ACC_NORM = {"arc_easy", "arc_challenge", "sciq", "piqa", "hellaswag", "openbookqa"}
TARGET_DELIMITER = " "


def fail(msg: str) -> None:
    """Exit with an error naming the offending file or row."""
    sys.exit(f"[collect-cloze] ERROR: {msg}")


def one_file(root: Path, pattern: str) -> Path:
    """The single file under root matching pattern (the latest if several runs wrote one)."""
    files = sorted(root.rglob(pattern))
    if not files:
        fail(f"no {pattern} under {root}")
    return files[-1]


def doc_gold(name: str, doc: dict) -> int:
    """Index of the correct choice from the data row's own answer field."""
    if name in ("arc_easy", "arc_challenge"):
        return doc["choices"]["label"].index(doc["answerKey"])
    if name == "openbookqa":
        return doc["choices"]["label"].index(doc["answerKey"].lstrip())
    if name == "sciq":
        return 3
    if name in ("piqa", "copa"):
        return int(doc["label"])
    if name == "hellaswag":
        return int(doc["label"])
    if name == "winogrande":
        return {"1": 0, "2": 1}[doc["answer"]]
    if name == "boolq":
        return int(doc["answer"])
    raise ValueError(name)


def n_choices(name: str, doc: dict) -> int:
    """Number of choices of the data row."""
    if name in ("arc_easy", "arc_challenge", "openbookqa"):
        return len(doc["choices"]["text"])
    if name == "hellaswag":
        return len(doc["endings"])
    if name == "sciq":
        return 4
    return 2


def first_argmax(values: list[float]) -> int:
    """np.argmax: the first index of the maximum."""
    return max(range(len(values)), key=lambda i: (values[i], -i))


def as_bool(v) -> bool:
    """is_greedy as logged ("True"/"False" strings, or bools)."""
    if isinstance(v, bool):
        return v
    if v in ("True", "False"):
        return v == "True"
    fail(f"unexpected is_greedy value {v!r}")


def read_rows(name: str, path: Path) -> list[dict]:
    """The set's rows from its samples JSONL, checked and sorted by doc_id."""
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            s = json.loads(line)
            where = f"{path.name}: doc {s['doc_id']}"
            args = s["arguments"]
            if isinstance(args, dict):
                args = [(a["arg_0"], a["arg_1"]) for a in args.values()]
            contexts = [a[0] for a in args]
            conts = [a[1] for a in args]
            lls = [float(r[0]) for r in s["filtered_resps"]]
            greedy = [as_bool(r[1]) for r in s["filtered_resps"]]
            k = n_choices(name, s["doc"])
            if not (len(lls) == len(contexts) == k):
                fail(f"{where}: {len(lls)} loglikelihoods, {len(contexts)} requests, {k} choices")
            target = s["target"]
            if name == "winogrande":
                gold = {"1": 0, "2": 1}[s["doc"]["answer"]]
                if any(c != TARGET_DELIMITER + str(target) for c in conts):
                    fail(f"{where}: continuations {conts} are not ' ' + target {target!r}")
            elif name == "copa":
                matches = [i for i, c in enumerate(conts) if c == TARGET_DELIMITER + str(target)]
                if len(matches) != 1:
                    fail(f"{where}: target {target!r} is not exactly one of the choices {conts}")
                gold = matches[0]
            else:
                gold = int(target)
            if gold != doc_gold(name, s["doc"]):
                fail(f"{where}: gold {gold} from target {target!r}, the doc says {doc_gold(name, s['doc'])}")
            # Recompute the harness's per-sample metrics (api/task.py process_results).
            if name == "winogrande":
                choice_len = None  # doc_to_choice = the partial contexts; acc only
            else:
                if any(not c.startswith(TARGET_DELIMITER) for c in conts):
                    fail(f"{where}: a continuation lacks the target delimiter: {conts}")
                choice_len = [len(c) - len(TARGET_DELIMITER) for c in conts]
            acc = 1.0 if first_argmax(lls) == gold else 0.0
            if acc != s["acc"]:
                fail(f"{where}: recomputed acc {acc} != logged {s['acc']}")
            row = {
                "doc_id": int(s["doc_id"]),
                "gold": gold,
                "contexts": contexts if len(set(contexts)) > 1 else contexts[:1],
                "continuations": conts if len(set(conts)) > 1 else conts[:1],
                "loglikelihoods": lls,
                "is_greedy": greedy,
                "acc": s["acc"],
            }
            if name in ACC_NORM:
                norm = first_argmax([ll / n for ll, n in zip(lls, choice_len)])
                acc_norm = 1.0 if norm == gold else 0.0
                if acc_norm != s["acc_norm"]:
                    fail(f"{where}: recomputed acc_norm {acc_norm} != logged {s['acc_norm']}")
                row["acc_norm"] = s["acc_norm"]
            elif "acc_norm" in s:
                fail(f"{where}: logs acc_norm, which {name} is not expected to report")
            if len(set(contexts)) > 1 and len(set(conts)) > 1:
                fail(f"{where}: neither contexts nor continuations are shared")
            rows.append(row)
    rows.sort(key=lambda r: r["doc_id"])
    ids = [r["doc_id"] for r in rows]
    if ids != list(range(len(rows))):
        fail(f"{path}: doc_ids are not 0..{len(rows) - 1}")
    return rows


def tqdm_seconds(log: Path) -> tuple[float | None, int | None]:
    """Elapsed seconds and count of the final 'Running loglikelihood requests' tqdm line."""
    text = log.read_text(encoding="utf-8", errors="replace")
    pat = r"Running loglikelihood requests: 100%\|[^|]*\| (\d+)/\d+ \[(?:(\d+):)?(\d+):(\d+)<"
    found = re.findall(pat, text)
    if not found:
        return None, None
    n, h, m, s = found[-1]
    return float(int(h or 0) * 3600 + int(m) * 60 + int(s)), int(n)


def collect(work: Path, name: str) -> dict:
    """One set's entry: n, aggregate metrics, seconds, rows."""
    out = work / f"out_{name}"
    rows = read_rows(name, one_file(out, f"samples_spex_{name}_*.jsonl"))
    results = json.loads(one_file(out, "results_*.json").read_text(encoding="utf-8"))
    agg = results["results"][f"spex_{name}"]
    metrics = {"acc": agg["acc,none"]}
    if name in ACC_NORM:
        metrics["acc_norm"] = agg["acc_norm,none"]
    for m, v in metrics.items():
        mean = sum(r[m] for r in rows) / len(rows)
        if abs(mean - v) > 1e-12:
            fail(f"{name}: aggregate {m} {v} != mean of the rows {mean}")
    n = len(rows)
    harness = float(results["total_evaluation_time_seconds"])
    requests, requests_n = tqdm_seconds(work / f"out_{name}.log")
    seconds = {
        "wall": float((work / f"seconds_{name}").read_text().strip()),
        "harness": round(harness, 2),
        "requests": requests,
        "requests_n": requests_n,
        "questions_per_s": round(n / harness, 3),
        "questions_per_s_requests": round(n / requests, 3) if requests else None,
    }
    load = work / f"loadavg_{name}"
    if load.is_file():
        seconds["loadavg_at_end"] = [float(x) for x in load.read_text().split()]
    return {"n": n, "metrics": metrics, "seconds": seconds, "rows": rows}


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (empty where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def dumps(obj) -> str:
    """Compact JSON, one object per line inside each rows list."""
    head = {k: v for k, v in obj.items() if k != "tasks"}
    parts = [json.dumps(head, ensure_ascii=False)[:-1] + ', "tasks": {']
    tasks = []
    for name, t in obj["tasks"].items():
        meta = {k: v for k, v in t.items() if k != "rows"}
        rows = ",\n".join(json.dumps(r, ensure_ascii=False) for r in t["rows"])
        tasks.append(f"{json.dumps(name)}: {json.dumps(meta)[:-1]}, \"rows\": [\n{rows}]}}")
    parts.append("\n" + ",\n".join(tasks) + "}}\n")
    return "".join(parts)


def main() -> None:
    """Parse arguments, collect each set, write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--made-by", default="")
    ap.add_argument("--limit", type=int, default=200)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    ap.add_argument("--sets", nargs="+", default=SETS, choices=SETS)
    args = ap.parse_args()

    versions = {"python": platform.python_version()}
    for pkg in ("lm_eval", "torch", "transformers", "tokenizers", "datasets"):
        versions[pkg] = version(pkg)
    versions.update(dtype="float32", attn_implementation="eager", device="cpu",
                    batch_size=1, torch_threads=args.threads, cpu=cpu_name())
    tasks = {}
    for name in args.sets:
        tasks[name] = collect(args.work, name)
        t = tasks[name]
        print(f"[collect-cloze] {name}: {t['n']} rows, {t['metrics']}, {t['seconds']}")
    result = {"made_by": args.made_by, "versions": versions, "limit": args.limit, "tasks": tasks}
    text = dumps(result)
    if json.loads(text) != json.loads(json.dumps(result)):
        fail("the compact writer changed the data")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"[collect-cloze] wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
