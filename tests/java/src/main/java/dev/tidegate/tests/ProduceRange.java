package dev.tidegate.tests;

import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Produces records {@code from} (inclusive) to {@code to} (exclusive) of {@link RoundTrip}'s
 * deterministic sequence to an existing topic: record {@code i} goes to partition
 * {@code i % partitions} at offset {@code i / partitions}, with RoundTrip's key, value,
 * headers and timestamp. Several runs with adjacent ranges build one sequence, so a consumer
 * ({@link GroupMember}) can check any record it gets from (partition, offset) alone.
 *
 * <p>Usage: {@code ProduceRange <bootstrap> <topic> <partitions> <from> <to> <recordBytes> [key=value...]}
 * (producer configs, e.g. security.protocol=SASL_PLAINTEXT and the sasl.* of a user)
 *
 * <p>Exit status: 0 and {@code PRODUCED <n>} on stdout when every record was acknowledged at
 * its expected offset; 1 and a {@code FAIL:} line on stderr otherwise; 2 on bad usage.
 */
public final class ProduceRange {

    public static void main(String[] args) {
        if (args.length < 6) {
            System.err.println("usage: ProduceRange <bootstrap> <topic> <partitions> <from> <to> <recordBytes>"
                    + " [key=value...]");
            System.exit(2);
        }
        String bootstrap = args[0];
        String topic = args[1];
        int partitions = Integer.parseInt(args[2]);
        long from = Long.parseLong(args[3]);
        long to = Long.parseLong(args[4]);
        int recordBytes = Integer.parseInt(args[5]);
        if (partitions < 1 || from < 0 || to < from || recordBytes < 0) {
            System.err.println("need partitions >= 1, 0 <= from <= to, recordBytes >= 0");
            System.exit(2);
        }

        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        for (int a = 6; a < args.length; a++) {
            String[] kv = args[a].split("=", 2);
            if (kv.length != 2) {
                System.err.println("producer config must be key=value: " + args[a]);
                System.exit(2);
            }
            props.put(kv[0], kv[1]);
        }
        // Client defaults otherwise (idempotence on, acks=all): per-partition order is send
        // order, so every record's offset is known before it is sent.
        AtomicReference<String> firstError = new AtomicReference<>();
        AtomicLong acked = new AtomicLong();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            for (long i = from; i < to && firstError.get() == null; i++) {
                final long idx = i;
                final int p = (int) (i % partitions);
                final long expectedOffset = i / partitions;
                producer.send(new ProducerRecord<>(topic, p, RoundTrip.timestamp(i, p), RoundTrip.key(i, p),
                        RoundTrip.value(i, p, recordBytes), RoundTrip.headers(i, p)), (md, ex) -> {
                    if (ex != null) {
                        firstError.compareAndSet(null, "send of record " + idx + " failed: " + ex);
                    } else if (md.partition() != p || md.offset() != expectedOffset) {
                        firstError.compareAndSet(null, "record " + idx + " acked at " + md.partition() + "@"
                                + md.offset() + ", expected " + p + "@" + expectedOffset);
                    } else {
                        acked.incrementAndGet();
                    }
                });
            }
            producer.flush();
        } catch (Exception e) {
            firstError.compareAndSet(null, "producer failed: " + e);
        }
        if (firstError.get() == null && acked.get() != to - from) {
            firstError.set("only " + acked.get() + " of " + (to - from) + " sends were acknowledged");
        }
        if (firstError.get() != null) {
            System.err.println("FAIL: " + firstError.get());
            System.exit(1);
        }
        System.out.println("PRODUCED " + (to - from));
    }

    private ProduceRange() {
    }
}
