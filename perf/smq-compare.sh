#!/usr/bin/env bash
# Producer throughput through tidegate and through SeaweedFS's own Go gateway, both in
# front of the same SeaweedMQ, interleaved in one run. Prints one table with the ratio.
# The client is librdkafka (perf/rdkafka_perf.py, kafka-producer-perf-test's output format)
# for both: the Java 4.x client cannot parse the Go gateway's ApiVersions answer.
#
#   perf/smq-compare.sh [--smoke]           --smoke: a few thousand records, to check the setup
#
# Environment (defaults in brackets):
#   RECORDS [100000] records per tidegate run; GO_RECORDS [20000] per Go gateway run (it does
#   one broker round trip per record, so it is given fewer; records/s are comparable)
#   RECORD_SIZE [1024]  PARTITIONS [8]  SHARDS [2]  ACKS ["1 all"]
#   SEAWEEDFS_PORT_OFFSET [600]   the SeaweedFS started for the run (scripts/seaweedfs)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RECORDS=${RECORDS:-100000}
GO_RECORDS=${GO_RECORDS:-20000}
RECORD_SIZE=${RECORD_SIZE:-1024}
PARTITIONS=${PARTITIONS:-8}
SHARDS=${SHARDS:-2}
ACKS=${ACKS:-1 all}
case ${1:-} in
    --smoke) RECORDS=5000 GO_RECORDS=1000 ;;
    "") ;;
    *) echo "usage: $0 [--smoke]" >&2; exit 2 ;;
esac
export SEAWEEDFS_PORT_OFFSET=${SEAWEEDFS_PORT_OFFSET:-600}

out=perf/out/smq-compare-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
scripts/deps python >&2
scripts/seaweedfs build >&2
[[ -x target/release/tidegate ]] || cargo build --release >&2

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    scripts/seaweedfs stop "$out/seaweedfs" >&2 || true
}
trap cleanup EXIT

scripts/seaweedfs start "$out/seaweedfs" >&2
# shellcheck disable=SC1091
source "$out/seaweedfs/ports.env"

# start_and_wait NAME PREFIX CMD...: runs CMD, waits for a stdout line starting with PREFIX,
# prints the rest of that line.
start_and_wait() {
    local name=$1 prefix=$2 line=''
    shift 2
    coproc SERVER { NO_COLOR=1 exec "$@" 2>"$out/$name.log"; }
    pids+=("$SERVER_PID")
    read -r -t 30 -u "${SERVER[0]}" line || true
    if [[ $line != "$prefix"* ]]; then
        echo "$name did not start (stdout: '$line'); log:" >&2
        tail -n 30 "$out/$name.log" >&2
        exit 1
    fi
    echo "${line#"$prefix"}"
}

tidegate_cmd=(target/release/tidegate --listen 127.0.0.1 --port 0 --broker-port-base 0
              --shards "$SHARDS" --backend smq --smq-master "$MASTER"
              --default-partitions "$PARTITIONS")
ready=$(start_and_wait tidegate "tidegate ready bootstrap=" "${tidegate_cmd[@]}")
tidegate_bootstrap=${ready%% *}
go_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
go_cmd=(.cache/bin/go-gateway -listen "127.0.0.1:$go_port" -master "$MASTER"
        -defaultPartitions "$PARTITIONS")
start_and_wait go-gateway "go-gateway ready listen=" "${go_cmd[@]}" >/dev/null

# perf NAME BOOTSTRAP RECORDS ACKS: prints "records/s MB/s p50 p99" of one run.
perf() {
    local name=$1 bootstrap=$2 records=$3 acks=$4 log
    log=$out/$name-acks$acks.txt
    local acks_value=$acks
    [[ $acks == all ]] && acks_value=-1
    .cache/venv/bin/python perf/rdkafka_perf.py "$bootstrap" "perf-$name-$acks-$(date +%s)" \
        "$records" "$RECORD_SIZE" "$acks_value" >"$log" 2>&1 || true
    # "N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency, P50 ms 50th, P95 ms 95th, P99 ms 99th, ..."
    grep -E ' records sent, .* 99\.9th\.$' "$log" | tail -n 1 |
        awk -v want="$records" '{ if ($1 != want) { print "FAILED(" $1 "/" want ")"; exit }
                                  gsub(/[(,]/, ""); print $4, $6, $16, $22 }' || echo "FAILED"
}

echo "date $(date -u +%Y-%m-%dT%H:%MZ)  commit $(git rev-parse --short HEAD)  nproc $(nproc)  record ${RECORD_SIZE} B  partitions $PARTITIONS  shards $SHARDS"
echo "tidegate:   ${tidegate_cmd[*]}"
echo "go-gateway: ${go_cmd[*]}"
printf '%-5s %-11s %12s %9s %8s %8s\n' acks gateway records/s MB/s p50_ms p99_ms
for acks in $ACKS; do
    tg=$(perf tidegate "$tidegate_bootstrap" "$RECORDS" "$acks")
    go=$(perf go-gateway "127.0.0.1:$go_port" "$GO_RECORDS" "$acks")
    # shellcheck disable=SC2086 # fields on purpose
    printf '%-5s %-11s %12s %9s %8s %8s\n' "$acks" tidegate $tg "$acks" go-gateway $go
    ratio=$(awk -v a="${tg%% *}" -v b="${go%% *}" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "n/a" }')
    echo "acks=$acks: tidegate / go-gateway records/s = $ratio"
done
