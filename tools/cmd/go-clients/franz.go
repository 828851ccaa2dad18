package main

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func fromKgo(rec *kgo.Record) record {
	hs := make([]header, 0, len(rec.Headers))
	for _, h := range rec.Headers {
		hs = append(hs, header{h.Key, string(h.Value)})
	}
	return record{partition: rec.Partition, offset: rec.Offset, key: rec.Key, value: rec.Value, headers: hs,
		timestampMs: rec.Timestamp.UnixMilli(), createTimeType: rec.Attrs.TimestampType() == 0}
}

func franzClient(r *run, opts ...kgo.Opt) *kgo.Client {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(r.bootstrap)}, opts...)...)
	if err != nil {
		failf("kgo.NewClient: %v", err)
	}
	return cl
}

// poll feeds t until it is done.
func franzPoll(ctx context.Context, cl *kgo.Client, t *tracker) {
	for !t.done() {
		t.checkDeadline()
		pctx, cancel := context.WithTimeout(ctx, 500e6)
		fetches := cl.PollFetches(pctx)
		cancel()
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				failf("%s: fetch error on %s[%d]: %v", t.what, topic, p, err)
			}
		})
		fetches.EachRecord(func(rec *kgo.Record) { t.add(fromKgo(rec)) })
	}
}

func franz(ctx context.Context, r *run) {
	admin := kadm.NewClient(franzClient(r))
	defer admin.Close()

	// 1. admin
	retention := retentionMs
	if res, err := admin.CreateTopic(ctx, int32(r.partitions), 1, map[string]*string{"retention.ms": &retention}, r.topic); err != nil || res.Err != nil {
		failf("CreateTopic: %v %v", err, res.Err)
	}
	topics, err := admin.ListTopics(ctx, r.topic)
	if err != nil || topics.Error() != nil {
		failf("ListTopics: %v %v", err, topics.Error())
	}
	brokers, err := admin.ListBrokers(ctx)
	if err != nil {
		failf("ListBrokers: %v", err)
	}
	var ids []int32
	for _, pd := range topics[r.topic].Partitions {
		ids = append(ids, pd.Partition)
		known := false
		for _, b := range brokers {
			known = known || b.NodeID == pd.Leader
		}
		if !known {
			failf("ListTopics: partition %d led by %d, not one of %v", pd.Partition, pd.Leader, brokers.NodeIDs())
		}
	}
	r.checkPartitions("ListTopics", ids)
	configs, err := admin.DescribeTopicConfigs(ctx, r.topic)
	if err != nil {
		failf("DescribeTopicConfigs: %v", err)
	}
	rc, err := configs.On(r.topic, nil)
	if err != nil || rc.Err != nil {
		failf("DescribeTopicConfigs: %v %v", err, rc.Err)
	}
	found := false
	for _, c := range rc.Configs {
		found = found || (c.Key == "retention.ms" && c.Value != nil && retentionOk(*c.Value))
	}
	if !found {
		failf("DescribeTopicConfigs: no retention.ms=%s in %+v", retentionMs, rc.Configs)
	}

	// 2. produce
	producer := franzClient(r, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5e6))
	recs := make([]*kgo.Record, r.records)
	for i := range recs {
		e := r.expected(i)
		hs := make([]kgo.RecordHeader, 0, len(e.headers))
		for _, h := range e.headers {
			hs = append(hs, kgo.RecordHeader{Key: h.key, Value: []byte(h.value)})
		}
		recs[i] = &kgo.Record{Topic: r.topic, Partition: e.partition, Key: e.key, Value: e.value, Headers: hs,
			Timestamp: msTime(e.timestampMs)}
	}
	pctx, cancel := context.WithTimeout(ctx, stepTimeout)
	results := producer.ProduceSync(pctx, recs...)
	cancel()
	// ProduceSync's results come in the order the records completed.
	index := make(map[*kgo.Record]int, len(recs))
	for i, rec := range recs {
		index[rec] = i
	}
	for _, res := range results {
		i := index[res.Record]
		e := r.expected(i)
		if res.Err != nil || res.Record.Partition != e.partition || res.Record.Offset != e.offset {
			failf("record %d: acked at %d@%d (error %v), expected %d@%d", i, res.Record.Partition, res.Record.Offset,
				res.Err, e.partition, e.offset)
		}
	}
	producer.Close()

	// 3. consume from the start
	starts := map[int32]kgo.Offset{}
	for p := 0; p < r.partitions; p++ {
		starts[int32(p)] = kgo.NewOffset().AtStart()
	}
	consumer := franzClient(r, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.topic: starts}))
	franzPoll(ctx, consumer, r.track("assigned consumer", make([]int64, r.partitions), r.ends()))
	consumer.Close()

	// 4. group
	half := r.halves()
	a := franzClient(r, kgo.ConsumerGroup(r.group), kgo.ConsumeTopics(r.topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.SessionTimeout(6e9), kgo.HeartbeatInterval(5e8))
	franzPoll(ctx, a, r.track("member A", make([]int64, r.partitions), half))
	// Committed through the member (generation and member id), as applications do; kgo
	// chooses the commit metadata itself.
	commits := map[string]map[int32]kgo.EpochOffset{r.topic: {}}
	for p, h := range half {
		commits[r.topic][int32(p)] = kgo.EpochOffset{Epoch: -1, Offset: h}
	}
	a.CommitOffsetsSync(ctx, commits, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			failf("member A commit: %v", err)
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					failf("member A commit: %s[%d]: %v", t.Topic, p.Partition, err)
				}
			}
		}
	})
	listed, err := admin.ListGroups(ctx)
	if err != nil {
		failf("ListGroups: %v", err)
	}
	if _, ok := listed[r.group]; !ok {
		failf("ListGroups: %s missing from %v", r.group, listed.Groups())
	}
	described, err := admin.DescribeGroups(ctx, r.group)
	if err != nil {
		failf("DescribeGroups: %v", err)
	}
	d := described[r.group]
	var owned []int32
	for _, m := range d.Members {
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range c.Topics {
				owned = append(owned, t.Partitions...)
			}
		}
	}
	if d.Err != nil || d.State != "Stable" || len(d.Members) != 1 {
		failf("DescribeGroups: state %q, %d members, error %v", d.State, len(d.Members), d.Err)
	}
	r.checkPartitions("DescribeGroups assignment", owned)
	a.Close() // leaves the group

	fetched, err := admin.FetchOffsets(ctx, r.group)
	if err != nil || fetched.Error() != nil {
		failf("FetchOffsets: %v %v", err, fetched.Error())
	}
	got, meta := map[int32]int64{}, map[int32]string{}
	fetched.Each(func(o kadm.OffsetResponse) {
		if o.Topic == r.topic {
			got[o.Partition], meta[o.Partition] = o.At, o.Metadata
		}
	})
	r.checkCommitted("FetchOffsets", got, meta, "")

	b := franzClient(r, kgo.ConsumerGroup(r.group), kgo.ConsumeTopics(r.topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()), kgo.SessionTimeout(6e9), kgo.HeartbeatInterval(5e8))
	franzPoll(ctx, b, r.track("member B", half, r.ends()))
	b.Close()
}
