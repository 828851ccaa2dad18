package dev.tidegate.tests;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.stream.Collectors;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.NoOffsetForPartitionException;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.RangeAssignor;
import org.apache.kafka.clients.consumer.RoundRobinAssignor;
import org.apache.kafka.clients.consumer.StickyAssignor;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * One member of a consumer group, driven by a test through stdin and read through stdout.
 * It subscribes to a topic holding {@link RoundTrip}'s deterministic records (written by
 * {@link ProduceRange}), checks every record it gets byte for byte from (partition, offset)
 * alone, and reports what happens to it, one line per event, flushed as it happens.
 *
 * <p>Usage: {@code GroupMember <bootstrap> <group> <topic> <partitions> <recordBytes> [option...]}
 * <ul>
 *   <li>{@code --name=NAME}: client.id, and how the test tells members apart (default member)
 *   <li>{@code --assignor=range|roundrobin|sticky|cooperative-sticky}: partition.assignment.strategy
 *       (default: the client's own default)
 *   <li>{@code --commit=sync|none}: {@code sync} (default) commits what each poll returned
 *       with commitSync before polling again, and what is still uncommitted when partitions
 *       are revoked; {@code none} never commits
 *   <li>{@code key=value}: any consumer config (session.timeout.ms=6000, auto.offset.reset=none, ...)
 * </ul>
 *
 * <p>stdin: a line {@code stop}, or end of input, makes it commit (in sync mode), leave the
 * group (close) and exit 0. SIGKILL is the way to make it vanish without leaving. (With
 * {@code group.instance.id} set, close() does not leave: a static member stays in the group
 * until its session expires, as in Kafka.) A line {@code stall} makes the poll loop stop
 * calling poll() once the current batch is committed, until a line {@code resume} (or
 * {@code stop}): the way to exceed max.poll.interval.ms.
 *
 * <p>stdout, one event per line (partition lists are comma-separated, {@code -} when empty):
 * <pre>
 * STARTED name=NAME
 * ASSIGNED gen=G member=ID added=LIST now=LIST     after every rebalance (added may be empty)
 * REVOKED gen=G removed=LIST now=LIST
 * LOST gen=G lost=LIST now=LIST
 * R P O                                            record at partition P offset O, verified
 * BAD P O REASON                                   record that is not what was produced there
 * COMMITTED P:NEXT,P:NEXT...                       a commitSync that succeeded
 * COMMIT_FAILED EXCEPTION: MESSAGE
 * STALLED                                          poll() is no longer called (after stall)
 * RESUMED                                          poll() is called again (after resume)
 * ERROR EXCEPTION: MESSAGE                         then exit 3 (no committed offset) or 2
 * CLOSED                                           after close(), then exit 0
 * </pre>
 */
public final class GroupMember {

    private final KafkaConsumer<byte[], byte[]> consumer;
    private final String topic;
    private final int partitions;
    private final int recordBytes;
    private final boolean commitSync;
    private final PrintStream out;
    /** Partitions owned now, as the rebalance callbacks told us. */
    private final SortedSet<Integer> owned = new TreeSet<>();
    /** Next offset to commit per partition: consumed, not yet committed. */
    private final Map<TopicPartition, OffsetAndMetadata> pending = new HashMap<>();
    private volatile boolean stopping;
    /** Set by a stall line, cleared by resume or stop; guarded by itself as a monitor. */
    private final Object stallLock = new Object();
    private boolean stalled;

    private GroupMember(KafkaConsumer<byte[], byte[]> consumer, String topic, int partitions, int recordBytes,
                        boolean commitSync, PrintStream out) {
        this.consumer = consumer;
        this.topic = topic;
        this.partitions = partitions;
        this.recordBytes = recordBytes;
        this.commitSync = commitSync;
        this.out = out;
    }

    public static void main(String[] args) {
        if (args.length < 5) {
            System.err.println("usage: GroupMember <bootstrap> <group> <topic> <partitions> <recordBytes>"
                    + " [--name=NAME] [--assignor=A] [--commit=sync|none] [consumer.key=value...]");
            System.exit(2);
        }
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(ConsumerConfig.GROUP_ID_CONFIG, args[1]);
        String topic = args[2];
        int partitions = Integer.parseInt(args[3]);
        int recordBytes = Integer.parseInt(args[4]);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        String name = "member";
        boolean commitSync = true;
        for (int a = 5; a < args.length; a++) {
            String arg = args[a];
            if (arg.startsWith("--name=")) {
                name = arg.substring("--name=".length());
            } else if (arg.startsWith("--assignor=")) {
                props.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
                        assignorClass(arg.substring("--assignor=".length())));
            } else if (arg.startsWith("--commit=")) {
                String mode = arg.substring("--commit=".length());
                if (!mode.equals("sync") && !mode.equals("none")) {
                    usage("--commit must be sync or none: " + arg);
                }
                commitSync = mode.equals("sync");
            } else {
                String[] kv = arg.split("=", 2);
                if (kv.length != 2 || kv[0].startsWith("-")) {
                    usage("consumer config must be key=value: " + arg);
                }
                props.put(kv[0], kv[1]);
            }
        }
        props.putIfAbsent(ConsumerConfig.CLIENT_ID_CONFIG, name);

        PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false,
                StandardCharsets.UTF_8);
        int status;
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            GroupMember member = new GroupMember(consumer, topic, partitions, recordBytes, commitSync, out);
            out.println("STARTED name=" + name);
            out.flush();
            member.watchStdin();
            status = member.run();
        } catch (Exception e) {
            // Construction or close failed.
            out.println("ERROR " + oneLine(e));
            status = 2;
        }
        if (status == 0) {
            out.println("CLOSED");
        }
        out.flush();
        System.exit(status);
    }

    private static void usage(String why) {
        System.err.println(why);
        System.exit(2);
    }

    private static String assignorClass(String name) {
        switch (name) {
            case "range":
                return RangeAssignor.class.getName();
            case "roundrobin":
                return RoundRobinAssignor.class.getName();
            case "sticky":
                return StickyAssignor.class.getName();
            case "cooperative-sticky":
                return CooperativeStickyAssignor.class.getName();
            default:
                usage("unknown assignor " + name + " (range, roundrobin, sticky, cooperative-sticky)");
                return null;
        }
    }

    /** stop (or EOF) on stdin: leave the poll loop through wakeup(), the one thread-safe call. */
    private void watchStdin() {
        Thread t = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null && !line.trim().equals("stop")) {
                    if (line.trim().equals("stall") || line.trim().equals("resume")) {
                        synchronized (stallLock) {
                            stalled = line.trim().equals("stall");
                            stallLock.notifyAll();
                        }
                    }
                    // other input is ignored
                }
            } catch (IOException e) {
                // treated as end of input
            }
            stopping = true;
            synchronized (stallLock) {
                stalled = false;
                stallLock.notifyAll();
            }
            consumer.wakeup();
        }, "stdin");
        t.setDaemon(true);
        t.start();
    }

    /** The poll loop; returns the exit status. */
    private int run() {
        consumer.subscribe(List.of(topic), new Listener());
        try {
            while (!stopping) {
                ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(200));
                for (ConsumerRecord<byte[], byte[]> r : batch) {
                    String bad = check(r);
                    out.println(bad == null ? "R " + r.partition() + " " + r.offset()
                            : "BAD " + r.partition() + " " + r.offset() + " " + bad);
                    pending.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                commitPending(null);
                out.flush();
                stallIfAsked();
            }
        } catch (WakeupException e) {
            // stop requested
        } catch (NoOffsetForPartitionException e) {
            // auto.offset.reset=none and no committed offset: the test's "lost commit" signal.
            out.println("ERROR " + oneLine(e));
            out.flush();
            return 3;
        } catch (Exception e) {
            out.println("ERROR " + oneLine(e));
            out.flush();
            return 2;
        }
        try {
            commitPending(null);
        } catch (WakeupException e) {
            commitPending(null); // the wakeup was meant for poll; try once more
        }
        out.flush();
        return 0;
    }

    /** After a stall line: no poll() (nor any other consumer call) until resume or stop. */
    private void stallIfAsked() throws InterruptedException {
        synchronized (stallLock) {
            if (!stalled) {
                return;
            }
            out.println("STALLED");
            out.flush();
            while (stalled) {
                stallLock.wait();
            }
        }
        if (!stopping) {
            out.println("RESUMED");
            out.flush();
        }
    }

    /**
     * commitSync of what was consumed and not committed yet (only for the given partitions when
     * not null). A failed commit is reported and kept for the next attempt unless the partition
     * is revoked or lost meanwhile.
     */
    private void commitPending(Collection<TopicPartition> only) {
        if (!commitSync) {
            pending.clear();
            return;
        }
        Map<TopicPartition, OffsetAndMetadata> todo = new HashMap<>();
        pending.forEach((tp, om) -> {
            if (only == null || only.contains(tp)) {
                todo.put(tp, om);
            }
        });
        if (todo.isEmpty()) {
            return;
        }
        try {
            consumer.commitSync(todo);
            todo.keySet().forEach(pending::remove);
            out.println("COMMITTED " + todo.entrySet().stream()
                    .sorted(Map.Entry.comparingByKey((a, b) -> Integer.compare(a.partition(), b.partition())))
                    .map(e -> e.getKey().partition() + ":" + e.getValue().offset())
                    .collect(Collectors.joining(",")));
        } catch (WakeupException e) {
            throw e;
        } catch (Exception e) {
            out.println("COMMIT_FAILED " + oneLine(e));
        }
        out.flush();
    }

    private final class Listener implements ConsumerRebalanceListener {
        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> revoked) {
            // Still the owner here (and, eagerly, before JoinGroup): commit what was consumed.
            commitPending(revoked);
            drop(revoked);
            out.println("REVOKED " + gen() + " removed=" + list(revoked) + " now=" + list(owned));
            out.flush();
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> assigned) {
            assigned.forEach(tp -> owned.add(tp.partition()));
            out.println("ASSIGNED " + gen() + " member=" + consumer.groupMetadata().memberId() + " added="
                    + list(assigned) + " now=" + list(owned));
            out.flush();
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> lost) {
            drop(lost);
            out.println("LOST " + gen() + " lost=" + list(lost) + " now=" + list(owned));
            out.flush();
        }

        private void drop(Collection<TopicPartition> tps) {
            tps.forEach(tp -> {
                owned.remove(tp.partition());
                pending.remove(tp);
            });
        }

        private String gen() {
            return "gen=" + consumer.groupMetadata().generationId();
        }
    }

    private static String list(Collection<?> partitions) {
        if (partitions.isEmpty()) {
            return "-";
        }
        return partitions.stream()
                .map(p -> p instanceof TopicPartition ? ((TopicPartition) p).partition() : (Integer) p)
                .sorted()
                .map(String::valueOf)
                .collect(Collectors.joining(","));
    }

    /** null if r is exactly what ProduceRange wrote at its partition and offset, else why not. */
    private String check(ConsumerRecord<byte[], byte[]> r) {
        int p = r.partition();
        long i = r.offset() * partitions + p;
        if (p < 0 || p >= partitions) {
            return "partition out of range";
        }
        if (!Arrays.equals(r.key(), RoundTrip.key(i, p))) {
            return "key differs";
        }
        byte[] want = RoundTrip.value(i, p, recordBytes);
        if (!Arrays.equals(r.value(), want)) {
            return r.value() == null ? "value is null"
                    : "value differs at byte " + Arrays.mismatch(r.value(), want) + " (length " + r.value().length
                    + ", expected " + want.length + ")";
        }
        if (r.timestampType() != TimestampType.CREATE_TIME || r.timestamp() != RoundTrip.timestamp(i, p)) {
            return "timestamp " + r.timestampType() + " " + r.timestamp() + ", expected CreateTime "
                    + RoundTrip.timestamp(i, p);
        }
        Header[] got = r.headers().toArray();
        List<Header> exp = RoundTrip.headers(i, p);
        if (got.length != exp.size()) {
            return got.length + " headers, expected " + exp.size();
        }
        for (int h = 0; h < got.length; h++) {
            if (!got[h].key().equals(exp.get(h).key()) || !Arrays.equals(got[h].value(), exp.get(h).value())) {
                return "header " + h + " (" + got[h].key() + ") differs";
            }
        }
        return null;
    }

    private static String oneLine(Throwable e) {
        String msg = String.valueOf(e.getMessage()).replace('\n', ' ');
        return e.getClass().getSimpleName() + ": " + msg;
    }
}
