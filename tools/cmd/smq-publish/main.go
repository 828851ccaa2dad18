// Command smq-publish measures what a SeaweedMQ broker ingests from a direct, pipelined
// gRPC publisher: the ceiling for any Kafka gateway in front of it (perf/run's "direct"
// contender).
//
//	smq-publish -broker 127.0.0.1:17777 -topic NAME -partitions 8 -records 200000 -record-size 1024
//
// It configures the topic (namespace -namespace, "kafka" like both gateways), looks up
// each partition's leader, opens one PublishMessage stream per partition (one stream per
// partition keeps SMQ's offsets in order) and splits the records evenly over them. Each
// stream's sender sends without waiting for acks; its receiver reads the acks, which the
// broker sends one per message, in order. Sends stop while more than -max-inflight-bytes
// of values are unacknowledged on a stream, the way a Kafka producer's buffer.memory
// bounds what it has in flight; latency is from just before a record's Send to its ack.
//
// It prints one line in kafka-producer-perf-test's format, so perf/run parses every
// contender the same way:
//
//	N records sent, R records/sec (M MB/sec), A ms avg latency, X ms max latency,
//	P50 ms 50th, P95 ms 95th, P99 ms 99th, P999 ms 99.9th.
//
// Exit status 1 when any record was not acknowledged (the error is printed).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/seaweedfs/seaweedfs/weed/pb/mq_pb"
	"github.com/seaweedfs/seaweedfs/weed/pb/schema_pb"
)

func main() {
	broker := flag.String("broker", "127.0.0.1:17777", "SMQ broker gRPC address for topic admin")
	namespace := flag.String("namespace", "kafka", "SMQ namespace of the topic")
	topicName := flag.String("topic", "", "topic name (required; created with -partitions if new)")
	partitions := flag.Int("partitions", 1, "partition count of the topic")
	records := flag.Int("records", 100000, "records to publish, spread evenly over the partitions")
	size := flag.Int("record-size", 1024, "value size in bytes (no key)")
	maxInflight := flag.Int("max-inflight-bytes", 32<<20, "per-stream cap on unacknowledged value bytes")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	flag.Parse()
	if *topicName == "" || *partitions < 1 || *records < 1 || *size < 0 || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	topic := &schema_pb.Topic{Namespace: *namespace, Name: *topicName}
	assignments, err := lookup(ctx, *broker, topic, int32(*partitions))
	if err != nil {
		fail(err)
	}

	// One connection per leader broker, shared by that broker's streams (as a gateway does).
	conns := map[string]*grpc.ClientConn{}
	for _, a := range assignments {
		if conns[a.LeaderBroker] == nil {
			c, err := grpc.NewClient(a.LeaderBroker, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				fail(fmt.Errorf("dial %s: %w", a.LeaderBroker, err))
			}
			defer c.Close()
			conns[a.LeaderBroker] = c
		}
	}

	value := make([]byte, *size)
	for i := range value {
		value[i] = 'x'
	}
	latencies := make([][]time.Duration, len(assignments))
	errs := make([]error, len(assignments))
	var wg sync.WaitGroup
	start := time.Now()
	for i, a := range assignments {
		n := *records / len(assignments)
		if i < *records%len(assignments) {
			n++
		}
		wg.Add(1)
		go func(i int, a *mq_pb.BrokerPartitionAssignment, n int) {
			defer wg.Done()
			latencies[i], errs[i] = publish(ctx, conns[a.LeaderBroker], topic, a.Partition, n, value, *maxInflight)
		}(i, a, n)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()

	var all []time.Duration
	for i := range latencies {
		all = append(all, latencies[i]...)
	}
	report(all, elapsed, *size)
	if err := errors.Join(errs...); err != nil {
		fail(err)
	}
	if len(all) != *records {
		fail(fmt.Errorf("%d of %d records acknowledged", len(all), *records))
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "smq-publish: %v\n", err)
	os.Exit(1)
}

// lookup configures the topic (idempotent for the same partition count) and returns its
// partition assignments ordered by range start: Kafka partition k is the k-th.
func lookup(ctx context.Context, broker string, topic *schema_pb.Topic, partitions int32) ([]*mq_pb.BrokerPartitionAssignment, error) {
	conn, err := grpc.NewClient(broker, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", broker, err)
	}
	defer conn.Close()
	client := mq_pb.NewSeaweedMessagingClient(conn)
	if _, err := client.ConfigureTopic(ctx, &mq_pb.ConfigureTopicRequest{Topic: topic, PartitionCount: partitions}); err != nil {
		return nil, fmt.Errorf("ConfigureTopic: %w", err)
	}
	resp, err := client.LookupTopicBrokers(ctx, &mq_pb.LookupTopicBrokersRequest{Topic: topic})
	if err != nil {
		return nil, fmt.Errorf("LookupTopicBrokers: %w", err)
	}
	as := resp.BrokerPartitionAssignments
	if len(as) != int(partitions) {
		return nil, fmt.Errorf("LookupTopicBrokers: %d assignments for %d partitions", len(as), partitions)
	}
	for _, a := range as {
		if a.LeaderBroker == "" {
			return nil, fmt.Errorf("partition %v has no leader", a.Partition)
		}
	}
	sort.Slice(as, func(i, j int) bool { return as[i].Partition.RangeStart < as[j].Partition.RangeStart })
	return as, nil
}

// publish sends n records on one stream and returns each record's send-to-ack latency.
func publish(ctx context.Context, conn *grpc.ClientConn, topic *schema_pb.Topic, partition *schema_pb.Partition,
	n int, value []byte, maxInflight int) ([]time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := mq_pb.NewSeaweedMessagingClient(conn).PublishMessage(ctx)
	if err != nil {
		return nil, fmt.Errorf("PublishMessage: %w", err)
	}
	if err := stream.Send(&mq_pb.PublishMessageRequest{Message: &mq_pb.PublishMessageRequest_Init{
		Init: &mq_pb.PublishMessageRequest_InitMessage{Topic: topic, Partition: partition, AckInterval: 1,
			PublisherName: "smq-publish"},
	}}); err != nil {
		return nil, fmt.Errorf("send init: %w", err)
	}
	if resp, err := stream.Recv(); err != nil {
		return nil, fmt.Errorf("init response: %w", err)
	} else if resp.Error != "" {
		return nil, fmt.Errorf("init: %s", resp.Error)
	}

	// Window of unacknowledged records, counted in values of len(value) bytes.
	window := n
	if len(value) > 0 && maxInflight/len(value) < window {
		window = max(1, maxInflight/len(value))
	}
	credits := make(chan struct{}, window)
	for i := 0; i < window; i++ {
		credits <- struct{}{}
	}
	sentAt := make([]time.Time, n)
	latencies := make([]time.Duration, 0, n)
	recvErr := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			resp, err := stream.Recv()
			if err != nil {
				recvErr <- fmt.Errorf("ack %d of %d: %w", i, n, err)
				return
			}
			if resp.Error != "" {
				recvErr <- fmt.Errorf("ack %d of %d: %s (code %d)", i, n, resp.Error, resp.ErrorCode)
				return
			}
			latencies = append(latencies, time.Since(sentAt[i]))
			credits <- struct{}{}
		}
		recvErr <- nil
	}()

	// The broker forces ts_ns to increase per partition; give it increasing stamps anyway.
	for i := 0; i < n; i++ {
		select {
		case <-credits:
		case err := <-recvErr:
			return latencies, err
		}
		sentAt[i] = time.Now()
		if err := stream.Send(&mq_pb.PublishMessageRequest{Message: &mq_pb.PublishMessageRequest_Data{
			Data: &mq_pb.DataMessage{Value: value, TsNs: sentAt[i].UnixNano()},
		}}); err != nil {
			cancel()
			<-recvErr
			return latencies, fmt.Errorf("send %d of %d: %w", i, n, err)
		}
	}
	err = <-recvErr
	_ = stream.CloseSend()
	return latencies, err
}

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
