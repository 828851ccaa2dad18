#!/usr/bin/env bash
# Instructions (callgrind Ir) per produced and per fetched record in tidegate (memory
# backend, one shard), with a deterministic client (perf/callgrind_client.rs), so two
# builds can be compared to the instruction:
#
#   perf/callgrind.sh [RECORDS]         default 20000 records of 1,000 B, 16 per batch
#   TIDEGATE_BIN=/tmp/tidegate-old perf/callgrind.sh   another build (not rebuilt)
#   CALLGRIND_ARGS='--metrics-addr 127.0.0.1:0' perf/callgrind.sh   more server flags
#   CALLGRIND_ACLS=1 perf/callgrind.sh  with ACLs in force: each run (idle too) first grants
#                                       the client its topic, so every request is decided
#                                       through the shard's decision cache
#
# Three server runs under callgrind: idle (start-up and shutdown), produce RECORDS, produce
# and fetch them back. Produce Ir/record = (produce − idle) / RECORDS; fetch Ir/record =
# (both − produce) / RECORDS. The callgrind.out files stay in $OUT (default
# perf/out/callgrind-DATE) for callgrind_annotate --inclusive=yes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RECORDS=${1:-20000}
OUT=${OUT:-perf/out/callgrind-$(date +%Y%m%d-%H%M%S)}
BIN=${TIDEGATE_BIN:-target/release/tidegate}
VG=.cache/valgrind
mkdir -p "$OUT"
[[ -n ${TIDEGATE_BIN:-} ]] || cargo build --release --quiet
cargo build --release --quiet --example callgrind_client
CLIENT=target/release/examples/callgrind_client

run() { # mode
    local mode=$1 log="$OUT/server-$1.log"
    VALGRIND_LIB=$VG/usr/libexec/valgrind $VG/usr/bin/valgrind.bin --tool=callgrind \
        --callgrind-out-file="$OUT/callgrind.$mode.out" "$BIN" --listen 127.0.0.1 --port 0 \
        --broker-port-base 0 --shards 1 --backend memory ${CALLGRIND_ARGS:-} >"$log" 2>&1 &
    local pid=$!
    local addr=""
    for _ in $(seq 600); do
        addr=$(sed -n 's/^tidegate ready bootstrap=\([^ ]*\) .*/\1/p' "$log" | head -1)
        [[ -n $addr ]] && break
        sleep 0.1
    done
    [[ -n $addr ]] || { echo "server did not start: $log" >&2; kill "$pid"; exit 1; }
    local client_mode=$mode
    [[ $mode == idle ]] && client_mode=""
    [[ -n ${CALLGRIND_ACLS:-} ]] && client_mode="acls${client_mode:++$client_mode}"
    if [[ -n $client_mode ]]; then
        "$CLIENT" "$addr" "$client_mode" "$RECORDS"
    fi
    kill -TERM "$pid"
    wait "$pid" || true
    sed -n 's/^\(summary\|totals\): \([0-9]*\).*/\2/p' "$OUT/callgrind.$mode.out" | head -1
}

idle=$(run idle)
produce=$(run produce)
both=$(run both)
python3 - "$idle" "$produce" "$both" "$RECORDS" <<'EOF'
import sys
idle, produce, both, n = map(int, sys.argv[1:])
print(f"Ir idle {idle:,}  produce {produce:,}  produce+fetch {both:,}  ({n:,} records)")
print(f"produce: {(produce - idle) / n:,.0f} Ir/record   fetch: {(both - produce) / n:,.0f} Ir/record")
EOF
echo "callgrind files: $OUT"
