// Command go-gateway runs SeaweedFS's own Kafka gateway (weed/mq/kafka/gateway)
// without a schema registry, for side-by-side benchmarks and interop tests.
// `weed mq.kafka.gateway` refuses to start without -schemaRegistryUrl; this
// calls the library directly instead.
//
// It prints "go-gateway ready listen=HOST:PORT" once the listener is bound and
// shuts down on SIGTERM or SIGINT.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/seaweedfs/seaweedfs/weed/glog"
	"github.com/seaweedfs/seaweedfs/weed/mq/kafka/gateway"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9093", "Kafka listen address host:port")
	master := flag.String("master", "127.0.0.1:9333", "SeaweedFS master address(es), comma separated")
	filerGroup := flag.String("filerGroup", "", "filer group (optional)")
	partitions := flag.Int("defaultPartitions", 4, "partitions for auto-created topics")
	flag.Parse()

	srv := gateway.NewServer(gateway.Options{
		Listen:            *listen,
		Masters:           *master,
		FilerGroup:        *filerGroup,
		DefaultPartitions: int32(*partitions),
	})
	if err := srv.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "go-gateway: start: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("go-gateway ready listen=%s\n", srv.Addr())

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	fmt.Fprintf(os.Stderr, "go-gateway: %v, shutting down\n", s)
	glog.Flush()
	if err := srv.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "go-gateway: close: %v\n", err)
		os.Exit(1)
	}
}
