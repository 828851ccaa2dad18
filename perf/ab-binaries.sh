#!/usr/bin/env bash
# Interleaved A/B of two tidegate binaries on one SeaweedFS: kafka-producer-perf-test
# (Java 3.9.1 tools, as perf/run uses) against each in turn, ROUNDS times, one line each.
# For a change whose cost is in tidegate's SMQ path; compare the medians, quote the ratio.
#
#   perf/ab-binaries.sh BIN_A BIN_B [ROUNDS]
#
# Env: SEAWEEDFS_DIR (a directory `scripts/seaweedfs start` runs in; required),
# RECORDS (100000), SIZE (1024), ACKS (all), PARTITIONS (8), SHARDS (1), PROPS (extra
# producer properties, e.g. "linger.ms=5").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ $# -ge 2 ]] || { sed -n '2,10p' "$0"; exit 2; }
bin_a=$1 bin_b=$2 rounds=${3:-3}
: "${SEAWEEDFS_DIR:?set SEAWEEDFS_DIR to a running scripts/seaweedfs directory}"
# shellcheck source=/dev/null
source "$SEAWEEDFS_DIR/ports.env"
records=${RECORDS:-100000} size=${SIZE:-1024} acks=${ACKS:-all}
partitions=${PARTITIONS:-8} shards=${SHARDS:-1}
classpath=".cache/kafka-client3/lib/*"
[[ -d .cache/kafka-client3/lib ]] || { echo "run perf/run --smoke once to fetch the Kafka tools" >&2; exit 1; }
log=$(mktemp -d)

run_one() { # LABEL BIN ROUND
    local label=$1 bin=$2 round=$3 topic="ab-$1-$3-$RANDOM$RANDOM"
    "$bin" --backend smq --smq-master "$MASTER" --shards "$shards" --listen 127.0.0.1 \
        --port 0 --broker-port-base 0 --default-partitions "$partitions" \
        >"$log/$label-$round.out" 2>"$log/$label-$round.err" &
    local pid=$!
    # The ready line names the bootstrap address; nothing listens before it is printed.
    local bootstrap=""
    for _ in $(seq 600); do
        bootstrap=$(grep -o 'bootstrap=[^ ]*' "$log/$label-$round.out" | cut -d= -f2 || true)
        [[ -n $bootstrap ]] && break
        kill -0 "$pid" 2>/dev/null || { cat "$log/$label-$round.err" >&2; exit 1; }
        sleep 0.1
    done
    local props=(acks="$acks" ${PROPS:-})
    local result
    result=$(java -Xmx1g -cp "$classpath" -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
        org.apache.kafka.tools.ProducerPerformance --topic "$topic" --num-records "$records" \
        --record-size "$size" --throughput -1 \
        --producer-props "bootstrap.servers=$bootstrap" "${props[@]}" 2>&1 | tail -n 1)
    kill "$pid"; wait "$pid" 2>/dev/null || true
    printf '%s round %s: %s\n' "$label" "$round" "$result"
}

for round in $(seq "$rounds"); do
    run_one A "$bin_a" "$round"
    run_one B "$bin_b" "$round"
done
rm -rf "$log"
