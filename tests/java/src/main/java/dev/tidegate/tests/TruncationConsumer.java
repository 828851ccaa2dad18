package dev.tidegate.tests;

import java.io.IOException;
import java.io.InputStream;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.LogTruncationException;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.WakeupException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * A consumer of one partition that reads it from offset 0 and goes on reading, as a service
 * does, so that a test can take the log away under it and see what the client makes of it.
 * The client checks leader epochs (KIP-320): told its epoch is fenced, it asks
 * OffsetForLeaderEpoch where its epoch ended, and finds its position past that end.
 *
 * <p>Usage: {@code TruncationConsumer <bootstrap> <topic> <partition> <auto.offset.reset>}
 *
 * <p>Prints, one line each, flushed as they happen:
 * <ul>
 * <li>{@code READY} once the partition is assigned at offset 0;
 * <li>{@code RECORD <offset> <leaderEpoch|-1> <timestamp> <keyHex> <valueHex> <name=valueHex|null,...>}
 *     for every record, in the order read;
 * <li>{@code TRUNCATED <offset> <leaderEpoch|-1>} when the client reports a truncation
 *     (LogTruncationException, with {@code auto.offset.reset=none}): the first offset known
 *     to diverge and its epoch; then it exits 0.
 * </ul>
 * With a reset policy the client moves to that offset by itself (and logs it), and reading
 * goes on. It stops, exit status 0, when its standard input closes; on any other client
 * exception it prints {@code FAIL: <exception>} and exits 1; 2 on bad usage.
 */
public final class TruncationConsumer {

    private static final Duration POLL = Duration.ofMillis(100);

    public static void main(String[] args) {
        if (args.length != 4) {
            System.err.println("usage: TruncationConsumer <bootstrap> <topic> <partition> <auto.offset.reset>");
            System.exit(2);
        }
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, args[3]);
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        TopicPartition partition = new TopicPartition(args[1], Integer.parseInt(args[2]));

        AtomicBoolean stdinClosed = new AtomicBoolean();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(props)) {
            Thread watcher = new Thread(() -> {
                drain(System.in);
                stdinClosed.set(true);
                consumer.wakeup();
            });
            watcher.setDaemon(true);
            watcher.start();
            consumer.assign(List.of(partition));
            consumer.seek(partition, 0);
            System.out.println("READY");
            System.out.flush();
            while (!stdinClosed.get()) {
                try {
                    for (ConsumerRecord<byte[], byte[]> record : consumer.poll(POLL)) {
                        System.out.println(describe(record));
                    }
                    System.out.flush();
                } catch (LogTruncationException e) {
                    for (Map.Entry<TopicPartition, OffsetAndMetadata> diverged : e.divergentOffsets().entrySet()) {
                        OffsetAndMetadata at = diverged.getValue();
                        System.out.println("TRUNCATED " + at.offset() + " " + at.leaderEpoch().orElse(-1));
                    }
                    System.out.flush();
                    return;
                } catch (WakeupException e) {
                    // stdin closed: the loop ends
                }
            }
        } catch (Exception e) {
            System.out.println("FAIL: " + e);
            System.out.flush();
            System.exit(1);
        }
    }

    private static String describe(ConsumerRecord<byte[], byte[]> record) {
        HexFormat hex = HexFormat.of();
        StringBuilder headers = new StringBuilder();
        for (Header header : record.headers()) {
            if (headers.length() > 0) {
                headers.append(',');
            }
            headers.append(header.key()).append('=').append(header.value() == null ? "null" : hex.formatHex(header.value()));
        }
        return "RECORD " + record.offset() + " " + record.leaderEpoch().orElse(-1) + " " + record.timestamp()
                + " " + hex.formatHex(record.key() == null ? new byte[0] : record.key())
                + " " + hex.formatHex(record.value() == null ? new byte[0] : record.value())
                + " " + headers;
    }

    private static void drain(InputStream in) {
        byte[] buffer = new byte[256];
        try {
            while (in.read(buffer) >= 0) {
                // nothing is read from stdin; only its end matters
            }
        } catch (IOException e) {
            // as closed
        }
    }

    private TruncationConsumer() {
    }
}
