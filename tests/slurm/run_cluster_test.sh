#!/usr/bin/env bash
# A real single-node Slurm cluster for spex's array script (issue 19's proof).
#
#   tests/slurm/run_cluster_test.sh SPEX MODEL_DIR TASK_JSONL
#
# Run by `cargo test --test slurm_cluster -- --ignored` (which writes a tiny random model and its
# task, and passes the spex binary), and so by .ci/run. As root it installs Debian's slurm-wlm and
# munge if missing, generates a munge key and a slurm.conf (localhost, no systemd:
# proctrack/linuxproc, task/none), starts munged, slurmctld and slurmd in a scratch folder, and:
#   1. submits the `spex plan --emit slurm` array script of a 3-shard plan, joins the shards with
#      `spex solve --plan`, and compares values.npy, interactions.json and spectrum.json byte for
#      byte with a one-machine `spex run` + `spex solve` of the same plan;
#   2. does the same for a slower plan while requeueing one array task mid-run
#      (`scontrol requeue`), and checks that the requeued task resumed from its log, that its log
#      holds every row of the shard exactly once, and that it evaluated no batch twice.
# Teardown (daemons stopped, scratch folder removed) always runs. Every wait is bounded.
# Outside CI a missing package (or not being root) skips the test with one line; under .ci/run
# (SPEX_CI=1) a skip is a failure.
set -euo pipefail

SPEX=${1:?usage: run_cluster_test.sh SPEX MODEL_DIR TASK_JSONL}
MODEL=${2:?usage: run_cluster_test.sh SPEX MODEL_DIR TASK_JSONL}
TASK=${3:?usage: run_cluster_test.sh SPEX MODEL_DIR TASK_JSONL}
START=$(date +%s)

skip() {
    if [ "${SPEX_CI:-}" = 1 ]; then
        echo "FAIL: the Slurm cluster test cannot run under .ci/run: $*" >&2
        exit 1
    fi
    echo "SKIP: Slurm cluster test: $*"
    exit 0
}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

step() { echo "== [$(($(date +%s) - START)) s] $*"; }

# --- packages -------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || skip "needs root to start slurmd and munged"
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || skip "slurm-wlm and munge are not installed and there is no apt-get"
    step "installing slurm-wlm and munge"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null; } ||
        skip "apt-get could not install slurm-wlm and munge"
fi

# --- cluster --------------------------------------------------------------------------------
WORK=$(mktemp -d /tmp/spex-slurm.XXXXXX)
PIDS=()
teardown() {
    local rc=$?
    # Jobs still queued or running (a failure mid-run) are cancelled before the daemons stop, so
    # that no job step outlives the cluster.
    if [ -n "${SLURM_CONF:-}" ] && squeue -h -o %A 2>/dev/null | grep -q .; then
        scancel $(squeue -h -o %A | sort -u) 2>/dev/null || true
        for _ in $(seq 50); do squeue -h 2>/dev/null | grep -q . || break; sleep 0.2; done
    fi
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [ "$rc" != 0 ]; then
        for log in "$WORK"/slurmctld.log "$WORK"/slurmd.log "$WORK"/munged.log "$WORK"/plan-*/logs/*; do
            [ -f "$log" ] && { echo "--- $log"; tail -n 30 "$log"; }
        done
    fi
    rm -rf "$WORK"
    echo "== [$(($(date +%s) - START)) s] teardown done (exit $rc)"
}
trap teardown EXIT

mkdir -p "$WORK"/munge "$WORK"/state "$WORK"/spool
chmod 711 "$WORK"/munge
dd if=/dev/urandom of="$WORK"/munge/munge.key bs=1024 count=1 status=none
chmod 400 "$WORK"/munge/munge.key
SOCKET="$WORK"/munge/munge.socket
munged -F -f --key-file="$WORK"/munge/munge.key --socket="$SOCKET" \
    --pid-file="$WORK"/munge/munged.pid --seed-file="$WORK"/munge/munged.seed \
    --log-file="$WORK"/munged.log 2>>"$WORK"/munged.log &
PIDS+=($!)
for _ in $(seq 50); do [ -S "$SOCKET" ] && break; sleep 0.1; done
[ -S "$SOCKET" ] || fail "munged did not start (see $WORK/munged.log)"

HOST=$(hostname -s)
PORT=$((20000 + RANDOM % 20000))
CPUS=$(nproc)
export SLURM_CONF="$WORK"/slurm.conf
cat >"$SLURM_CONF" <<EOF
ClusterName=spextest
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCKET
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
step "starting slurmctld and slurmd (port $PORT, $CPUS CPUs)"
slurmctld -D -i -f "$SLURM_CONF" >/dev/null 2>&1 &
PIDS+=($!)
slurmd -D -f "$SLURM_CONF" -N "$HOST" >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do
    sinfo -h -N -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)' && break
    sleep 0.3
done
sinfo -h -N -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)' || fail "the node did not come up: $(sinfo -N 2>&1)"

# --- spex -------------------------------------------------------------------------------------
# `use_task FILE`: the run arguments of the array tasks and the one-machine runs.
use_task() { RUN_ARGS=(--model "$MODEL" --task "jsonl:$1"); }

# `plan NAME BUDGET [plan flags]`: the plan folder $WORK/plan-NAME.
plan() {
    local name=$1 budget=$2
    shift 2
    "$SPEX" plan --players 16 --budget "$budget" --seed 7 --out "$WORK/plan-$name" "$@" 2>&1
}

# `solve DIR OUT`: decode the plan in DIR into OUT-{interactions,spectrum}.json, OUT-values.npy.
solve() {
    "$SPEX" solve --plan "$1" --out "$2-interactions.json" --spectrum "$2-spectrum.json" \
        --values-out "$2-values.npy" 2>&1
}

# `same A B`: the decoded files of A and B are the same bytes.
same() {
    for f in values.npy interactions.json spectrum.json; do
        cmp "$1-$f" "$2-$f" || fail "$1-$f and $2-$f differ"
    done
    echo "values.npy, interactions.json and spectrum.json: byte-identical ($(basename "$1") vs $(basename "$2"))"
}

# `one_machine NAME`: the reference: the plan's copy run whole on this machine and decoded.
one_machine() {
    plan "$1-whole" "$2" >/dev/null
    "$SPEX" run --plan "$WORK/plan-$1-whole" "${RUN_ARGS[@]}" 2>&1 | tail -n 1
    solve "$WORK/plan-$1-whole" "$WORK/$1-whole" | tail -n 1
}

# `wait_job ID SECONDS`: until the job leaves the queue, or fail.
wait_job() {
    local deadline=$(($(date +%s) + $2))
    while squeue -h -j "$1" 2>/dev/null | grep -q .; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "job $1 still queued after $2 s: $(squeue -j "$1" 2>&1)"
        sleep 0.5
    done
}

# `records LOG`: whole records in a values log (a header line, then 24-byte records).
records() {
    [ -f "$1" ] || { echo 0; return; }
    local header size
    header=$(head -n 1 "$1" | wc -c)
    size=$(stat -c %s "$1")
    echo $(((size - header) / 24))
}

# 1. The array script of a 3-shard plan, against the one-machine run.
use_task "$TASK"
step "one-machine reference of a 120-mask plan"
one_machine fast 120
step "sbatch --array: 3 shards"
plan fast 120 --shards 3 --emit slurm -- "${RUN_ARGS[@]}"
JOB=$(sbatch --parsable "$WORK"/plan-fast/spex.sbatch)
wait_job "$JOB" 120
"$SPEX" status --plan "$WORK"/plan-fast
solve "$WORK"/plan-fast "$WORK"/fast | tail -n 1
same "$WORK"/fast "$WORK"/fast-whole

# 2. A slower plan (24 questions a mask), one task requeued mid-run.
for _ in 1 2 3 4 5 6 7 8; do cat "$TASK"; done >"$WORK"/task24.jsonl
use_task "$WORK"/task24.jsonl
step "sbatch --array: 3 shards of a slower plan, shard 1 to be requeued"
plan slow 1200 --shards 3 --emit slurm -- "${RUN_ARGS[@]}"
LOG="$WORK"/plan-slow/values-1-of-3.log
JOB=$(SPEX_LOG=warn,spex=debug sbatch --parsable "$WORK"/plan-slow/spex.sbatch)
# Shard 1's rows, from `spex status` once a shard has started (its log names the batches).
rows_of_shard_1() {
    "$SPEX" status --plan "$WORK"/plan-slow | sed -n 's/^shard 1\/3  rows \([0-9]*\)\.\.\([0-9]*\) .*/(\2 - \1)/p'
}
ROWS=""
deadline=$(($(date +%s) + 120))
while :; do
    [ -n "$ROWS" ] || ROWS=$(rows_of_shard_1)
    n=$(records "$LOG")
    # Mid-run: a quarter of the shard's rows stored or more, not all.
    if [ -n "$ROWS" ] && [ "$n" -ge $((ROWS / 4)) ] && [ "$n" -lt $((ROWS)) ]; then break; fi
    [ "$(date +%s)" -lt "$deadline" ] || fail "shard 1 never was mid-run (log: $n records)"
    sleep 0.1
done
scontrol requeue "${JOB}_1"
step "requeued task ${JOB}_1 with $n rows stored"
# A requeued job waits for its begin time; let it start now.
sleep 1
scontrol update JobId="${JOB}_1" StartTime=now >/dev/null 2>&1 || true
step "one-machine reference while the array runs"
one_machine slow 1200
wait_job "$JOB" 240
"$SPEX" status --plan "$WORK"/plan-slow
TASKLOG=$(ls "$WORK"/plan-slow/logs/*_1.out)
grep -E "resuming: [0-9]+ of [0-9]+ masks already in .*values-1-of-3.log" "$TASKLOG" ||
    fail "the requeued task did not resume from its log ($TASKLOG)"
# Every row of shard 1 stored once, and no batch of masks evaluated twice across both runs.
[ "$(records "$LOG")" = "$((ROWS))" ] || fail "the log of shard 1 holds $(records "$LOG") records for $((ROWS)) rows"
DUP=$(grep -o 'stored masks [0-9]*\.\.[0-9]*' "$TASKLOG" | sort | uniq -d)
[ -z "$DUP" ] || fail "batches stored twice by shard 1: $DUP"
RESUMED=$(grep -o 'resuming: [0-9]* of' "$TASKLOG" | awk '{print $2}' | tail -n 1)
[ "$RESUMED" -ge "$n" ] || fail "the requeued task found $RESUMED stored rows, but $n were stored when it was requeued"
echo "shard 1: $((ROWS)) rows, each stored once; requeued with $n stored, its second run found $RESUMED stored and evaluated only the rest"
solve "$WORK"/plan-slow "$WORK"/slow | tail -n 1
same "$WORK"/slow "$WORK"/slow-whole
step "passed"
