#!/usr/bin/env bash
# Ingest benchmark: durably acknowledged events/s of the collector on SQLite.
#
# Builds the collector and the load generator in release mode, then for each SQLite
# synchronous mode starts the collector on a fresh temporary database (127.0.0.1, a free
# port), runs pulseline-loadgen at each connection count with 100-event batches, and checks
# that the stored count (GET /api/v1/stats) equals the acknowledged count, per run and at
# the end. Prints a markdown table (and writes it to $OUT).
#
# Usage: examples/loadgen/bench.sh            # full run: ~2 × 4 × (20 + 3) s
#   CONNS="8 32" SECONDS_PER_RUN=5 MODES=normal examples/loadgen/bench.sh   # quick
#
# Environment (all optional):
#   CONNS            connection counts             (default "8 16 32 64")
#   BATCH            events per request             (default 100)
#   SECONDS_PER_RUN  measured seconds per run       (default 20)
#   WARMUP           warm-up seconds per run        (default 3)
#   MODES            "full"/"normal": SQLite with that PULSELINE_SQLITE_SYNCHRONOUS;
#                    "postgres": one collector on PostgreSQL; "postgres-2": two replicas on
#                    one PostgreSQL database, each driven by its own loadgen with half the
#                    connections (default "full normal")
#   PG_URL           admin URL of a PostgreSQL server for the postgres modes, e.g.
#                    postgres://postgres@127.0.0.1:55432/postgres (a fresh database per mode).
#                    When that server runs on this machine, each run also reports its CPU
#                    per acknowledged event (every postgres process, from /proc) and its WAL
#                    bytes per event: give it a server of its own, or other clients' work
#                    counts too.
#   PG_INIT_SQL      SQL run on each fresh PostgreSQL database once the collector has migrated
#                    it (A/B of a schema or setting change without a rebuild)
#   SQLITE_INIT_SQL  the same for each fresh SQLite database (with the sqlite3 shell), e.g.
#                    tracked properties: "INSERT INTO tracked_properties VALUES
#                    (1, 'plan', 0, -1, 1), (1, 'flag', 0, -1, 2)"
#   LOADGEN_ARGS     extra pulseline-loadgen flags  (e.g. "--gzip")
#   OUT              markdown output file           (default target/loadgen-bench/results.md)
#   COLLECTOR_BIN    run this collector binary instead of the one built here (A/B runs of
#                    two builds, alternated, are what separate a change from machine noise)
#   LOADGEN_BIN      the same for the load generator (with both set, nothing is built)
#   KEEP_DB=1        keep the temporary databases (SQLite files and PostgreSQL databases;
#                    without it, both are removed when the script ends)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

CONNS="${CONNS:-8 16 32 64}"
BATCH="${BATCH:-100}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-20}"
WARMUP="${WARMUP:-3}"
MODES="${MODES:-full normal}"
LOADGEN_ARGS="${LOADGEN_ARGS:-}"
OUT="${OUT:-$ROOT/target/loadgen-bench/results.md}"

for tool in cargo jq curl; do
    command -v "$tool" >/dev/null || { echo "bench.sh needs $tool on PATH" >&2; exit 2; }
done

echo "== building (release)" >&2
if [[ -z "${COLLECTOR_BIN:-}" || -z "${LOADGEN_BIN:-}" ]]; then
    cargo build --release --quiet -p pulseline-collector -p pulseline-loadgen
fi
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)"
COLLECTOR="${COLLECTOR_BIN:-$TARGET_DIR/release/pulseline-collector}"
LOADGEN="${LOADGEN_BIN:-$TARGET_DIR/release/pulseline-loadgen}"

WORK="$(mktemp -d -t pulseline-bench.XXXXXX)"
COLLECTOR_PID=""
cleanup() {
    for pid in "$COLLECTOR_PID" "${REPLICA_PID:-}"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    if [[ "${KEEP_DB:-0}" == 1 ]]; then
        echo "kept $WORK" >&2
        [[ -s "$WORK/pg_databases" ]] && echo "kept databases: $(tr '\n' ' ' <"$WORK/pg_databases")" >&2
        return
    fi
    # The PostgreSQL databases this run created (names recorded by database_for).
    if [[ -s "$WORK/pg_databases" ]]; then
        while read -r name; do
            psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $name" >&2 || true
        done <"$WORK/pg_databases"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# The database URL of a mode: a SQLite file, or a fresh database on $PG_URL's server.
database_for() {
    local mode="$1" dir="$WORK/$1"
    case "$mode" in
    full | normal) echo "sqlite://$dir/pulseline.db" ;;
    postgres | postgres-2)
        [[ -n "${PG_URL:-}" ]] || { echo "MODES=$mode needs PG_URL" >&2; exit 2; }
        local name="pl_bench_${mode//-/_}_$$"
        psql -q "$PG_URL" -c "CREATE DATABASE $name" >&2
        echo "$name" >>"$WORK/pg_databases"
        echo "${PG_URL%/*}/$name"
        ;;
    *) echo "unknown mode $mode" >&2; exit 2 ;;
    esac
}

# Starts a collector on $2 (a database URL), output in $WORK/$1; sets COLLECTOR_PID, PORT,
# and, when it created the default project, WRITE_KEY and SECRET_KEY.
start_collector() {
    local mode="$1" url="$2" dir="$WORK/$1"
    mkdir -p "$dir"
    local sync=full
    [[ "$mode" == normal ]] && sync=normal
    PULSELINE_DATABASE_URL="$url" \
    PULSELINE_LISTEN="127.0.0.1:0" \
    PULSELINE_SQLITE_SYNCHRONOUS="$sync" \
    PULSELINE_LOG="${PULSELINE_LOG:-warn}" \
        "$COLLECTOR" serve >"$dir/stdout" 2>"$dir/stderr" &
    COLLECTOR_PID=$!
    for _ in $(seq 100); do
        if grep -q '^Listening on ' "$dir/stdout" 2>/dev/null; then break; fi
        kill -0 "$COLLECTOR_PID" 2>/dev/null || { cat "$dir/stderr" >&2; exit 1; }
        sleep 0.1
    done
    PORT="$(sed -n 's/^Listening on http:\/\/[^:]*:\([0-9]*\).*/\1/p' "$dir/stdout")"
    if grep -q 'write key:' "$dir/stdout"; then
        WRITE_KEY="$(sed -n 's/^ *write key: *\(plw_[^ ]*\).*/\1/p' "$dir/stdout")"
        SECRET_KEY="$(sed -n 's/^ *secret key: *\([^ ]*\).*/\1/p' "$dir/stdout")"
    fi
    if [[ -z "$PORT" || -z "$WRITE_KEY" || -z "$SECRET_KEY" ]]; then
        echo "collector did not print its port and keys:" >&2
        cat "$dir/stdout" "$dir/stderr" >&2
        exit 1
    fi
    curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null
}

stop_collector() {
    kill -TERM "$COLLECTOR_PID"
    wait "$COLLECTOR_PID" || true
    COLLECTOR_PID=""
    if [[ -n "${REPLICA_PID:-}" ]]; then
        kill -TERM "$REPLICA_PID"
        wait "$REPLICA_PID" || true
        REPLICA_PID=""
    fi
}

# The postmaster's pid, when the server of $1 (a database URL) runs on this machine: the
# parent of its checkpointer, a process that lives as long as the server.
pg_postmaster() {
    local child
    child="$(psql -qtA "$1" -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")"
    [[ -n "$child" && -r "/proc/$child/stat" ]] || return 0
    sed 's/.*) //' "/proc/$child/stat" | cut -d' ' -f2
}

# CPU seconds (user + system) a PostgreSQL server has used so far: the postmaster and every
# process it has now, plus (the postmaster's cutime/cstime) every child it has reaped, so
# backends that exit during a run still count.
pg_cpu_seconds() {
    local postmaster="$1" ticks pids
    ticks="$(getconf CLK_TCK)"
    pids="$postmaster $(pgrep -P "$postmaster" | tr '\n' ' ')"
    for pid in $pids; do
        # Fields after the command name's ')': state is field 3, utime..cstime 14..17.
        sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f12-15
    done | awk -v t="$ticks" '{s += $1 + $2 + $3 + $4} END {printf "%.2f", s / t}'
}

# Runs the load: one loadgen, or for postgres-2 one per replica with half the connections
# each, merged into one JSON object (sums of rates, the worse of each latency percentile).
run_load() {
    local conns="$1"
    if [[ "$mode" != postgres-2 ]]; then
        # shellcheck disable=SC2086 # LOADGEN_ARGS is a list of flags
        "$LOADGEN" --url "http://127.0.0.1:$PORT" --write-key "$WRITE_KEY" \
            --secret-key "$SECRET_KEY" --pid "$COLLECTOR_PID" --conns "$conns" --batch "$BATCH" \
            --seconds "$SECONDS_PER_RUN" --warmup "$WARMUP" --json $LOADGEN_ARGS
        return
    fi
    local half=$(((conns + 1) / 2))
    # shellcheck disable=SC2086
    "$LOADGEN" --url "http://127.0.0.1:$PORT" --write-key "$WRITE_KEY" --pid "$COLLECTOR_PID" \
        --conns "$half" --batch "$BATCH" --seconds "$SECONDS_PER_RUN" --warmup "$WARMUP" \
        --json $LOADGEN_ARGS >"$WORK/a.json" &
    local a=$!
    # shellcheck disable=SC2086
    "$LOADGEN" --url "http://127.0.0.1:$REPLICA_PORT" --write-key "$WRITE_KEY" \
        --pid "$REPLICA_PID" --conns "$half" --batch "$BATCH" --seconds "$SECONDS_PER_RUN" \
        --warmup "$WARMUP" --json $LOADGEN_ARGS >"$WORK/b.json"
    wait "$a"
    jq -s --argjson conns "$conns" '.[0] as $a | .[1] as $b | $a
        | .conns = $conns
        | .events_per_s = ($a.events_per_s + $b.events_per_s)
        | .requests_per_s = ($a.requests_per_s + $b.requests_per_s)
        | .acked_events_total = ($a.acked_events_total + $b.acked_events_total)
        | .latency_ms = ($a.latency_ms | with_entries(.value = ([.value, $b.latency_ms[.key]] | max)))
        | .errors = ($a.errors + $b.errors)
        | .io_errors = ($a.io_errors + $b.io_errors)
        | .collector.peak_rss_mb = ([$a.collector.peak_rss_mb, $b.collector.peak_rss_mb] | max)
        | .collector.cpu_cores = ($a.collector.cpu_cores + $b.collector.cpu_cores)
        | .loadgen_cpu_cores = ($a.loadgen_cpu_cores + $b.loadgen_cpu_cores)
        | .verified = true' "$WORK/a.json" "$WORK/b.json"
}

mkdir -p "$(dirname "$OUT")"
{
    echo "Run $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores, $(uname -r); batch $BATCH events," \
        "${SECONDS_PER_RUN} s measured after ${WARMUP} s warm-up${LOADGEN_ARGS:+, loadgen $LOADGEN_ARGS}${COLLECTOR_BIN:+; collector $COLLECTOR_BIN}."
    echo
    echo "| sync | conns | events/s | req/s | p50 ms | p90 ms | p99 ms | max ms | errors | collector peak RSS MB | collector CPU | loadgen CPU | load1 before | stored = acked | PostgreSQL CPU µs/event | WAL bytes/event |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---:|---:|"
} >"$OUT"

failed=0
for mode in $MODES; do
    WRITE_KEY="" SECRET_KEY="" REPLICA_PID=""
    url="$(database_for "$mode")"
    start_collector "$mode" "$url"
    if [[ "$mode" == postgres-2 ]]; then
        first_pid=$COLLECTOR_PID first_port=$PORT
        start_collector "$mode-replica" "$url"
        REPLICA_PID=$COLLECTOR_PID REPLICA_PORT=$PORT
        COLLECTOR_PID=$first_pid PORT=$first_port
    fi
    POSTMASTER=""
    if [[ "$url" == postgres* ]]; then
        POSTMASTER="$(pg_postmaster "$url")"
        if [[ -n "${PG_INIT_SQL:-}" ]]; then psql -q -v ON_ERROR_STOP=1 "$url" -c "$PG_INIT_SQL" >&2; fi
    elif [[ -n "${SQLITE_INIT_SQL:-}" ]]; then
        sqlite3 -bail -cmd ".timeout 5000" "${url#sqlite://}" "$SQLITE_INIT_SQL" >&2
    fi
    echo "== synchronous=$mode: collector pid $COLLECTOR_PID on port $PORT" >&2
    acked_total=0
    for conns in $CONNS; do
        load1="$(cut -d' ' -f1 /proc/loadavg)"
        echo "-- $conns conns (load1 $load1)" >&2
        if [[ -n "$POSTMASTER" ]]; then
            pg_cpu_before="$(pg_cpu_seconds "$POSTMASTER")"
            wal_before="$(psql -qtA "$url" -c "SELECT pg_current_wal_lsn()")"
        fi
        if ! json="$(run_load "$conns")"; then
            failed=1
        fi
        if [[ -n "$POSTMASTER" ]]; then
            pg_cpu="$(awk -v a="$pg_cpu_before" -v b="$(pg_cpu_seconds "$POSTMASTER")" 'BEGIN {print b - a}')"
            wal="$(psql -qtA "$url" -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$wal_before')")"
            json="$(echo "$json" | jq --argjson cpu "$pg_cpu" --argjson wal "$wal" \
                '.postgres = {cpu_s: $cpu, cpu_us_per_event: ($cpu * 1e6 / .acked_events_total),
                              wal_bytes_per_event: ($wal / .acked_events_total)}')"
        fi
        echo "$json" >>"$WORK/runs.jsonl"
        echo "$json" | jq -c '{conns, events_per_s, requests_per_s, latency_ms, errors, io_errors, collector, loadgen_cpu_cores, postgres, verified}' >&2
        acked_total=$((acked_total + $(echo "$json" | jq .acked_events_total)))
        echo "$json" | jq -r --arg mode "$mode" --arg load1 "$load1" '
            def r(n): (. * n | round) / n;
            def errs: ([.errors | to_entries[] | "\(.key)×\(.value)"]
                       + (if .io_errors > 0 then ["io×\(.io_errors)"] else [] end))
                      | if length == 0 then "0" else join(" ") end;
            "| \($mode) | \(.conns) | \(.events_per_s | round) | \(.requests_per_s | r(10)) " +
            "| \(.latency_ms.p50 | r(10)) | \(.latency_ms.p90 | r(10)) | \(.latency_ms.p99 | r(10)) " +
            "| \(.latency_ms.max | r(10)) | \(errs) | \(.collector.peak_rss_mb | r(10)) " +
            "| \(.collector.cpu_cores // 0 | r(100)) | \(.loadgen_cpu_cores // 0 | r(100)) " +
            "| \($load1) | \(if .verified then "yes" else "NO" end) " +
            "| \(.postgres.cpu_us_per_event // "–" | if type == "number" then r(10) else . end) " +
            "| \(.postgres.wal_bytes_per_event // "–" | if type == "number" then round else . end) |"' >>"$OUT"
    done
    stored="$(curl -fsS -H "Authorization: Bearer $SECRET_KEY" "http://127.0.0.1:$PORT/api/v1/stats" | jq .events_total)"
    hwm="$(awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$COLLECTOR_PID/status")"
    db_mb="$(du -sm "$WORK/$mode" | cut -f1)"
    if [[ "$url" == postgres* ]]; then
        db_mb="$(psql -qtA "$url" -c "SELECT pg_database_size(current_database()) / 1048576")"
    fi
    stop_collector
    if [[ "$stored" == "$acked_total" ]]; then verdict="equal"; else verdict="DIFFERENT"; failed=1; fi
    echo "synchronous=$mode: stored events_total $stored, acknowledged $acked_total: $verdict; collector VmHWM $hwm MB; database $db_mb MB" \
        | tee -a "$WORK/summary" >&2
done

{
    echo
    sed 's/^/- /' "$WORK/summary"
} >>"$OUT"
echo >&2
cat "$OUT"
exit "$failed"
