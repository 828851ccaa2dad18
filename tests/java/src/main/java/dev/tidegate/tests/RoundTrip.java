package dev.tidegate.tests;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Produce-then-consume check against a gateway, byte for byte.
 *
 * <p>Usage: {@code RoundTrip <bootstrap> <topic> <partitions> <records> <recordBytes>}
 *
 * <p>Record {@code i} goes to partition {@code i % partitions} and is the
 * {@code i / partitions}-th record there, so every field, and its expected offset,
 * can be recomputed from (i, partition) on the consumer side without keeping
 * anything in memory. The producer runs with the client's defaults (idempotence on,
 * acks=all) because that is what real applications send.
 *
 * <p>Exit status: 0 and {@code OK <n>} on stdout on success; 1 and a {@code FAIL:} line
 * on stderr at the first mismatch; 2 on bad usage or an unexpected client exception.
 */
public final class RoundTrip {

    /** Fixed and in the past so that no broker-side timestamp window rejects it. */
    private static final long BASE_TIMESTAMP_MS = 1_700_000_000_000L;
    /** How long the consumer may see nothing before giving up. */
    private static final Duration IDLE_TIMEOUT = Duration.ofSeconds(30);
    private static final String HEADER_INDEX = "tg-index";
    private static final String HEADER_PARTITION = "tg-partition";

    private static final class Mismatch extends Exception {
        private static final long serialVersionUID = 1L;

        Mismatch(String message) {
            super(message);
        }
    }

    private static final Properties PRODUCER_OVERRIDES = new Properties();
    /** How every client connects (security.*, sasl.*, ssl.* from the command line). */
    private static final Properties CONNECTION = new Properties();

    public static void main(String[] args) {
        if (args.length < 5) {
            System.err.println("usage: RoundTrip <bootstrap> <topic> <partitions> <records> <recordBytes> [producer.key=value...]"
                    + " (security.*, sasl.* and ssl.* apply to every client)");
            System.exit(2);
        }
        String bootstrap = args[0];
        String topic = args[1];
        int partitions = Integer.parseInt(args[2]);
        long records = Long.parseLong(args[3]);
        int recordBytes = Integer.parseInt(args[4]);
        // Extra producer configs (compression.type=snappy, ...) on top of the defaults.
        for (int a = 5; a < args.length; a++) {
            String[] kv = args[a].split("=", 2);
            if (kv.length != 2) {
                System.err.println("producer config must be key=value: " + args[a]);
                System.exit(2);
            }
            boolean connection = kv[0].startsWith("security.") || kv[0].startsWith("sasl.")
                    || kv[0].startsWith("ssl.");
            (connection ? CONNECTION : PRODUCER_OVERRIDES).put(kv[0], kv[1]);
        }
        if (partitions < 1 || records < 0 || recordBytes < 0) {
            System.err.println("partitions must be >= 1, records and recordBytes >= 0");
            System.exit(2);
        }
        try {
            createTopic(bootstrap, topic, partitions);
            produce(bootstrap, topic, partitions, records, recordBytes);
            consume(bootstrap, topic, partitions, records, recordBytes);
        } catch (Mismatch e) {
            System.err.println("FAIL: " + e.getMessage());
            System.exit(1);
        } catch (Exception e) {
            System.err.println("ERROR: unexpected exception");
            e.printStackTrace();
            System.exit(2);
        }
        System.out.println("OK " + records);
    }

    // ---- deterministic record contents -------------------------------------------------

    static byte[] key(long i, int p) {
        return ("key-" + p + "-" + i).getBytes(StandardCharsets.UTF_8);
    }

    /** A readable prefix (helps when a value shows up in the wrong place) then noise. */
    static byte[] value(long i, int p, int size) {
        byte[] out = new byte[size];
        byte[] prefix = ("record " + i + " partition " + p + " ").getBytes(StandardCharsets.UTF_8);
        int n = Math.min(prefix.length, size);
        System.arraycopy(prefix, 0, out, 0, n);
        long state = i * 0x9E3779B97F4A7C15L ^ ((long) p << 48);
        for (int off = n; off < size; ) {
            state += 0x9E3779B97F4A7C15L; // splitmix64
            long z = state;
            z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
            z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
            z = z ^ (z >>> 31);
            for (int b = 0; b < 8 && off < size; b++, off++) {
                out[off] = (byte) (z >>> (8 * b));
            }
        }
        return out;
    }

    static List<Header> headers(long i, int p) {
        List<Header> hs = new ArrayList<>(2);
        hs.add(new RecordHeader(HEADER_INDEX, ByteBuffer.allocate(8).putLong(i).array()));
        hs.add(new RecordHeader(HEADER_PARTITION, ("partition-" + p).getBytes(StandardCharsets.UTF_8)));
        return hs;
    }

    static long timestamp(long i, int p) {
        return BASE_TIMESTAMP_MS + i * 3 + p;
    }

    /** Records that land in partition p when `records` are spread by index % partitions. */
    static long expectedCount(long records, int partitions, int p) {
        return records <= p ? 0 : (records - p + partitions - 1) / partitions;
    }

    // ---- phases -------------------------------------------------------------------------

    private static void createTopic(String bootstrap, String topic, int partitions) throws Exception {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.putAll(CONNECTION);
        try (Admin admin = Admin.create(props)) {
            // No "already exists" tolerance: a reused topic would break the offsets-from-0 check.
            admin.createTopics(List.of(new NewTopic(topic, partitions, (short) 1)))
                    .all().get(60, TimeUnit.SECONDS);
        }
    }

    private static void produce(String bootstrap, String topic, int partitions, long records, int recordBytes)
            throws Exception {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.putAll(PRODUCER_OVERRIDES);
        props.putAll(CONNECTION);

        AtomicReference<String> firstError = new AtomicReference<>();
        AtomicLong acked = new AtomicLong();
        long start = System.nanoTime();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            for (long i = 0; i < records && firstError.get() == null; i++) {
                final long idx = i;
                final int p = (int) (i % partitions);
                final long expectedOffset = i / partitions;
                ProducerRecord<byte[], byte[]> rec = new ProducerRecord<>(
                        topic, p, timestamp(i, p), key(i, p), value(i, p, recordBytes), headers(i, p));
                producer.send(rec, (md, ex) -> {
                    if (ex != null) {
                        firstError.compareAndSet(null, "send of record " + idx + " to partition " + p
                                + " failed: " + ex);
                    } else if (md.partition() != p || md.offset() != expectedOffset) {
                        // Idempotent producer => per-partition order is preserved, so the
                        // broker must hand out exactly these offsets.
                        firstError.compareAndSet(null, "record " + idx + " acked at " + md.partition()
                                + "@" + md.offset() + ", expected " + p + "@" + expectedOffset);
                    } else {
                        acked.incrementAndGet();
                    }
                });
            }
            producer.flush();
        }
        if (firstError.get() != null) {
            throw new Mismatch(firstError.get());
        }
        if (acked.get() != records) {
            throw new Mismatch("only " + acked.get() + " of " + records + " sends were acknowledged");
        }
        System.out.printf("produced %d records in %d ms%n", records,
                TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
    }

    private static void consume(String bootstrap, String topic, int partitions, long records, int recordBytes)
            throws Mismatch {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        // No group.id and no commits: the gateway has no group coordinator yet.
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.putAll(CONNECTION);

        List<TopicPartition> tps = new ArrayList<>();
        Map<TopicPartition, Long> expected = new HashMap<>();
        for (int p = 0; p < partitions; p++) {
            TopicPartition tp = new TopicPartition(topic, p);
            tps.add(tp);
            expected.put(tp, expectedCount(records, partitions, p));
        }

        long start = System.nanoTime();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            // ListOffsets first: a wrong log-start/high-watermark is easier to read here
            // than as a consumer that silently waits forever.
            Map<TopicPartition, Long> begin = consumer.beginningOffsets(tps, Duration.ofSeconds(30));
            Map<TopicPartition, Long> end = consumer.endOffsets(tps, Duration.ofSeconds(30));
            for (TopicPartition tp : tps) {
                if (begin.get(tp) != 0L) {
                    throw new Mismatch(tp + ": beginning offset " + begin.get(tp) + ", expected 0");
                }
                if (!end.get(tp).equals(expected.get(tp))) {
                    throw new Mismatch(tp + ": end offset " + end.get(tp) + ", expected " + expected.get(tp));
                }
            }

            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            long[] next = new long[partitions]; // next expected offset per partition
            long total = 0;
            long lastProgress = System.nanoTime();
            while (total < records) {
                ConsumerRecords<byte[], byte[]> batch = consumer.poll(Duration.ofMillis(500));
                if (batch.isEmpty()) {
                    if (System.nanoTime() - lastProgress > IDLE_TIMEOUT.toNanos()) {
                        throw new Mismatch("no records for " + IDLE_TIMEOUT.toSeconds() + " s after " + total
                                + " of " + records + "; next offsets per partition: " + Arrays.toString(next));
                    }
                    continue;
                }
                lastProgress = System.nanoTime();
                for (ConsumerRecord<byte[], byte[]> r : batch) {
                    int p = r.partition();
                    if (r.offset() != next[p]) {
                        throw new Mismatch("partition " + p + ": got offset " + r.offset() + ", expected " + next[p]);
                    }
                    if (next[p] >= expected.get(tps.get(p))) {
                        throw new Mismatch("partition " + p + ": unexpected extra record at offset " + r.offset());
                    }
                    check(r, next[p] * partitions + p, recordBytes);
                    next[p]++;
                    total++;
                }
            }
        }
        System.out.printf("consumed and verified %d records in %d ms%n", records,
                TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
    }

    private static void check(ConsumerRecord<byte[], byte[]> r, long i, int recordBytes) throws Mismatch {
        int p = r.partition();
        String where = "record " + i + " (partition " + p + " offset " + r.offset() + "): ";
        if (!Arrays.equals(r.key(), key(i, p))) {
            throw new Mismatch(where + "key " + show(r.key()) + ", expected " + show(key(i, p)));
        }
        byte[] want = value(i, p, recordBytes);
        if (!Arrays.equals(r.value(), want)) {
            if (r.value() == null) {
                throw new Mismatch(where + "value is null");
            }
            int at = Arrays.mismatch(r.value(), want);
            throw new Mismatch(where + "value differs at byte " + at + " (length " + r.value().length
                    + ", expected " + want.length + "); got prefix " + show(Arrays.copyOf(r.value(),
                    Math.min(40, r.value().length))));
        }
        if (r.timestampType() != TimestampType.CREATE_TIME || r.timestamp() != timestamp(i, p)) {
            throw new Mismatch(where + "timestamp " + r.timestampType() + " " + r.timestamp()
                    + ", expected CreateTime " + timestamp(i, p));
        }
        Header[] got = r.headers().toArray();
        List<Header> exp = headers(i, p);
        if (got.length != exp.size()) {
            throw new Mismatch(where + got.length + " headers, expected " + exp.size());
        }
        for (int h = 0; h < got.length; h++) {
            if (!got[h].key().equals(exp.get(h).key()) || !Arrays.equals(got[h].value(), exp.get(h).value())) {
                throw new Mismatch(where + "header " + h + " is " + got[h].key() + "=" + show(got[h].value())
                        + ", expected " + exp.get(h).key() + "=" + show(exp.get(h).value()));
            }
        }
    }

    private static String show(byte[] b) {
        if (b == null) {
            return "null";
        }
        StringBuilder sb = new StringBuilder("\"");
        for (byte x : b) {
            int c = x & 0xff;
            if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
                sb.append((char) c);
            } else {
                sb.append(String.format("\\x%02x", c));
            }
        }
        return sb.append('"').toString();
    }

    private RoundTrip() {
    }
}
