#!/usr/bin/env bash
# How long a `modelplane get` takes from start to its answer, beside kubectl's: the median wall time of 11
# runs of each, against a control-plane address where nothing listens (so the time is the command's own
# start-up, its connection attempt and its one-line error). An optional argument names another checkout
# of modelplane to time as well (an older one, for an A/B).
#
#     bash bench/cli_start.sh [OTHER_CHECKOUT]
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
nowhere=http://127.0.0.1:9
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timed() {
    local log
    log=$(mktemp)
    for _ in $(seq 11); do
        /usr/bin/time -f "%e" "$@" >/dev/null 2>>"$log"
        tail -1 "$log"
    done | median
    rm -f "$log"
}
echo "modelplane ($(git -C "$here" rev-parse --short HEAD)): $(cd "$here" && timed python3 -m modelplane get isvc --server $nowhere) s"
if [ $# -gt 0 ]; then
    echo "modelplane ($1): $(cd "$1" && timed python3 -m modelplane get isvc --server $nowhere) s"
fi
echo "kubectl ($(kubectl version --client 2>/dev/null | head -1)): $(timed kubectl get pods --server $nowhere) s"
