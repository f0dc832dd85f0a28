# Sourced by the scripts that start a local Ballista cluster (bench-cluster.sh,
# bench-cluster-scale.sh, run-on-cluster.sh), from the project root. cluster_up runs BIN, the
# `mirador` binary (bench_setup sets it).

CLUSTER=""

# bench_setup RUN NAME: the benchmarks' checks and build. RUN must be a committed run; GNU time
# measures the client's peak memory. Sets TIME, BIN and EXPOSURE (the `exposure` example).
bench_setup() {
    [ -f "$1/manifest.json" ] || { echo "no committed run at $1 (run: just bench-scale 10000000)"; exit 1; }
    TIME=/usr/bin/time
    [ -x "$TIME" ] || { echo "$2 needs GNU time at /usr/bin/time (Debian: apt install time) for peak memory"; exit 1; }
    cargo build --release -q --workspace --examples
    BIN=target/release/mirador
    EXPOSURE=target/release/examples/exposure
}

# cluster_up LOG EXECUTORS PORT [WORK_DIR]: starts `mirador cluster up` in the background (port 0:
# a free one), its output in LOG, and waits until it has started its executors. Sets CLUSTER (its
# pid), PIDS (the executors') and ADDRESS (the scheduler's, ballista://...).
cluster_up() {
    local log=$1 executors=$2 port=$3 work=${4:-}
    $BIN cluster up --executors "$executors" --port "$port" ${work:+--work-dir "$work"} > "$log" 2>&1 &
    CLUSTER=$!
    for _ in $(seq 600); do
        grep -q "^executors:" "$log" 2>/dev/null && break
        kill -0 "$CLUSTER" 2>/dev/null || break
        sleep 0.1
    done
    PIDS=$(sed -n 's/.*pids \[\(.*\)\].*/\1/p' "$log" | tr -d ',')
    ADDRESS=$(sed -n 's/^scheduler: //p' "$log")
    [ -n "$PIDS" ] && [ -n "$ADDRESS" ] || { cat "$log"; echo "the cluster did not start"; exit 1; }
}

# cluster_down: stops the cluster cluster_up started (its processes end with it).
cluster_down() {
    kill "$CLUSTER" 2>/dev/null || true
    wait "$CLUSTER" 2>/dev/null || true
}

# peak PID: the process's peak resident memory so far, or `ended`.
peak() {
    awk '/VmHWM/{printf "%.2f GiB", $2/1048576}' "/proc/$1/status" 2>/dev/null || echo ended
}
