// Command perf-producer is kafka-producer-perf-test written with franz-go: the same load
// from a client that costs a few µs of CPU per record instead of the Java producer's tens,
// so that perf/run can tell a gateway's ceiling from its client's (`--producer franz`).
//
//	perf-producer -bootstrap 127.0.0.1:9092 -topic NAME -records 200000 -record-size 1024 -acks all
//
// It keeps the Java perf test's settings that shape the requests a gateway sees: no key
// (sticky partitioning), a value of random capital letters, batches of at most
// -batch-bytes (Java's batch.size, 16384), -linger (perf/run gives the Java tools
// linger.ms=5), at most -max-buffered-bytes waiting (buffer.memory, 32 MiB) and 5
// produce requests in flight per broker; acks=all is idempotent (the Java default), acks=1
// and acks=0 are not. Latency runs from the Produce call to the record's acknowledgement.
//
// It prints one line in kafka-producer-perf-test's format, so perf/run parses it as it does
// the Java tool's:
//
//	N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency,
//	P50 ms 50th, P95 ms 95th, P99 ms 99th, P999 ms 99.9th.
//
// Exit status 1 when any record was not acknowledged (the first error is printed).
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	bootstrap := flag.String("bootstrap", "127.0.0.1:9092", "bootstrap servers, comma separated")
	topic := flag.String("topic", "", "topic to produce to (required; must exist)")
	records := flag.Int("records", 100000, "records to produce")
	size := flag.Int("record-size", 1024, "value size in bytes (no key)")
	acks := flag.String("acks", "all", "all (idempotent), 1 or 0")
	compression := flag.String("compression", "none", "none, gzip, snappy, lz4 or zstd")
	linger := flag.Duration("linger", 5*time.Millisecond, "how long a batch waits for more records")
	batchBytes := flag.Int("batch-bytes", 16384, "largest batch per partition")
	buffered := flag.Int("max-buffered-bytes", 32<<20, "records waiting to be sent, in bytes")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	flag.Parse()
	if *topic == "" || *records < 1 || *size < 0 || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}

	opts := []kgo.Opt{
		kgo.SeedBrokers(strings.Split(*bootstrap, ",")...),
		kgo.DefaultProduceTopic(*topic),
		kgo.ProducerLinger(*linger),
		kgo.ProducerBatchMaxBytes(int32(*batchBytes)),
		kgo.MaxBufferedBytes(*buffered),
		kgo.ProducerBatchCompression(codec(*compression)),
	}
	switch *acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(),
			kgo.MaxProduceRequestsInflightPerBroker(5))
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite(),
			kgo.MaxProduceRequestsInflightPerBroker(5))
	default:
		fail(fmt.Errorf("-acks %q: want all, 1 or 0", *acks))
	}
	client, err := kgo.NewClient(opts...)
	if err != nil {
		fail(err)
	}
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	value := make([]byte, *size)
	for i := range value {
		value[i] = byte('A' + rand.Intn(26))
	}

	var (
		mu        sync.Mutex
		latencies = make([]time.Duration, 0, *records)
		firstErr  error
		done      sync.WaitGroup
	)
	start := time.Now()
	for i := 0; i < *records; i++ {
		sent := time.Now()
		done.Add(1)
		client.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
			took := time.Since(sent)
			mu.Lock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
			} else {
				latencies = append(latencies, took)
			}
			mu.Unlock()
			done.Done()
		})
	}
	done.Wait()
	elapsed := time.Since(start).Seconds()

	report(latencies, elapsed, *size)
	if firstErr != nil {
		fail(firstErr)
	}
	if len(latencies) != *records {
		fail(fmt.Errorf("%d of %d records acknowledged", len(latencies), *records))
	}
}

func codec(name string) kgo.CompressionCodec {
	switch name {
	case "none":
		return kgo.NoCompression()
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	fail(fmt.Errorf("-compression %q: want none, gzip, snappy, lz4 or zstd", name))
	return kgo.NoCompression()
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "perf-producer: %v\n", err)
	os.Exit(1)
}

// report prints kafka-producer-perf-test's closing line, as tools/cmd/smq-publish's report
// does: a copy, since that command lives in the tools module, whose requirements must not
// meet franz-go's (see this module's go.mod).
func report(latencies []time.Duration, elapsed float64, size int) {
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	at := func(q float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return ms(latencies[min(len(latencies)-1, int(q*float64(len(latencies))))])
	}
	var sum time.Duration
	for _, l := range latencies {
		sum += l
	}
	n := len(latencies)
	avg := 0.0
	if n > 0 {
		avg = ms(sum) / float64(n)
	}
	fmt.Printf("%d records sent, %.1f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency, "+
		"%.2f ms 50th, %.2f ms 95th, %.2f ms 99th, %.2f ms 99.9th.\n",
		n, float64(n)/elapsed, float64(n)*float64(size)/elapsed/(1<<20), avg, at(1), at(0.5), at(0.95), at(0.99), at(0.999))
}
