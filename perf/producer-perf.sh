#!/usr/bin/env bash
# Producer throughput against a local tidegate (memory backend) with Kafka's own
# ProducerPerformance (kafka-producer-perf-test). Prints the server command, the client
# command and the result line, ready to paste into perf/RESULTS.md.
#
#   perf/producer-perf.sh [--smoke]        --smoke: 20,000 records, to check the setup
#
# Environment (defaults in brackets):
#   SHARDS [2]  PARTITIONS [8]  RECORDS [1000000]  RECORD_SIZE [1024]
#   PRODUCER_PROPS ["acks=all"]   extra producer configs, space-separated k=v
#   TIDEGATE_BIN [target/release/tidegate, built if missing]
#
# Client and server share the machine's cores, so numbers are only comparable between
# runs on the same machine; the output records nproc for that reason.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SHARDS=${SHARDS:-2}
PARTITIONS=${PARTITIONS:-8}
RECORDS=${RECORDS:-1000000}
RECORD_SIZE=${RECORD_SIZE:-1024}
PRODUCER_PROPS=${PRODUCER_PROPS:-acks=all}
case ${1:-} in
    --smoke) RECORDS=20000 ;;
    "") ;;
    *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac

if [[ -z ${TIDEGATE_BIN:-} ]]; then
    TIDEGATE_BIN=target/release/tidegate
    [[ -x $TIDEGATE_BIN ]] || cargo build --release
fi
scripts/deps java >&2

out=perf/out
mkdir -p "$out"
log=$out/tidegate-$(date +%Y%m%d-%H%M%S).log

# The topic is auto-created (with PARTITIONS partitions) on the producer's first Metadata.
server=("$TIDEGATE_BIN" --listen 127.0.0.1 --port 0 --broker-port-base 0 --shards "$SHARDS"
        --backend memory --default-partitions "$PARTITIONS" --auto-create-topics true)
coproc TG { NO_COLOR=1 exec "${server[@]}" 2>"$log"; }
# shellcheck disable=SC2153 # TG_PID is set by coproc
tg_pid=$TG_PID
stop_server() {
    kill -TERM "$tg_pid" 2>/dev/null || return 0
    timeout 10 tail --pid="$tg_pid" -f /dev/null || kill -KILL "$tg_pid" 2>/dev/null || true
}
trap stop_server EXIT

ready=
read -r -t 30 -u "${TG[0]}" ready || true
if [[ $ready != "tidegate ready bootstrap="* ]]; then
    echo "tidegate not ready after 30 s (stdout: '$ready'); log $log:" >&2
    tail -n 50 "$log" >&2
    exit 1
fi
bootstrap=${ready#tidegate ready bootstrap=}
bootstrap=${bootstrap%% *}

topic=perf-$(date +%s)
# shellcheck disable=SC2206 # word splitting of PRODUCER_PROPS is the point
client=(java -cp "tests/java/target/classes:tests/java/target/dependency/*"
        org.apache.kafka.tools.ProducerPerformance --topic "$topic" --num-records "$RECORDS"
        --record-size "$RECORD_SIZE" --throughput -1 --bootstrap-server "$bootstrap"
        --command-property $PRODUCER_PROPS)

result=$out/producer-perf-$(date +%Y%m%d-%H%M%S).txt
# Progress lines stream to the terminal; the last one (with percentiles) is the result.
"${client[@]}" | tee "$result"
summary=$(grep -E ' records sent, .* 99\.9th\.$' "$result" | tail -n 1 || true)

echo
echo "date:    $(date -u +%Y-%m-%dT%H:%MZ)  commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)  nproc: $(nproc)"
echo "server:  ${server[*]}"
# The bootstrap port is ephemeral: show a placeholder so the line reads as a recipe.
echo "client:  ${client[*]/#$bootstrap/<bootstrap>}"
echo "result:  ${summary:-NO SUMMARY LINE (see $result)}"
# Failed sends are only stack traces on stderr and a short count: make them fail the run.
sent=${summary%% *}
if [[ $sent != "$RECORDS" ]]; then
    echo "FAIL: ${sent:-no} records acknowledged of $RECORDS" >&2
    exit 1
fi
