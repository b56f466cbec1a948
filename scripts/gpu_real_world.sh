#!/usr/bin/env bash
# Real-world training on a GPU machine in one command that ends within a wall-time limit.
#
#   scripts/gpu_real_world.sh train                  # a fresh run
#   scripts/gpu_real_world.sh resume CHECKPOINT.pt [PREVIOUS/time_to_policy.json]
#   scripts/gpu_real_world.sh resume last            # the same machine, still up: its newest run
#   scripts/gpu_real_world.sh throughput             # end-to-end training env-steps/s
#   scripts/gpu_real_world.sh breakdown              # what each term costs the env step
#
# train / resume: trains with training/configs/real_world.yaml (terrain and its curriculum,
# every randomization term, 0-40 ms latency) for a time budget, exporting a snapshot policy
# every SNAPSHOT_MIN minutes, while python -m training.robustness.time_to_policy evaluates each
# snapshot on WORKERS CPU processes as it appears. Training runs under a deadline (SIGINT: it
# saves a checkpoint to resume from), so the whole command ends within TOTAL_S seconds; it ends
# FINAL_S before the watcher's last evaluation may start, so that its final snapshot is
# evaluated. Ctrl-C or SIGTERM to this script stops training (with a checkpoint) and the
# watcher (with its report) the same way, then packs what there is; a second one kills them.
# resume continues from a checkpoint of an earlier command (iterations and training time go
# on); give that command's time_to_policy.json too and its evaluated snapshots count ('last'
# finds both in this machine's newest scratch folder).
# throughput: benchmarks/gpu_throughput.py with the same config at BENCH_NUM_ENVS envs.
# breakdown: benchmarks/env_step_breakdown.py with the same config at NUM_ENVS envs (each
# randomization term and the terrain off in turn, the solver at 10 and 4 iterations, and a
# kernel profile of the full step).
#
# OUT receives at most 7 files: results.tar.gz (run folder without checkpoints, snapshot
# policies, the final export, every robustness report, logs), the newest checkpoint
# (model_<iteration>.pt or model_<iteration>_interrupted.pt, for resume), time_to_policy.json,
# .md and .png, train.log and summary.txt; throughput writes gpu_throughput_real_world.json and
# its log, breakdown env_step_breakdown.json and its log.
#
# Settings (environment variables; defaults for one H200 with 16 CPU cores):
#   OUT              output folder (default: $OUT if set, else runs/gpu_real_world)
#   DEVICE           cuda:0 (cpu: a tiny dry run of the same code path)
#   NUM_ENVS         4096                      training environments
#   TOTAL_S          560    the command ends within this many seconds of the script's start
#                           (leave room for what the command runs before it)
#   STARTUP_S        40     expected start-up before training's clock runs (imports, env
#                           set-up: 16 s on a fresh H200); kernel compilation, torch.compile
#                           and graph capture come after, in the first iteration, inside the
#                           training budget (192 s on a fresh H200, 8 s on a warm cache)
#   EVAL_S           60     expected time of one snapshot's evaluation (the last one)
#   FINAL_S          30     time for training to stop and write its final snapshot before the
#                           watcher's deadline for starting an evaluation
#   TRAIN_MIN        (TOTAL_S - STARTUP_S - FINAL_S - EVAL_S - 20) / 60, training time
#                           budget [min] (20 s: packing the files)
#   SNAPSHOT_MIN     1      minutes of training between snapshot policies
#   WORKERS          12     robustness worker processes
#   SUITE            full   robustness suite (full or ci)
#   RUN_NAME         real_world
#   CONFIG           training/configs/real_world.yaml
#   TRAIN_ARGS       extra options of python -m training.train (e.g. smaller nets for a dry run)
#   STOP_MARGIN_S    20     training stops itself this long before its deadline (the last
#                           iteration, its checkpoint and export; a GPU run's deadline SIGINT
#                           left no checkpoint twice, so the stop does not rely on it)
#   WATCH_ARGS       extra options of the watcher (e.g. --only nominal for a dry run)
#   BENCH_NUM_ENVS   "4096 8192"              throughput: sizes measured
#   BENCH_ARGS       "--train-iterations 30"  throughput: extra options of the benchmark
#   BREAKDOWN_ARGS   "--terms latency joint_friction joint_damping armature link_mass base_com
#                    pushes terrain"          breakdown: its options (each variant compiles and
#                                             captures its own step, about a minute each)
#   SITE             /tmp/gpusite             a pip --target folder put first on PYTHONPATH
#                                             when it exists (MuJoCo Warp, tyro, ...)
#   PYTHON           .venv/bin/python if present, else python3
#   WORK             scratch folder (default: a new temporary folder; kept)
#   PLAN_ONLY        1: print the plan (budgets, commands) and exit
set -u -o pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
start_s=$(date +%s)

newest_checkpoint() {  # the model_<iteration>[_interrupted].pt of folder $1 of most iterations
  ls "$1"/model_*.pt 2>/dev/null \
    | awk -F'model_' '{ split($NF, a, /[_.]/); print a[1] "\t" $0 }' | sort -n | tail -1 | cut -f2
}

mode=${1:-}
RUN_NAME=${RUN_NAME:-real_world}
case "$mode" in
  train | throughput | breakdown) ;;
  resume)
    checkpoint=${2:-}
    previous=${3:-}
    if [ "$checkpoint" = last ]; then  # the newest scratch folder of this machine
      checkpoint=
      for folder in $(ls -dt /tmp/gpu_real_world.*/ 2>/dev/null); do
        checkpoint=$(newest_checkpoint "${folder}runs/$RUN_NAME")
        if [ -n "$checkpoint" ]; then
          [ -f "${folder}time_to_policy/time_to_policy.json" ] \
            && previous=${folder}time_to_policy/time_to_policy.json
          break
        fi
      done
      [ -n "$checkpoint" ] || checkpoint="last (no checkpoint under /tmp/gpu_real_world.*:" \
" another machine; give the path of the one a previous job wrote)"
    fi
    if [ -z "$checkpoint" ] || [ ! -f "$checkpoint" ]; then
      echo "resume: no checkpoint file at '${checkpoint}' (give the model_<iteration>.pt a" \
           "previous job wrote)" >&2
      exit 2
    fi
    if [ -n "$previous" ] && [ ! -f "$previous" ]; then
      echo "resume: no time_to_policy.json at '${previous}'" >&2
      exit 2
    fi ;;
  *)
    sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2 ;;
esac

OUT=${OUT:-$repo/runs/gpu_real_world}
DEVICE=${DEVICE:-cuda:0}
NUM_ENVS=${NUM_ENVS:-4096}
TOTAL_S=${TOTAL_S:-560}
STARTUP_S=${STARTUP_S:-40}
EVAL_S=${EVAL_S:-60}
FINAL_S=${FINAL_S:-30}
PACK_S=20
TRAIN_MIN=${TRAIN_MIN:-$(awk -v t="$TOTAL_S" -v s="$STARTUP_S" -v f="$FINAL_S" -v e="$EVAL_S" \
  -v p="$PACK_S" 'BEGIN { m = (t - s - f - e - p) / 60; if (m < 0.1) m = 0.1; printf "%.2f", m }')}
SNAPSHOT_MIN=${SNAPSHOT_MIN:-1}
WORKERS=${WORKERS:-12}
SUITE=${SUITE:-full}
CONFIG=${CONFIG:-training/configs/real_world.yaml}
TRAIN_ARGS=${TRAIN_ARGS:-}
STOP_MARGIN_S=${STOP_MARGIN_S:-20}
WATCH_ARGS=${WATCH_ARGS:-}
BENCH_NUM_ENVS=${BENCH_NUM_ENVS:-4096 8192}
BENCH_ARGS=${BENCH_ARGS:---train-iterations 30}
BREAKDOWN_ARGS=${BREAKDOWN_ARGS:---terms latency joint_friction joint_damping armature link_mass base_com pushes terrain}
SITE=${SITE:-/tmp/gpusite}
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$repo/.venv/bin/python" ]; then PYTHON=$repo/.venv/bin/python; else PYTHON=python3; fi
fi
if [ -z "${WORK:-}" ]; then
  if [ "${PLAN_ONLY:-0}" = 1 ] || [ "$mode" = throughput ] || [ "$mode" = breakdown ]; then
    WORK=/tmp/gpu_real_world.SCRATCH
  else WORK=$(mktemp -d /tmp/gpu_real_world.XXXXXX); fi
fi
export PYTHONPATH="$([ -d "$SITE" ] && echo "$SITE:")$repo${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

elapsed() { echo $(( $(date +%s) - start_s )); }
left() {  # seconds left before TOTAL_S, less the reserve $1 (at least 1)
  local s=$(( TOTAL_S - $(date +%s) + start_s - $1 ))
  echo $(( s > 0 ? s : 1 ))
}

run_dir=$WORK/runs/$RUN_NAME
train_cmd=("$PYTHON" -m training.train --config "$CONFIG" --device "$DEVICE"
           --num-envs "$NUM_ENVS" --time-budget-min "$TRAIN_MIN"
           --snapshot-interval-min "$SNAPSHOT_MIN" --run-name "$RUN_NAME"
           --log-root "$WORK/runs" --export-dir "$WORK/models" --runner.keep-checkpoints 1)
[ "$mode" = resume ] && train_cmd+=(--resume "$checkpoint")
# shellcheck disable=SC2206  # TRAIN_ARGS is a list of options
train_cmd+=($TRAIN_ARGS)
watch_cmd=("$PYTHON" -m training.robustness.time_to_policy "$run_dir" --watch
           --stop-file "$WORK/train.done" --suite "$SUITE" --workers "$WORKERS"
           --out "$WORK/time_to_policy")
[ -n "${previous:-}" ] && watch_cmd+=(--previous "$previous")
# shellcheck disable=SC2206  # WATCH_ARGS is a list of options
watch_cmd+=($WATCH_ARGS)
# shellcheck disable=SC2206
bench_cmd=("$PYTHON" benchmarks/gpu_throughput.py --config "$CONFIG" --device "$DEVICE"
           --num-envs $BENCH_NUM_ENVS --out "$OUT/gpu_throughput_real_world.json" $BENCH_ARGS)
# shellcheck disable=SC2206
breakdown_cmd=("$PYTHON" benchmarks/env_step_breakdown.py --config "$CONFIG" --device "$DEVICE"
               --num-envs "$NUM_ENVS" --out "$OUT/env_step_breakdown.json" $BREAKDOWN_ARGS)

echo "[gpu_real_world] $mode: device $DEVICE, out $OUT, scratch $WORK, ends within ${TOTAL_S} s"
if [ "$mode" = throughput ]; then
  echo "[gpu_real_world] benchmark: ${bench_cmd[*]}"
elif [ "$mode" = breakdown ]; then
  echo "[gpu_real_world] breakdown: ${breakdown_cmd[*]}"
else
  echo "[gpu_real_world] training: ${TRAIN_MIN} min budget, snapshot every ${SNAPSHOT_MIN} min:" \
       "${train_cmd[*]}"
  echo "[gpu_real_world] watcher: ${WORKERS} workers, ${SUITE} suite: ${watch_cmd[*]}"
fi
[ "${PLAN_ONLY:-0}" = 1 ] && exit 0

# what this needs, checked before anything starts
if ! "$PYTHON" - <<'EOF'
import importlib
missing = []
for name in ('torch', 'warp', 'mujoco', 'mujoco_warp', 'onnx', 'onnxruntime', 'tyro', 'yaml',
             'matplotlib'):
    try:
        importlib.import_module(name)
    except Exception as exc:  # noqa: B902
        missing.append(f'{name} ({type(exc).__name__}: {exc})')
if missing:
    raise SystemExit('missing Python packages: ' + '; '.join(missing)
                     + '. Install requirements-gpu.txt (e.g. wheels into a pip --target folder'
                     ' named by SITE; tyro needs docstring-parser and typeguard too).')
EOF
then
  exit 3
fi
mkdir -p "$OUT" "$WORK"

# Each command below runs under `timeout`, in a process group of its own that Ctrl-C at the
# terminal or a signal to this script does not reach: the first SIGINT or SIGTERM is passed on
# as SIGINT (training saves a checkpoint, the watcher its report), a second kills them.
children=
signalled=
on_signal() {  # $1: INT or TERM
  local pid
  if [ -n "$signalled" ]; then
    for pid in $children; do kill -KILL -- "-$pid" 2>/dev/null; done
    exit $((128 + $(kill -l "$1")))
  fi
  signalled=$1
  echo "[gpu_real_world] SIG$1: stopping (again to kill)" >&2
  for pid in $children; do kill -INT "$pid" 2>/dev/null; done
}
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
wait_for() {  # the exit status of background job $1, once it has ended
  local status
  while :; do
    wait "$1"
    status=$?
    # a trapped signal ends the wait early (status > 128) while the job may still run
    if [ "$status" -le 128 ] || ! kill -0 "$1" 2>/dev/null; then return "$status"; fi
  done
}
finish() {  # exit with status $1, or as killed by the signal received
  [ -n "$signalled" ] && exit $((128 + $(kill -l "$signalled")))
  exit "$1"
}

if [ "$mode" = throughput ] || [ "$mode" = breakdown ]; then
  if [ "$mode" = throughput ]; then cmd=("${bench_cmd[@]}") log=gpu_throughput_real_world.log
  else cmd=("${breakdown_cmd[@]}") log=env_step_breakdown.log; fi
  timeout -s INT -k 15 "$(left 10)" "${cmd[@]}" > >(
    trap '' INT TERM  # keep the log going while the benchmark stops
    grep --line-buffered -v '^Module .* load on device' | tee "$OUT/$log"
  ) 2>&1 &
  children=$!
  wait_for "$children"
  status=$?
  echo "[gpu_real_world] benchmark exit status $status after $(elapsed) s"
  finish "$status"
fi

# training stops itself STOP_MARGIN_S before its deadline (--stop-at-unix-s: the last
# iteration, the checkpoint and the export fit in the margin); at the deadline a SIGINT stops
# it in any case (it then saves model_<it>_interrupted.pt), FINAL_S before the watcher's
# deadline so that its final snapshot is evaluated
rm -f "$WORK/train.done"  # the watcher's stop file: written once training has ended
train_limit_s=$(left $((FINAL_S + EVAL_S + PACK_S)))
train_began=$(date +%s)
train_cmd+=(--stop-at-unix-s $((train_began + train_limit_s - STOP_MARGIN_S)))
timeout -s INT -k 30 "$train_limit_s" "${train_cmd[@]}" > "$WORK/train.log" 2>&1 &
train_pid=$!
children=$train_pid
# the watcher: starts no evaluation in the last EVAL_S + PACK_S seconds, stopped at PACK_S
watch_timeout_min=$(awk -v s="$(left $((EVAL_S + PACK_S)))" 'BEGIN { printf "%.3f", s / 60 }')
timeout -s INT -k 10 "$(left "$PACK_S")" "${watch_cmd[@]}" --timeout-min "$watch_timeout_min" \
  > "$WORK/time_to_policy.log" 2>&1 &
watch_pid=$!
children="$train_pid $watch_pid"
echo "[gpu_real_world] training (pid $train_pid, stops itself after" \
     "$((train_limit_s - STOP_MARGIN_S)) s, --stop-at-unix-s; stopped after ${train_limit_s} s" \
     "at most) and the watcher (pid $watch_pid) started"
wait_for "$train_pid"
train_status=$?
echo "$train_status" > "$WORK/train.status"
echo $(( $(date +%s) - train_began )) > "$WORK/train.seconds"
touch "$WORK/train.done"
echo "[gpu_real_world] training exited with status $train_status after $(elapsed) s"
wait_for "$watch_pid"
watch_status=$?
echo "[gpu_real_world] watcher exited with status $watch_status after $(elapsed) s" \
     "(0: a snapshot meets every target; 1: none does)"

# pack: a few files only
checkpoint_out=$(newest_checkpoint "$run_dir")
[ -n "$checkpoint_out" ] && cp "$checkpoint_out" "$OUT/"
for name in time_to_policy.json time_to_policy.md time_to_policy.png; do
  [ -f "$WORK/time_to_policy/$name" ] && cp "$WORK/time_to_policy/$name" "$OUT/"
done
grep -v '^Module .* load on device' "$WORK/train.log" > "$OUT/train.log"
tar -C "$WORK" --exclude='*.pt' -czf "$OUT/results.tar.gz" .
if [ "$(stat -c %s "$OUT/results.tar.gz")" -gt $((15 * 1024 * 1024)) ]; then
  # too big to come back as one file: keep the reports, the logs and the final policy only
  echo "[gpu_real_world] results.tar.gz over 15 MiB: snapshot ONNX files and TensorBoard" \
       "events left out"
  tar -C "$WORK" --exclude='*.pt' --exclude='snapshots/*.onnx' --exclude='events.out.*' \
    -czf "$OUT/results.tar.gz" .
fi
{
  echo "mode $mode, device $DEVICE, $NUM_ENVS envs, training budget $TRAIN_MIN min," \
       "snapshots every $SNAPSHOT_MIN min, suite $SUITE on $WORKERS workers"
  echo "training exit status $train_status, watcher exit status $watch_status, $(elapsed) s"
  echo "the training process ran $(cat "$WORK/train.seconds") s; the training clock (time in" \
       "the progress lines below, summed over resumed commands) leaves out its start-up"
  echo "checkpoint for resume: $(basename "${checkpoint_out:-none}")"
  grep -E '^it [0-9]+' "$WORK/train.log" | tail -3
  grep '^\[train\]' "$WORK/train.log" | tail -2
  grep '^\[time_to_policy\]' "$WORK/time_to_policy.log" | tail -20
  [ -f "$WORK/time_to_policy/time_to_policy.md" ] && cat "$WORK/time_to_policy/time_to_policy.md"
} > "$OUT/summary.txt"
cat "$OUT/summary.txt"
echo "[gpu_real_world] wrote $(ls "$OUT" | tr '\n' ' ')in $OUT after $(elapsed) s"
[ "$train_status" = 0 ] || [ "$train_status" = 124 ] || finish "$train_status"
finish 0
