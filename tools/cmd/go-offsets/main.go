// Command go-offsets reads and writes Kafka consumer-group offsets through
// SeaweedFS's own Kafka gateway code (weed/mq/kafka/consumer_offset.FilerStorage),
// so tests can check that tidegate's offsets and the Go gateway's are the same
// files: what one commits, the other fetches.
//
//	go-offsets -filer HOST:PORT[.GRPC_PORT] fetch GROUP
//	    one line per partition: "TOPIC PARTITION OFFSET METADATA" (sorted)
//	go-offsets -filer ... commit GROUP TOPIC PARTITION OFFSET [METADATA]
//	go-offsets -filer ... groups
//	    one group per line (sorted)
//	go-offsets -filer ... delete GROUP
//
// -filer is the filer as SeaweedFS names servers: its HTTP address (gRPC =
// port + 10000) or HOST:PORT.GRPC_PORT.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"

	"github.com/seaweedfs/seaweedfs/weed/filer_client"
	"github.com/seaweedfs/seaweedfs/weed/mq/kafka/consumer_offset"
	"github.com/seaweedfs/seaweedfs/weed/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

func main() {
	filer := flag.String("filer", "127.0.0.1:8888", "filer address (HOST:PORT or HOST:PORT.GRPC_PORT)")
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 {
		usage()
	}
	storage := consumer_offset.NewFilerStorage(&filer_client.FilerClientAccessor{
		GetGrpcDialOption: func() grpc.DialOption { return grpc.WithTransportCredentials(insecure.NewCredentials()) },
		GetFilers:         func() []pb.ServerAddress { return []pb.ServerAddress{pb.ServerAddress(*filer)} },
	})
	defer storage.Close()

	switch {
	case args[0] == "fetch" && len(args) == 2:
		offsets, err := storage.FetchAllOffsets(args[1])
		check(err)
		lines := make([]string, 0, len(offsets))
		for tp, o := range offsets {
			lines = append(lines, fmt.Sprintf("%s %d %d %s", tp.Topic, tp.Partition, o.Offset, o.Metadata))
		}
		sort.Strings(lines)
		for _, line := range lines {
			fmt.Println(line)
		}
	case args[0] == "commit" && (len(args) == 5 || len(args) == 6):
		partition, err := strconv.ParseInt(args[3], 10, 32)
		check(err)
		offset, err := strconv.ParseInt(args[4], 10, 64)
		check(err)
		metadata := ""
		if len(args) == 6 {
			metadata = args[5]
		}
		check(storage.CommitOffset(args[1], args[2], int32(partition), offset, metadata))
	case args[0] == "groups" && len(args) == 1:
		groups, err := storage.ListGroups()
		check(err)
		sort.Strings(groups)
		for _, group := range groups {
			fmt.Println(group)
		}
	case args[0] == "delete" && len(args) == 2:
		check(storage.DeleteGroup(args[1]))
	default:
		usage()
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-offsets: %v\n", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: go-offsets -filer HOST:PORT[.GRPC_PORT] fetch GROUP | commit GROUP TOPIC PARTITION OFFSET [METADATA] | groups | delete GROUP")
	os.Exit(2)
}
