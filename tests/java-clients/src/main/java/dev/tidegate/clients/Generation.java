package dev.tidegate.clients;

import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.DescribeTopicsResult;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Produce, consume, a consumer group and the admin calls of one kafka-clients release, checked
 * against what was sent. Compiled against each release scripts/deps lists, so it uses nothing
 * newer than 2.8 and nothing removed since (one reflective call where 3.1 renamed a method).
 *
 * <p>Usage: {@code Generation <bootstrap> <topic> <group> <records> <partitions>}
 *
 * <ol>
 *   <li>Admin: createTopics (with retention.ms), listTopics, describeTopics, describeConfigs.
 *   <li>Idempotent producer: record i (key, binary value, headers with a repeated key, an empty
 *       and a null value, CreateTime timestamp) goes to partition i % partitions and must be
 *       acknowledged at offset i / partitions.
 *   <li>Consumer without a group, assigned from the beginning: every record back byte for byte,
 *       in order, at its offset; beginningOffsets, endOffsets and offsetsForTimes.
 *   <li>Group: member A reads the first half of each partition and commits it; while A is in
 *       the group, listConsumerGroups and describeConsumerGroups show it Stable with A owning
 *       every partition; A leaves; listConsumerGroupOffsets reads the commits back; member B
 *       (auto.offset.reset=none: a missing commit is an error) reads exactly the second half.
 * </ol>
 *
 * <p>Exit status: 0 and {@code OK <n>} on stdout; 1 and a {@code FAIL:} line on stderr at the
 * first mismatch; 2 on bad usage or an unexpected client exception.
 */
public final class Generation {

    private static final long BASE_TIMESTAMP_MS = 1_700_000_000_000L;
    private static final Duration STEP_TIMEOUT = Duration.ofSeconds(30);
    private static final long TIMEOUT_S = STEP_TIMEOUT.getSeconds();
    private static final String RETENTION_MS = "86400000";

    private static final class Mismatch extends Exception {
        private static final long serialVersionUID = 1L;

        Mismatch(String message) {
            super(message);
        }
    }

    private final String bootstrap;
    private final String topic;
    private final String group;
    private final int records;
    private final int partitions;
    private final String version;

    private Generation(String[] args) {
        bootstrap = args[0];
        topic = args[1];
        group = args[2];
        records = Integer.parseInt(args[3]);
        partitions = Integer.parseInt(args[4]);
        version = clientVersion();
    }

    /** kafka-clients' own version, from the resource every release carries (AppInfoParser moved in 4.0). */
    private static String clientVersion() {
        Properties props = new Properties();
        try (java.io.InputStream in = KafkaProducer.class.getResourceAsStream("/kafka/kafka-version.properties")) {
            if (in != null) {
                props.load(in);
            }
        } catch (java.io.IOException e) {
            return "unknown";
        }
        return props.getProperty("version", "unknown");
    }

    public static void main(String[] args) {
        if (args.length != 5) {
            System.err.println("usage: Generation <bootstrap> <topic> <group> <records> <partitions>");
            System.exit(2);
        }
        try {
            new Generation(args).run();
        } catch (Mismatch e) {
            System.err.println("FAIL: " + e.getMessage());
            System.exit(1);
        } catch (Exception e) {
            e.printStackTrace();
            System.exit(2);
        }
        System.exit(0);
    }

    private void run() throws Exception {
        Properties adminProps = new Properties();
        adminProps.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(adminProps)) {
            adminCalls(admin);
            produce();
            consumeAssigned();
            groupRound(admin);
        }
        System.out.println("kafka-clients " + version);
        System.out.println("OK " + records);
    }

    // ---- records

    private int partitionOf(int i) {
        return i % partitions;
    }

    private long offsetOf(int i) {
        return i / partitions;
    }

    private int countIn(int p) {
        return (records - p + partitions - 1) / partitions;
    }

    private static byte[] key(int i) {
        return ("key-" + i).getBytes(StandardCharsets.UTF_8);
    }

    private byte[] value(int i) {
        byte[] prefix = ("java " + version + " record " + i + " ").getBytes(StandardCharsets.UTF_8);
        byte[] v = Arrays.copyOf(prefix, prefix.length + i % 50);
        for (int j = 0; j < i % 50; j++) {
            v[prefix.length + j] = (byte) ((i * 7 + j) % 256);
        }
        return v;
    }

    private static List<Header> headers(int i) {
        List<Header> h = new ArrayList<>();
        h.add(new RecordHeader("idx", Integer.toString(i).getBytes(StandardCharsets.UTF_8)));
        h.add(new RecordHeader("dup", "a".getBytes(StandardCharsets.UTF_8)));
        h.add(new RecordHeader("dup", "b".getBytes(StandardCharsets.UTF_8)));
        h.add(new RecordHeader("empty", new byte[0]));
        h.add(new RecordHeader("null", null));
        return h;
    }

    private static String show(List<Header> headers) {
        StringBuilder sb = new StringBuilder("[");
        for (Header h : headers) {
            sb.append(h.key()).append('=')
                    .append(h.value() == null ? "null" : Arrays.toString(h.value())).append(' ');
        }
        return sb.append(']').toString();
    }

    private static boolean sameHeaders(List<Header> a, List<Header> b) {
        if (a.size() != b.size()) {
            return false;
        }
        for (int k = 0; k < a.size(); k++) {
            if (!a.get(k).key().equals(b.get(k).key()) || !Arrays.equals(a.get(k).value(), b.get(k).value())) {
                return false;
            }
        }
        return true;
    }

    private void check(ConsumerRecord<byte[], byte[]> r, String what) throws Mismatch {
        int i = (int) (r.offset() * partitions + r.partition());
        List<Header> got = new ArrayList<>();
        r.headers().forEach(got::add);
        String where = what + ": record " + i + " (partition " + r.partition() + " offset " + r.offset() + ")";
        if (i >= records) {
            throw new Mismatch(where + " was never produced");
        }
        if (!Arrays.equals(r.key(), key(i)) || !Arrays.equals(r.value(), value(i))) {
            throw new Mismatch(where + ": key " + Arrays.toString(r.key()) + " value " + Arrays.toString(r.value())
                    + ", wanted " + Arrays.toString(key(i)) + " / " + Arrays.toString(value(i)));
        }
        if (!sameHeaders(got, headers(i))) {
            throw new Mismatch(where + ": headers " + show(got) + ", wanted " + show(headers(i)));
        }
        if (r.timestamp() != BASE_TIMESTAMP_MS + i || r.timestampType() != TimestampType.CREATE_TIME) {
            throw new Mismatch(where + ": timestamp " + r.timestamp() + " " + r.timestampType() + ", wanted "
                    + (BASE_TIMESTAMP_MS + i) + " CreateTime");
        }
    }

    // ---- 1. admin

    @SuppressWarnings("unchecked")
    private static Map<String, TopicDescription> describeTopics(Admin admin, Collection<String> names)
            throws Exception {
        DescribeTopicsResult result = admin.describeTopics(names);
        // allTopicNames() from 3.1 on; all() until 4.0.
        for (String name : new String[] {"allTopicNames", "all"}) {
            Method m;
            try {
                m = DescribeTopicsResult.class.getMethod(name);
            } catch (NoSuchMethodException e) {
                continue;
            }
            return ((KafkaFuture<Map<String, TopicDescription>>) m.invoke(result)).get(TIMEOUT_S, TimeUnit.SECONDS);
        }
        throw new IllegalStateException("DescribeTopicsResult has neither allTopicNames() nor all()");
    }

    private void adminCalls(Admin admin) throws Exception {
        NewTopic newTopic = new NewTopic(topic, partitions, (short) 1);
        newTopic.configs(Map.of("retention.ms", RETENTION_MS));
        admin.createTopics(List.of(newTopic)).all().get(TIMEOUT_S, TimeUnit.SECONDS);

        Set<String> names = admin.listTopics().names().get(TIMEOUT_S, TimeUnit.SECONDS);
        if (!names.contains(topic)) {
            throw new Mismatch("listTopics: " + topic + " missing from " + names);
        }
        Collection<Node> nodes = admin.describeCluster().nodes().get(TIMEOUT_S, TimeUnit.SECONDS);
        TopicDescription d = describeTopics(admin, List.of(topic)).get(topic);
        List<Integer> ids = new ArrayList<>();
        for (TopicPartitionInfo p : d.partitions()) {
            ids.add(p.partition());
            if (p.leader() == null || !nodes.contains(p.leader())) {
                throw new Mismatch("describeTopics: partition " + p.partition() + " led by " + p.leader()
                        + ", not one of " + nodes);
            }
        }
        List<Integer> want = new ArrayList<>();
        for (int p = 0; p < partitions; p++) {
            want.add(p);
        }
        if (!ids.equals(want)) {
            throw new Mismatch("describeTopics: partitions " + ids + ", wanted " + want);
        }

        ConfigResource resource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        Config config = admin.describeConfigs(List.of(resource)).all().get(TIMEOUT_S, TimeUnit.SECONDS).get(resource);
        String retention = config.get("retention.ms") == null ? null : config.get("retention.ms").value();
        String cleanup = config.get("cleanup.policy") == null ? null : config.get("cleanup.policy").value();
        if (!RETENTION_MS.equals(retention) || !"delete".equals(cleanup)) {
            throw new Mismatch("describeConfigs: retention.ms " + retention + " (created with " + RETENTION_MS
                    + "), cleanup.policy " + cleanup + "; all: " + config);
        }
    }

    // ---- 2. produce

    private void produce() throws Exception {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        List<Future<RecordMetadata>> acks = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer =
                new KafkaProducer<>(props, new ByteArraySerializer(), new ByteArraySerializer())) {
            for (int i = 0; i < records; i++) {
                acks.add(producer.send(new ProducerRecord<>(topic, partitionOf(i), BASE_TIMESTAMP_MS + i, key(i),
                        value(i), headers(i))));
            }
            producer.flush();
            for (int i = 0; i < records; i++) {
                RecordMetadata md = acks.get(i).get(TIMEOUT_S, TimeUnit.SECONDS);
                if (md.partition() != partitionOf(i) || md.offset() != offsetOf(i)) {
                    throw new Mismatch("record " + i + " acknowledged at " + md.partition() + "@" + md.offset()
                            + ", expected " + partitionOf(i) + "@" + offsetOf(i));
                }
            }
        }
    }

    // ---- 3. consume from the start

    private KafkaConsumer<byte[], byte[]> consumer(String groupId, String reset) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, reset);
        if (groupId != null) {
            props.put(ConsumerConfig.GROUP_ID_CONFIG, groupId);
            props.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "6000");
            props.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "500");
        }
        return new KafkaConsumer<>(props, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    /** Polls until partition p has given offsets start[p]..end[p]-1 in order; later ones are ignored. */
    private void consumeExactly(KafkaConsumer<byte[], byte[]> consumer, long[] start, long[] end, String what)
            throws Mismatch {
        long[] next = start.clone();
        long deadline = System.nanoTime() + STEP_TIMEOUT.toNanos();
        while (true) {
            boolean done = true;
            for (int p = 0; p < partitions; p++) {
                done &= next[p] >= end[p];
            }
            if (done) {
                return;
            }
            if (System.nanoTime() > deadline) {
                throw new Mismatch(what + ": no more records after " + TIMEOUT_S + "s; next offsets "
                        + Arrays.toString(next) + ", wanted " + Arrays.toString(end));
            }
            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                check(r, what);
                int p = r.partition();
                if (r.offset() >= end[p]) {
                    continue;
                }
                if (r.offset() != next[p]) {
                    throw new Mismatch(what + ": partition " + p + " gave offset " + r.offset() + ", expected "
                            + next[p]);
                }
                next[p]++;
            }
        }
    }

    private List<TopicPartition> topicPartitions() {
        List<TopicPartition> tps = new ArrayList<>();
        for (int p = 0; p < partitions; p++) {
            tps.add(new TopicPartition(topic, p));
        }
        return tps;
    }

    private long[] ends() {
        long[] end = new long[partitions];
        for (int p = 0; p < partitions; p++) {
            end[p] = countIn(p);
        }
        return end;
    }

    private void consumeAssigned() throws Exception {
        try (KafkaConsumer<byte[], byte[]> consumer = consumer(null, "earliest")) {
            List<TopicPartition> tps = topicPartitions();
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            consumeExactly(consumer, new long[partitions], ends(), "assigned consumer");

            Map<TopicPartition, Long> begin = consumer.beginningOffsets(tps, STEP_TIMEOUT);
            Map<TopicPartition, Long> end = consumer.endOffsets(tps, STEP_TIMEOUT);
            // offsetsForTimes: the first record at or after record `at`'s timestamp.
            int at = Math.min(records - 1, 10 * partitions);
            Map<TopicPartition, Long> query = new HashMap<>();
            for (TopicPartition tp : tps) {
                query.put(tp, BASE_TIMESTAMP_MS + at);
            }
            Map<TopicPartition, OffsetAndTimestamp> byTime = consumer.offsetsForTimes(query, STEP_TIMEOUT);
            for (TopicPartition tp : tps) {
                int p = tp.partition();
                long first = (at - p + partitions - 1) / partitions; // first offset o with o*P+p >= at
                OffsetAndTimestamp ot = byTime.get(tp);
                if (begin.get(tp) != 0 || end.get(tp) != countIn(p)) {
                    throw new Mismatch("partition " + p + ": beginningOffsets " + begin.get(tp) + ", endOffsets "
                            + end.get(tp) + ", wanted 0 and " + countIn(p));
                }
                if (first < countIn(p) && (ot == null || ot.offset() != first
                        || ot.timestamp() != BASE_TIMESTAMP_MS + first * partitions + p)) {
                    throw new Mismatch("partition " + p + ": offsetsForTimes(" + (BASE_TIMESTAMP_MS + at) + ") = "
                            + ot + ", wanted offset " + first);
                }
            }
        }
    }

    // ---- 4. consumer group

    private void groupRound(Admin admin) throws Exception {
        long[] half = new long[partitions];
        Map<TopicPartition, OffsetAndMetadata> commits = new HashMap<>();
        for (int p = 0; p < partitions; p++) {
            half[p] = countIn(p) / 2;
            commits.put(new TopicPartition(topic, p), new OffsetAndMetadata(half[p], "gen-" + version));
        }
        try (KafkaConsumer<byte[], byte[]> a = consumer(group, "earliest")) {
            a.subscribe(List.of(topic));
            consumeExactly(a, new long[partitions], half, "member A");
            a.commitSync(commits, STEP_TIMEOUT);
            checkGroupListed(admin);
        }

        Map<TopicPartition, OffsetAndMetadata> read = admin.listConsumerGroupOffsets(group)
                .partitionsToOffsetAndMetadata().get(TIMEOUT_S, TimeUnit.SECONDS);
        if (!new TreeMap<>(offsetsOf(read)).equals(new TreeMap<>(offsetsOf(commits)))) {
            throw new Mismatch("listConsumerGroupOffsets: " + read + ", committed " + commits);
        }

        try (KafkaConsumer<byte[], byte[]> b = consumer(group, "none")) {
            b.subscribe(List.of(topic));
            consumeExactly(b, half, ends(), "member B");
            for (ConsumerRecord<byte[], byte[]> r : b.poll(Duration.ofSeconds(1))) {
                throw new Mismatch("member B: record past the end at " + r.partition() + "@" + r.offset());
            }
        }
    }

    private static Map<String, String> offsetsOf(Map<TopicPartition, OffsetAndMetadata> m) {
        Map<String, String> out = new HashMap<>();
        m.forEach((tp, om) -> out.put(tp.toString(), om.offset() + "/" + om.metadata()));
        return out;
    }

    @SuppressWarnings("deprecation") // ConsumerGroupDescription.state(): 4.x has groupState()
    private void checkGroupListed(Admin admin) throws Exception {
        Collection<ConsumerGroupListing> listed = admin.listConsumerGroups().all().get(TIMEOUT_S, TimeUnit.SECONDS);
        boolean found = false;
        for (ConsumerGroupListing g : listed) {
            found |= g.groupId().equals(group);
        }
        if (!found) {
            throw new Mismatch("listConsumerGroups: " + group + " missing from " + listed);
        }
        ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all()
                .get(TIMEOUT_S, TimeUnit.SECONDS).get(group);
        Set<Integer> owned = new TreeSet<>();
        for (MemberDescription m : d.members()) {
            for (TopicPartition tp : m.assignment().topicPartitions()) {
                owned.add(tp.partition());
            }
        }
        if (!"Stable".equalsIgnoreCase(d.state().toString()) || d.members().size() != 1
                || !owned.equals(new TreeSet<>(Arrays.asList(range(partitions))))) {
            throw new Mismatch("describeConsumerGroups: state " + d.state() + ", " + d.members().size()
                    + " members owning " + owned);
        }
    }

    private static Integer[] range(int n) {
        Integer[] r = new Integer[n];
        for (int k = 0; k < n; k++) {
            r[k] = k;
        }
        return r;
    }
}
