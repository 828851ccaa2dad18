package main

import (
	"context"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

func saramaConfig(version string) *sarama.Config {
	cfg := sarama.NewConfig()
	if version != "" {
		v, err := sarama.ParseKafkaVersion(version)
		if err != nil {
			failf("sarama version %q: %v", version, err)
		}
		cfg.Version = v
	}
	cfg.ClientID = "tidegate-go-clients"
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1 // required by sarama's idempotent producer
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Group.Session.Timeout = 6 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	return cfg
}

func fromSarama(m *sarama.ConsumerMessage) record {
	hs := make([]header, 0, len(m.Headers))
	for _, h := range m.Headers {
		hs = append(hs, header{string(h.Key), string(h.Value)})
	}
	// sarama does not expose the timestamp type: CreateTime is assumed.
	return record{partition: m.Partition, offset: m.Offset, key: m.Key, value: m.Value, headers: hs,
		timestampMs: m.Timestamp.UnixMilli(), createTimeType: true}
}

// groupHandler feeds every claimed record to t; once t is done it commits `commits` (if any)
// through the session and closes done.
type groupHandler struct {
	mu       sync.Mutex
	t        *tracker
	commits  map[int32]int64
	metadata string
	done     chan struct{}
	closed   bool
}

func (h *groupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *groupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for m := range claim.Messages() {
		h.mu.Lock()
		h.t.add(fromSarama(m))
		if h.t.done() && !h.closed {
			for p, o := range h.commits {
				s.MarkOffset(h.t.r.topic, p, o, h.metadata)
			}
			s.Commit()
			h.closed = true
			close(h.done)
		}
		h.mu.Unlock()
	}
	return nil
}

// saramaMember runs one group member until its tracker is done, then calls whileMember and
// leaves the group.
func saramaMember(r *run, version string, h *groupHandler, whileMember func()) {
	group, err := sarama.NewConsumerGroup([]string{r.bootstrap}, r.group, saramaConfig(version))
	if err != nil {
		failf("NewConsumerGroup: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{r.topic}, h); err != nil && ctx.Err() == nil {
				failf("%s: Consume: %v", h.t.what, err)
			}
		}
	}()
	go func() {
		for err := range group.Errors() {
			failf("%s: consumer group error: %v", h.t.what, err)
		}
	}()
	select {
	case <-h.done:
	case <-time.After(stepTimeout):
		h.mu.Lock()
		h.t.checkDeadline()
		failf("%s: not done after %s; next offsets %v", h.t.what, stepTimeout, h.t.next)
	}
	whileMember()
	cancel()
	<-stopped
	if err := group.Close(); err != nil {
		failf("%s: Close: %v", h.t.what, err)
	}
}

func runSarama(r *run, version string) {
	brokers := []string{r.bootstrap}
	admin, err := sarama.NewClusterAdmin(brokers, saramaConfig(version))
	if err != nil {
		failf("NewClusterAdmin: %v", err)
	}
	defer admin.Close()

	// 1. admin
	retention := retentionMs
	if err := admin.CreateTopic(r.topic, &sarama.TopicDetail{NumPartitions: int32(r.partitions), ReplicationFactor: 1,
		ConfigEntries: map[string]*string{"retention.ms": &retention}}, false); err != nil {
		failf("CreateTopic: %v", err)
	}
	topics, err := admin.ListTopics()
	if err != nil {
		failf("ListTopics: %v", err)
	}
	if d, ok := topics[r.topic]; !ok || d.NumPartitions != int32(r.partitions) {
		failf("ListTopics: %s is %+v (listed: %v)", r.topic, d, ok)
	}
	metas, err := admin.DescribeTopics([]string{r.topic})
	if err != nil || len(metas) != 1 || metas[0].Err != sarama.ErrNoError {
		failf("DescribeTopics: %v %+v", err, metas)
	}
	var ids []int32
	for _, p := range metas[0].Partitions {
		ids = append(ids, p.ID)
		if p.Err != sarama.ErrNoError || p.Leader < 0 {
			failf("DescribeTopics: partition %d: leader %d, error %v", p.ID, p.Leader, p.Err)
		}
	}
	r.checkPartitions("DescribeTopics", ids)
	entries, err := admin.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: r.topic})
	if err != nil {
		failf("DescribeConfig: %v", err)
	}
	found := false
	for _, e := range entries {
		found = found || (e.Name == "retention.ms" && retentionOk(e.Value))
	}
	if !found {
		failf("DescribeConfig: no retention.ms=%s in %+v", retentionMs, entries)
	}

	// 2. produce
	producer, err := sarama.NewSyncProducer(brokers, saramaConfig(version))
	if err != nil {
		failf("NewSyncProducer: %v", err)
	}
	msgs := make([]*sarama.ProducerMessage, r.records)
	for i := range msgs {
		e := r.expected(i)
		hs := make([]sarama.RecordHeader, 0, len(e.headers))
		for _, h := range e.headers {
			hs = append(hs, sarama.RecordHeader{Key: []byte(h.key), Value: []byte(h.value)})
		}
		msgs[i] = &sarama.ProducerMessage{Topic: r.topic, Partition: e.partition, Key: sarama.ByteEncoder(e.key),
			Value: sarama.ByteEncoder(e.value), Headers: hs, Timestamp: msTime(e.timestampMs)}
	}
	if err := producer.SendMessages(msgs); err != nil {
		failf("SendMessages: %v", err)
	}
	for i, m := range msgs {
		e := r.expected(i)
		if m.Partition != e.partition || m.Offset != e.offset {
			failf("record %d: acked at %d@%d, expected %d@%d", i, m.Partition, m.Offset, e.partition, e.offset)
		}
	}
	if err := producer.Close(); err != nil {
		failf("producer Close: %v", err)
	}

	// 3. consume from the start, partition by partition
	consumer, err := sarama.NewConsumer(brokers, saramaConfig(version))
	if err != nil {
		failf("NewConsumer: %v", err)
	}
	t := r.track("partition consumer", make([]int64, r.partitions), r.ends())
	for p := 0; p < r.partitions; p++ {
		pc, err := consumer.ConsumePartition(r.topic, int32(p), sarama.OffsetOldest)
		if err != nil {
			failf("ConsumePartition %d: %v", p, err)
		}
		for t.next[p] < t.end[p] {
			select {
			case m := <-pc.Messages():
				t.add(fromSarama(m))
			case err := <-pc.Errors():
				failf("partition consumer %d: %v", p, err)
			case <-time.After(time.Until(t.deadline)):
				t.checkDeadline()
			}
		}
		if err := pc.Close(); err != nil {
			failf("partition consumer %d close: %v", p, err)
		}
	}
	if err := consumer.Close(); err != nil {
		failf("consumer Close: %v", err)
	}

	// 4. group
	half := r.halves()
	commits := map[int32]int64{}
	for p, h := range half {
		commits[int32(p)] = h
	}
	metadata := "go-" + r.client
	a := &groupHandler{t: r.track("member A", make([]int64, r.partitions), half), commits: commits,
		metadata: metadata, done: make(chan struct{})}
	saramaMember(r, version, a, func() {
		groups, err := admin.ListConsumerGroups()
		if err != nil {
			failf("ListConsumerGroups: %v", err)
		}
		if _, ok := groups[r.group]; !ok {
			failf("ListConsumerGroups: %s missing from %v", r.group, groups)
		}
		described, err := admin.DescribeConsumerGroups([]string{r.group})
		if err != nil || len(described) != 1 {
			failf("DescribeConsumerGroups: %v %+v", err, described)
		}
		d := described[0]
		var owned []int32
		for _, m := range d.Members {
			assignment, err := m.GetMemberAssignment()
			if err != nil {
				failf("DescribeConsumerGroups: member assignment: %v", err)
			}
			owned = append(owned, assignment.Topics[r.topic]...)
		}
		if d.Err != sarama.ErrNoError || d.State != "Stable" || len(d.Members) != 1 {
			failf("DescribeConsumerGroups: state %q, %d members, error %v", d.State, len(d.Members), d.Err)
		}
		r.checkPartitions("DescribeConsumerGroups assignment", owned)
	})

	ps := make([]int32, r.partitions)
	for p := range ps {
		ps[p] = int32(p)
	}
	resp, err := admin.ListConsumerGroupOffsets(r.group, map[string][]int32{r.topic: ps})
	if err != nil {
		failf("ListConsumerGroupOffsets: %v", err)
	}
	got, meta := map[int32]int64{}, map[int32]string{}
	for _, p := range ps {
		block := resp.GetBlock(r.topic, p)
		if block == nil || block.Err != sarama.ErrNoError {
			failf("ListConsumerGroupOffsets: partition %d: %+v", p, block)
		}
		got[p], meta[p] = block.Offset, block.Metadata
	}
	r.checkCommitted("ListConsumerGroupOffsets", got, meta, metadata)

	b := &groupHandler{t: r.track("member B", half, r.ends()), done: make(chan struct{})}
	saramaMember(r, version, b, func() {})
}
