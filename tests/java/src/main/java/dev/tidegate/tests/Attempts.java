package dev.tidegate.tests;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Makes attempts a client may be refused, one after another, each bounded in time, and
 * prints what each met: how a test reads, through the Java client's own exceptions, the
 * error code the gateway answered (TopicAuthorizationException for
 * TOPIC_AUTHORIZATION_FAILED, and so on).
 *
 * <p>Usage: {@code Attempts <bootstrap> <attempt>... [key=value...]}, the configs applying
 * to every client (security.protocol, sasl.*, ssl.*). Attempts:
 * <ul>
 *   <li>{@code produce:TOPIC}: send one record to partition 0 with the client's defaults
 *       (idempotent, acks=all) and wait for its acknowledgement
 *   <li>{@code fetch:TOPIC}: assign partition 0 without a group and poll from the beginning
 *       until a record comes
 *   <li>{@code join:GROUP:TOPIC}: subscribe to TOPIC in GROUP and poll until assigned
 *   <li>{@code delete:TOPIC}: Admin deleteTopics
 *   <li>{@code list}: Admin listTopics
 * </ul>
 *
 * <p>stdout, one line per attempt, in order: {@code ATTEMPT OK [detail]} (for {@code list}
 * the topic names, sorted and comma-separated), {@code ATTEMPT EXCEPTION: message}, or
 * {@code ATTEMPT TIMEOUT}. Exit status 0 once every attempt was made, whatever it met; 2 on
 * bad usage.
 */
public final class Attempts {

    /** How long one attempt may take before it counts as TIMEOUT. */
    private static final Duration BOUND = Duration.ofSeconds(20);

    private static final Properties CONNECTION = new Properties();

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: Attempts <bootstrap> <attempt>... [key=value...]");
            System.exit(2);
        }
        String bootstrap = args[0];
        List<String> attempts = new ArrayList<>();
        for (int a = 1; a < args.length; a++) {
            String[] kv = args[a].split("=", 2);
            if (kv.length == 2) {
                CONNECTION.put(kv[0], kv[1]);
            } else if (args[a].matches("(produce|fetch|delete):[^:]+|join:[^:]+:[^:]+|list")) {
                attempts.add(args[a]);
            } else {
                System.err.println("unknown attempt " + args[a]);
                System.exit(2);
            }
        }
        CONNECTION.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        for (String attempt : attempts) {
            String[] parts = attempt.split(":");
            String outcome;
            try {
                outcome = switch (parts[0]) {
                    case "produce" -> produce(parts[1]);
                    case "fetch" -> fetch(parts[1]);
                    case "join" -> join(parts[1], parts[2]);
                    case "delete" -> delete(parts[1]);
                    default -> list();
                };
            } catch (TimeoutException e) {
                outcome = "TIMEOUT";
            } catch (Exception e) {
                Throwable cause = e;
                while ((cause instanceof ExecutionException || cause instanceof CompletionException)
                        && cause.getCause() != null) {
                    cause = cause.getCause();
                }
                outcome = cause.getClass().getSimpleName() + ": " + String.valueOf(cause.getMessage())
                        .replace('\n', ' ');
            }
            System.out.println(attempt + " " + outcome);
            System.out.flush();
        }
    }

    private static String produce(String topic) throws Exception {
        Properties props = new Properties();
        props.putAll(CONNECTION);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, String.valueOf(BOUND.toMillis()));
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, String.valueOf(BOUND.toMillis() / 2));
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, String.valueOf(BOUND.toMillis()));
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            byte[] value = "attempt".getBytes(StandardCharsets.UTF_8);
            RecordMetadata md = producer.send(new ProducerRecord<>(topic, 0, null, value))
                    .get(BOUND.toMillis(), TimeUnit.MILLISECONDS);
            return "OK offset=" + md.offset();
        }
    }

    private static KafkaConsumer<byte[], byte[]> consumer(String group) {
        Properties props = new Properties();
        props.putAll(CONNECTION);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        props.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, String.valueOf(BOUND.toMillis()));
        if (group != null) {
            props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        return new KafkaConsumer<>(props);
    }

    private static String fetch(String topic) throws TimeoutException {
        try (KafkaConsumer<byte[], byte[]> consumer = consumer(null)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            long deadline = System.nanoTime() + BOUND.toNanos();
            while (System.nanoTime() < deadline) {
                int records = consumer.poll(Duration.ofMillis(200)).count();
                if (records > 0) {
                    return "OK records=" + records;
                }
            }
        }
        throw new TimeoutException();
    }

    private static String join(String group, String topic) throws TimeoutException {
        try (KafkaConsumer<byte[], byte[]> consumer = consumer(group)) {
            consumer.subscribe(List.of(topic));
            long deadline = System.nanoTime() + BOUND.toNanos();
            while (System.nanoTime() < deadline) {
                consumer.poll(Duration.ofMillis(200));
                if (!consumer.assignment().isEmpty()) {
                    return "OK assigned=" + consumer.assignment().size();
                }
            }
        }
        throw new TimeoutException();
    }

    private static Admin admin() {
        Properties props = new Properties();
        props.putAll(CONNECTION);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, String.valueOf(BOUND.toMillis()));
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, String.valueOf(BOUND.toMillis() / 2));
        return Admin.create(props);
    }

    private static String delete(String topic) throws Exception {
        try (Admin admin = admin()) {
            admin.deleteTopics(List.of(topic)).all().get(BOUND.toMillis(), TimeUnit.MILLISECONDS);
            return "OK";
        }
    }

    private static String list() throws Exception {
        try (Admin admin = admin()) {
            Set<String> names = new TreeSet<>(admin.listTopics().names().get(BOUND.toMillis(), TimeUnit.MILLISECONDS));
            return "OK " + String.join(",", names);
        }
    }

    private Attempts() {
    }
}
