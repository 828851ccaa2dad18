// Command smq-ready waits until a SeaweedFS MQ broker can serve topics.
//
//	smq-ready -broker 127.0.0.1:17777 -timeout 120s [-pid N] [-expect-leader HOST:PORT] [-security FILE]
//
// With -security it dials with mutual TLS as SeaweedFS's own command-line clients do:
// [grpc] ca and [grpc.client] cert and key of that security.toml (relative paths are
// taken from its directory).
//
// Each attempt:
//  1. FindBrokerLeader must name a balancer broker. Until then the broker has
//     not found its filer, and the control-plane rpcs (ConfigureTopic,
//     LookupTopicBrokers, ListTopics, ...) dereference a nil balancer lock at
//     this SeaweedFS version: a panic that takes the whole weed process down.
//  2. ConfigureTopic for the probe topic (namespace "tidegate-probe", name
//     "ready", 1 partition) must succeed. It answers Unavailable ("no broker
//     available") for roughly 30 s after start, until the broker has
//     registered with the balancer.
//  3. LookupTopicBrokers for it must return assignments that all have a leader.
//
// With -expect-leader ADDR it then also waits until the balancer can make ADDR
// the leader of a partition (used for a second broker: it is only known to
// the balancer after it has connected to it). It does so by re-configuring its
// own probe topic "leader-<addr>" with 8 and 9 partitions alternately (each
// re-configure re-allocates leaders at random) until ADDR leads one.
//
// Exit status: 0 when ready, 1 on timeout or when -pid is gone (printing what
// it last saw), 2 on bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/seaweedfs/seaweedfs/weed/pb/mq_pb"
	"github.com/seaweedfs/seaweedfs/weed/pb/schema_pb"
	"github.com/seaweedfs/seaweedfs/weed/security"
)

const probeNamespace = "tidegate-probe"

func main() {
	broker := flag.String("broker", "127.0.0.1:17777", "broker gRPC address host:port")
	timeout := flag.Duration("timeout", 120*time.Second, "give up after this long")
	interval := flag.Duration("interval", 500*time.Millisecond, "pause between attempts")
	pid := flag.Int("pid", 0, "fail at once if this process exits (the weed process being waited for)")
	expectLeader := flag.String("expect-leader", "", "also wait until this broker (host:port) can lead a partition")
	quiet := flag.Bool("quiet", false, "print only the final line")
	securityFile := flag.String("security", "", "security.toml to dial with mutual TLS ([grpc] ca, [grpc.client] cert and key)")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "smq-ready: unexpected arguments:", flag.Args())
		os.Exit(2)
	}

	start := time.Now()
	deadline := start.Add(*timeout)
	credentials := grpc.WithTransportCredentials(insecure.NewCredentials())
	if *securityFile != "" {
		var err error
		if credentials, err = security.LoadClientTLSFromFile(*securityFile, "grpc.client"); err != nil {
			fmt.Fprintf(os.Stderr, "smq-ready: %v\n", err)
			os.Exit(2)
		}
	}
	conn, err := grpc.NewClient(*broker, credentials)
	if err != nil {
		fmt.Fprintf(os.Stderr, "smq-ready: dial %s: %v\n", *broker, err)
		os.Exit(2)
	}
	defer conn.Close()
	client := mq_pb.NewSeaweedMessagingClient(conn)

	last := "no attempt made"
	attempts := 0
	ready := false
	partitions := int32(8)
	for {
		attempts++
		var err error
		if !ready {
			err = probe(client, deadline)
			if err == nil {
				ready = true
				fmt.Printf("smq-ready: broker %s ready after %.1fs (%d attempts)\n",
					*broker, time.Since(start).Seconds(), attempts)
				if *expectLeader == "" {
					return
				}
			}
		}
		if ready {
			err = probeLeader(client, *expectLeader, partitions, deadline)
			if err == nil {
				fmt.Printf("smq-ready: broker %s can lead partitions after %.1fs\n",
					*expectLeader, time.Since(start).Seconds())
				return
			}
			if partitions == 8 {
				partitions = 9
			} else {
				partitions = 8
			}
		}
		if msg := err.Error(); msg != last {
			if !*quiet {
				fmt.Fprintf(os.Stderr, "smq-ready: %.1fs: %s\n", time.Since(start).Seconds(), msg)
			}
			last = msg
		}
		if *pid > 0 && !alive(*pid) {
			fmt.Fprintf(os.Stderr, "smq-ready: process %d exited; last: %s\n", *pid, last)
			os.Exit(1)
		}
		if time.Now().Add(*interval).After(deadline) {
			break
		}
		time.Sleep(*interval)
	}
	fmt.Fprintf(os.Stderr, "smq-ready: broker %s not ready after %s (%d attempts); last: %s\n",
		*broker, *timeout, attempts, last)
	os.Exit(1)
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func callCtx(deadline time.Time) (context.Context, context.CancelFunc, error) {
	per := 5 * time.Second
	if rem := time.Until(deadline); rem < per {
		per = rem
	}
	if per <= 0 {
		return nil, nil, errors.New("deadline reached")
	}
	ctx, cancel := context.WithTimeout(context.Background(), per)
	return ctx, cancel, nil
}

func probe(client mq_pb.SeaweedMessagingClient, deadline time.Time) error {
	ctx, cancel, err := callCtx(deadline)
	if err != nil {
		return err
	}
	defer cancel()
	leader, err := client.FindBrokerLeader(ctx, &mq_pb.FindBrokerLeaderRequest{})
	if err != nil {
		return fmt.Errorf("FindBrokerLeader: %w", err)
	}
	if leader.Broker == "" {
		return errors.New("FindBrokerLeader: no balancer broker yet")
	}
	topic := &schema_pb.Topic{Namespace: probeNamespace, Name: "ready"}
	if _, err := client.ConfigureTopic(ctx, &mq_pb.ConfigureTopicRequest{
		Topic:          topic,
		PartitionCount: 1,
	}); err != nil {
		return fmt.Errorf("ConfigureTopic: %w", err)
	}
	resp, err := client.LookupTopicBrokers(ctx, &mq_pb.LookupTopicBrokersRequest{Topic: topic})
	if err != nil {
		return fmt.Errorf("LookupTopicBrokers: %w", err)
	}
	if len(resp.BrokerPartitionAssignments) == 0 {
		return errors.New("LookupTopicBrokers: no partition assignments")
	}
	for _, a := range resp.BrokerPartitionAssignments {
		if a.LeaderBroker == "" {
			return fmt.Errorf("LookupTopicBrokers: partition %v has no leader", a.Partition)
		}
	}
	return nil
}

func probeLeader(client mq_pb.SeaweedMessagingClient, want string, partitions int32, deadline time.Time) error {
	ctx, cancel, err := callCtx(deadline)
	if err != nil {
		return err
	}
	defer cancel()
	name := "leader-" + strings.NewReplacer(":", "-", ".", "-", "[", "", "]", "").Replace(want)
	resp, err := client.ConfigureTopic(ctx, &mq_pb.ConfigureTopicRequest{
		Topic:          &schema_pb.Topic{Namespace: probeNamespace, Name: name},
		PartitionCount: partitions,
	})
	if err != nil {
		return fmt.Errorf("ConfigureTopic %s/%s: %w", probeNamespace, name, err)
	}
	var leaders []string
	for _, a := range resp.BrokerPartitionAssignments {
		if a.LeaderBroker == want {
			return nil
		}
		leaders = append(leaders, a.LeaderBroker)
	}
	return fmt.Errorf("%s leads no partition of %s/%s yet (leaders %v)", want, probeNamespace, name, leaders)
}
