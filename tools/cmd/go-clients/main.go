// go-clients: produce, consume, a consumer group and the admin calls of one Go Kafka client
// against a gateway, every record checked against what was sent (tests/clients/test_go_clients.py).
//
//	go-clients -client franz|sarama [-sarama-version 3.9.0] BOOTSTRAP TOPIC GROUP RECORDS PARTITIONS
//
//  1. Admin: create the topic (with retention.ms), list and describe topics, describe its configs.
//  2. Produce (idempotent, acks=all): record i (key, binary value, headers with a repeated key
//     and an empty value, CreateTime timestamp) to partition i % PARTITIONS, acknowledged at
//     offset i / PARTITIONS.
//  3. Consume every partition from the start: every record back byte for byte, in order.
//  4. Group: member A reads the first half of each partition and commits it (sarama: with metadata);
//     while A is in the group the admin lists it and describes it (Stable, one member owning
//     every partition); A leaves; the admin reads the commits back; member B of the group
//     reads exactly the second half (starting anywhere else is a failure).
//
// Exit status 0 with "OK <n>" on stdout; 1 with "FAIL: ..." on stderr.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	baseTimestampMs = int64(1_700_000_000_000)
	retentionMs     = "86400000"
	stepTimeout     = 30 * time.Second
)

type header struct{ key, value string }

// run describes one test run; the two clients implement the same steps.
type run struct {
	bootstrap, topic, group string
	records, partitions     int
	client                  string
}

type record struct {
	partition      int32
	offset         int64
	key, value     []byte
	headers        []header
	timestampMs    int64
	createTimeType bool
}

func failf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func (r *run) expected(i int) record {
	v := []byte(fmt.Sprintf("go %s record %d ", r.client, i))
	for j := 0; j < i%50; j++ {
		v = append(v, byte((i*7+j)%256))
	}
	return record{
		partition:      int32(i % r.partitions),
		offset:         int64(i / r.partitions),
		key:            []byte(fmt.Sprintf("go-key-%d", i)),
		value:          v,
		headers:        []header{{"idx", strconv.Itoa(i)}, {"dup", "a"}, {"dup", "b"}, {"empty", ""}},
		timestampMs:    baseTimestampMs + int64(i),
		createTimeType: true,
	}
}

func (r *run) countIn(p int) int64 { return int64((r.records - p + r.partitions - 1) / r.partitions) }

func (r *run) ends() []int64 {
	e := make([]int64, r.partitions)
	for p := range e {
		e[p] = r.countIn(p)
	}
	return e
}

func (r *run) halves() []int64 {
	h := make([]int64, r.partitions)
	for p := range h {
		h[p] = r.countIn(p) / 2
	}
	return h
}

// tracker checks records as a consumer returns them: offsets start[p]..end[p]-1 of every
// partition in order, each as produced; records past end[p] are checked but not counted.
type tracker struct {
	r        *run
	what     string
	next     []int64
	end      []int64
	deadline time.Time
}

func (r *run) track(what string, start, end []int64) *tracker {
	next := append([]int64(nil), start...)
	return &tracker{r: r, what: what, next: next, end: end, deadline: time.Now().Add(stepTimeout)}
}

func (t *tracker) add(got record) {
	i := int(got.offset)*t.r.partitions + int(got.partition)
	want := t.r.expected(i)
	if i >= t.r.records || !bytes.Equal(got.key, want.key) || !bytes.Equal(got.value, want.value) ||
		!reflect.DeepEqual(got.headers, want.headers) || got.timestampMs != want.timestampMs || !got.createTimeType {
		failf("%s: record %d (partition %d offset %d):\n  got    %+v\n  wanted %+v", t.what, i, got.partition, got.offset, got, want)
	}
	p := got.partition
	if got.offset >= t.end[p] {
		return
	}
	if got.offset != t.next[p] {
		failf("%s: partition %d gave offset %d, expected %d", t.what, p, got.offset, t.next[p])
	}
	t.next[p]++
}

func (t *tracker) done() bool {
	for p := range t.next {
		if t.next[p] < t.end[p] {
			return false
		}
	}
	return true
}

func (t *tracker) checkDeadline() {
	if time.Now().After(t.deadline) {
		failf("%s: no more records after %s; next offsets %v, wanted %v", t.what, stepTimeout, t.next, t.end)
	}
}

func (r *run) checkPartitions(what string, got []int32) {
	sort.Slice(got, func(a, b int) bool { return got[a] < got[b] })
	for p := 0; p < r.partitions; p++ {
		if len(got) != r.partitions || got[p] != int32(p) {
			failf("%s: partitions %v, wanted 0..%d", what, got, r.partitions-1)
		}
	}
}

func (r *run) checkCommitted(what string, got map[int32]int64, metadata map[int32]string, wantMeta string) {
	want := map[int32]int64{}
	for p, h := range r.halves() {
		want[int32(p)] = h
		if wantMeta != "" && metadata[int32(p)] != wantMeta { // "": not checked
			failf("%s: partition %d committed with metadata %q, wanted %q", what, p, metadata[int32(p)], wantMeta)
		}
	}
	if !reflect.DeepEqual(got, want) {
		failf("%s: committed offsets %v, wanted %v", what, got, want)
	}
}

func main() {
	client := flag.String("client", "franz", "franz or sarama")
	saramaVersion := flag.String("sarama-version", "", "sarama Config.Version (default: sarama's own default)")
	flag.Parse()
	if flag.NArg() != 5 {
		fmt.Fprintln(os.Stderr, "usage: go-clients -client franz|sarama BOOTSTRAP TOPIC GROUP RECORDS PARTITIONS")
		os.Exit(2)
	}
	records, err1 := strconv.Atoi(flag.Arg(3))
	partitions, err2 := strconv.Atoi(flag.Arg(4))
	if err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "RECORDS and PARTITIONS must be numbers")
		os.Exit(2)
	}
	r := &run{bootstrap: flag.Arg(0), topic: flag.Arg(1), group: flag.Arg(2), records: records,
		partitions: partitions, client: *client}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	switch *client {
	case "franz":
		franz(ctx, r)
	case "sarama":
		r.client = "sarama" + strings.TrimSpace(" "+*saramaVersion)
		runSarama(r, *saramaVersion)
	default:
		fmt.Fprintf(os.Stderr, "unknown client %q\n", *client)
		os.Exit(2)
	}
	fmt.Printf("OK %d\n", records)
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms) }

// retentionOk: whether a described retention.ms value is right. CHECK_CREATED_CONFIG=0: the
// backend does not keep created configs (tests/clients/harness.py), any value will do.
func retentionOk(value string) bool {
	return os.Getenv("CHECK_CREATED_CONFIG") == "0" || value == retentionMs
}
