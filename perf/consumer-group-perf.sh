#!/usr/bin/env bash
# Consumer-group read throughput through tidegate and through SeaweedFS's own Go gateway,
# both in front of one SeaweedMQ, in one run: kafka-consumer-perf-test (ConsumerPerformance,
# kafka-tools 4.4.0 from tests/java) with a --group, and the same with a librdkafka group
# consumer (perf/rdkafka_consumer_perf.py, same output line), each reading the same topic
# from the start under a fresh group id. Prints one table and the tidegate / Go gateway ratio.
#
#   perf/consumer-group-perf.sh [--smoke]     --smoke: a few thousand records, to check the setup
#
# The records are written once, through tidegate, with kafka-producer-perf-test (no key, no
# headers: plain SMQ messages, which the Go gateway reads as they are).
#
# Why librdkafka too: the Java 4.x client cannot talk to the Go gateway (it cannot parse the
# gateway's ApiVersions answer: "Tried to allocate a collection of size 2184558, but there
# are only 31 bytes remaining"), so kafka-consumer-perf-test's Go gateway row shows that
# failure, and the librdkafka rows are the side-by-side comparison.
#
# Columns: rebalance_ms is subscribe to first assignment (FindCoordinator, JoinGroup, the
# group's initial rebalance delay, SyncGroup, OffsetFetch); fetch rec/s and MB/s cover the
# rest of the run, the read path itself; total rec/s includes the join. tidegate delays a
# new group's first rebalance by --group-initial-rebalance-delay-ms (Kafka's 3 s default);
# the Go gateway does not wait, so compare fetch rates, not totals.
#
# Environment (defaults in brackets):
#   RECORDS [200000]  RECORD_SIZE [1024]  PARTITIONS [8]  SHARDS [2]
#   REBALANCE_DELAY_MS [3000]   tidegate's --group-initial-rebalance-delay-ms
#   SEAWEEDFS_PORT_OFFSET [650] the SeaweedFS started for the run (scripts/seaweedfs)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RECORDS=${RECORDS:-200000}
RECORD_SIZE=${RECORD_SIZE:-1024}
PARTITIONS=${PARTITIONS:-8}
SHARDS=${SHARDS:-2}
REBALANCE_DELAY_MS=${REBALANCE_DELAY_MS:-3000}
case ${1:-} in
    --smoke) RECORDS=5000 ;;
    "") ;;
    *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac
export SEAWEEDFS_PORT_OFFSET=${SEAWEEDFS_PORT_OFFSET:-650}

out=perf/out/consumer-group-perf-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
scripts/deps python java >&2
scripts/seaweedfs build >&2
[[ -x target/release/tidegate ]] || cargo build --release >&2
classpath="tests/java/target/classes:tests/java/target/dependency/*"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do timeout 15 tail --pid="$pid" -f /dev/null || kill -KILL "$pid" 2>/dev/null || true; done
    scripts/seaweedfs stop "$out/seaweedfs" >&2 || true
}
trap cleanup EXIT

scripts/seaweedfs start "$out/seaweedfs" >&2
# shellcheck disable=SC1091
source "$out/seaweedfs/ports.env"

# start_and_wait NAME PREFIX CMD...: runs CMD in the background (its pid goes to pids, for
# cleanup), waits up to 30 s for a first stdout line starting with PREFIX, and leaves the rest
# of that line in $ready_line. Not to be called in $(...): the pid would be lost with the subshell.
start_and_wait() {
    local name=$1 prefix=$2 line='' pid i
    shift 2
    NO_COLOR=1 "$@" >"$out/$name.stdout" 2>"$out/$name.log" </dev/null &
    pid=$!
    pids+=("$pid")
    for ((i = 0; i < 300; i++)); do
        line=$(head -n 1 "$out/$name.stdout")
        [[ $line == "$prefix"* ]] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ $line != "$prefix"* ]]; then
        echo "$name did not start (stdout: '$line'); log:" >&2
        tail -n 30 "$out/$name.log" >&2
        exit 1
    fi
    ready_line=${line#"$prefix"}
}

# tidegate finds broker and filer (committed offsets) through the master when it can.
if target/release/tidegate --help | grep -q -- '--smq-master'; then
    smq_args=(--smq-master "$MASTER")
else
    smq_args=(--smq-broker "$BROKER")
fi
tidegate_cmd=(target/release/tidegate --listen 127.0.0.1 --port 0 --broker-port-base 0
              --shards "$SHARDS" --backend smq "${smq_args[@]}"
              --group-initial-rebalance-delay-ms "$REBALANCE_DELAY_MS")
start_and_wait tidegate "tidegate ready bootstrap=" "${tidegate_cmd[@]}"
tidegate_bootstrap=${ready_line%% *}
go_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
go_cmd=(.cache/bin/go-gateway -listen "127.0.0.1:$go_port" -master "$MASTER" -defaultPartitions "$PARTITIONS")
start_and_wait go-gateway "go-gateway ready listen=" "${go_cmd[@]}"
go_bootstrap=127.0.0.1:$go_port

topic=cg-perf-$(date +%s)
.cache/venv/bin/python - "$tidegate_bootstrap" "$topic" "$PARTITIONS" <<'EOF'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
bootstrap, topic, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the result is in
admin.create_topics([NewTopic(topic, partitions, 1)], operation_timeout=60)[topic].result(timeout=60)
EOF
java -cp "$classpath" org.apache.kafka.tools.ProducerPerformance --topic "$topic" --num-records "$RECORDS" \
    --record-size "$RECORD_SIZE" --throughput -1 --bootstrap-server "$tidegate_bootstrap" \
    >"$out/produce.txt" 2>"$out/produce.err"
produced=$(grep -E ' records sent, .* 99\.9th\.$' "$out/produce.txt" | tail -n 1 | cut -d' ' -f1)
if [[ $produced != "$RECORDS" ]]; then
    echo "producing through tidegate failed (${produced:-no} of $RECORDS records); see $out/produce.*" >&2
    exit 1
fi

# consume GATEWAY BOOTSTRAP CLIENT: prints "rebalance_ms fetch_rec/s fetch_MB/s total_rec/s" or
# FAILED(...). Every run gets its own group, so each reads the topic from the start.
consume() {
    local gateway=$1 bootstrap=$2 client=$3 log group line
    log=$out/consume-$gateway-$client.txt
    group=cg-perf-$gateway-$client-$(date +%s%N)
    if [[ $client == java ]]; then
        timeout 600 java -cp "$classpath" org.apache.kafka.tools.ConsumerPerformance --bootstrap-server "$bootstrap" \
            --topic "$topic" --group "$group" --num-records "$RECORDS" --timeout 15000 >"$log" 2>&1 || true
    else
        timeout 600 .cache/venv/bin/python perf/rdkafka_consumer_perf.py "$bootstrap" "$topic" "$RECORDS" "$group" \
            >"$log" 2>&1 || true
    fi
    # start.time, end.time, MB, MB.sec, nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
    line=$(grep -E '^[0-9]{4}-.*(, [-0-9.]+){8}$' "$log" | tail -n 1 || true)
    if [[ -z $line ]]; then
        echo "FAILED($(grep -m1 -iE 'exception|error|tried to' "$log" | cut -c1-60 || echo 'no result line'))"
        return
    fi
    awk -F', ' -v want="$RECORDS" '{ if ($5 + 0 != want) { print "FAILED(" $5 "/" want " records)"; exit }
                                     printf "%d %.0f %.2f %.0f\n", $7, $10, $9, $6 }' <<<"$line"
}

echo "date $(date -u +%Y-%m-%dT%H:%MZ)  commit $(git rev-parse --short HEAD)  nproc $(nproc)  records $RECORDS x ${RECORD_SIZE} B  partitions $PARTITIONS  shards $SHARDS"
echo "tidegate:   ${tidegate_cmd[*]}"
echo "go-gateway: ${go_cmd[*]}"
echo "java: kafka-consumer-perf-test 4.4.0 --group <fresh> --num-records $RECORDS   librdkafka: perf/rdkafka_consumer_perf.py ($(.cache/venv/bin/python -c 'import confluent_kafka as c; print("librdkafka", c.libversion()[0])'))"
printf '%-11s %-10s %12s %14s %11s %12s\n' gateway client rebalance_ms fetch_rec/s fetch_MB/s total_rec/s
declare -A fetch
for client in java librdkafka; do
    for gw in tidegate go-gateway; do
        if [[ $gw == tidegate ]]; then bs=$tidegate_bootstrap; else bs=$go_bootstrap; fi
        r=$(consume "$gw" "$bs" "$client")
        if [[ $r == FAILED* ]]; then
            printf '%-11s %-10s %s\n' "$gw" "$client" "$r"
        else
            # shellcheck disable=SC2086 # fields on purpose
            printf '%-11s %-10s %12s %14s %11s %12s\n' "$gw" "$client" $r
        fi
        fetch[$gw-$client]=$(awk '{ print ($2 ~ /^[0-9]+$/) ? $2 : 0 }' <<<"$r")
    done
done
for client in java librdkafka; do
    awk -v c="$client" -v a="${fetch[tidegate-$client]}" -v b="${fetch[go-gateway-$client]}" \
        'BEGIN { printf "%s: tidegate / go-gateway fetch records/s = %s\n", c, (a > 0 && b > 0) ? sprintf("%.1f", a / b) : "n/a" }'
done
echo "logs: $out"
