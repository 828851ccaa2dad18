// kafkajs against a gateway: admin calls, idempotent produce, consume from the start, a group
// that commits and resumes, every record checked against what was sent.
//
//   node kafkajs_roundtrip.js BOOTSTRAP TOPIC GROUP [RECORDS] [PARTITIONS]
//
// Run by tests/clients/test_kafkajs.py with NODE_PATH=.cache/node/node_modules (scripts/deps
// node). kafkajs has no assign(): "from the start" is a group of its own with fromBeginning.
//  1. Admin: createTopics (with retention.ms), listTopics, fetchTopicMetadata, describeConfigs.
//  2. Producer (idempotent, acks=all): record i (key, binary value, headers with a repeated key
//     and an empty value, timestamp) to partition i % PARTITIONS at offset i / PARTITIONS;
//     fetchTopicOffsets and fetchTopicOffsetsByTimestamp (ListOffsets) then agree.
//  3. A fresh group from the beginning: every record back byte for byte, in order.
//  4. Member A of GROUP reads the first half of each partition, commits it; while it is in the
//     group listGroups/describeGroups show it (Stable, one member); it leaves; fetchOffsets
//     reads the commits back; member B resumes exactly at them and reads the rest.
// Exits 0 printing "OK <n>", or 1 with "FAIL: ..." at the first mismatch.
'use strict';

const { Kafka, logLevel, ConfigResourceTypes, AssignerProtocol } = require('kafkajs');

const BASE_TS_MS = 1700000000000;
const STEP_TIMEOUT_MS = 30000;
const RETENTION_MS = '86400000';

const [bootstrap, topic, group] = process.argv.slice(2, 5);
const records = Number(process.argv[5] || 200);
const partitions = Number(process.argv[6] || 2);

function fail(msg) {
  process.stderr.write(`FAIL: ${msg}\n`);
  process.exit(1);
}

function expected(i) {
  const noise = Buffer.alloc(i % 50);
  for (let j = 0; j < noise.length; j++) noise[j] = (i * 7 + j) % 256;
  return {
    partition: i % partitions,
    offset: Math.floor(i / partitions),
    key: Buffer.from(`kafkajs-key-${i}`),
    value: Buffer.concat([Buffer.from(`kafkajs record ${i} `), noise]),
    headers: { idx: Buffer.from(String(i)), dup: [Buffer.from('a'), Buffer.from('b')], empty: Buffer.alloc(0) },
    timestamp: String(BASE_TS_MS + i),
  };
}

const countIn = (p) => Math.floor((records - p + partitions - 1) / partitions);
const range = (n) => [...Array(n).keys()];
const ends = () => range(partitions).map(countIn);
const halves = () => range(partitions).map((p) => Math.floor(countIn(p) / 2));

function sameHeaders(got, want) {
  const norm = (h) => JSON.stringify(Object.keys(h || {}).sort().map((k) =>
    [k, Array.isArray(h[k]) ? h[k].map((v) => Buffer.from(v).toString('hex')) : Buffer.from(h[k]).toString('hex')]));
  return norm(got) === norm(want);
}

// Tracks offsets start[p]..end[p]-1 of every partition, in order; later ones are checked only.
function tracker(what, start, end) {
  const next = [...start];
  let resolve;
  const done = new Promise((r) => { resolve = r; });
  const isDone = () => next.every((o, p) => o >= end[p]);
  if (isDone()) resolve();
  return {
    done,
    next,
    add(partition, m) {
      const offset = Number(m.offset);
      const i = offset * partitions + partition;
      const e = expected(i);
      if (i >= records || !m.key.equals(e.key) || !m.value.equals(e.value) || !sameHeaders(m.headers, e.headers)
          || m.timestamp !== e.timestamp) {
        fail(`${what}: record ${i} (partition ${partition} offset ${offset}): key ${m.key} value ${m.value && m.value.toString('hex')} `
          + `headers ${JSON.stringify(m.headers)} timestamp ${m.timestamp}`);
      }
      if (offset >= end[partition]) return;
      if (offset !== next[partition]) fail(`${what}: partition ${partition} gave offset ${offset}, expected ${next[partition]}`);
      next[partition] += 1;
      if (isDone()) resolve();
    },
  };
}

function within(promise, what, t) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done after ${STEP_TIMEOUT_MS} ms` + (t ? `; next offsets ${t.next}` : ''))), STEP_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Runs a group member until its tracker is done, calls whileMember, then leaves.
async function member(kafka, groupId, what, start, end, whileMember) {
  // maxWaitTimeInMs: disconnect() waits for the fetch in flight, a 5 s long-poll by default.
  const consumer = kafka.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 500 });
  const t = tracker(what, start, end);
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({ autoCommit: false, eachMessage: async ({ partition, message }) => t.add(partition, message) });
  await within(t.done, what, t);
  await whileMember(consumer);
  await consumer.disconnect();
}

async function main() {
  const kafka = new Kafka({ clientId: 'tidegate-kafkajs', brokers: [bootstrap], logLevel: logLevel.ERROR,
    retry: { retries: 5 } });
  const admin = kafka.admin();
  await admin.connect();

  // 1. admin
  const created = await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions,
    replicationFactor: 1, configEntries: [{ name: 'retention.ms', value: RETENTION_MS }] }] });
  if (created !== true) fail(`createTopics returned ${created}`);
  const names = await admin.listTopics();
  if (!names.includes(topic)) fail(`listTopics: ${topic} missing from ${names}`);
  const md = await admin.fetchTopicMetadata({ topics: [topic] });
  const ids = md.topics[0].partitions.map((p) => p.partitionId).sort((a, b) => a - b);
  if (JSON.stringify(ids) !== JSON.stringify(range(partitions))) fail(`fetchTopicMetadata: partitions ${ids}`);
  const configs = await admin.describeConfigs({ includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }] });
  const entry = configs.resources[0].configEntries.find((c) => c.configName === 'retention.ms');
  if (!entry || entry.configValue !== RETENTION_MS) fail(`describeConfigs: retention.ms ${JSON.stringify(entry)}`);

  // 2. produce: one send per partition, so the batch's base offset says where each record is
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let p = 0; p < partitions; p++) {
    const messages = range(records).filter((i) => i % partitions === p).map((i) => {
      const e = expected(i);
      return { partition: p, key: e.key, value: e.value, headers: e.headers, timestamp: e.timestamp };
    });
    const [meta] = await producer.send({ topic, acks: -1, messages });
    if (meta.partition !== p || meta.errorCode !== 0 || meta.baseOffset !== '0') {
      fail(`partition ${p}: acked ${JSON.stringify(meta)}, expected base offset 0`);
    }
  }
  await producer.disconnect();
  const latest = await admin.fetchTopicOffsets(topic);
  for (const o of latest) {
    if (o.high !== String(countIn(o.partition)) || o.low !== '0') fail(`fetchTopicOffsets: ${JSON.stringify(latest)}`);
  }
  const at = 10 * partitions; // the first record at or after record `at`'s timestamp
  const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, BASE_TS_MS + at);
  for (const o of byTime) {
    if (o.offset !== String(Math.ceil((at - o.partition) / partitions))) {
      fail(`fetchTopicOffsetsByTimestamp(${BASE_TS_MS + at}): ${JSON.stringify(byTime)}`);
    }
  }

  // 3. everything from the start
  await member(kafka, `${group}-all`, 'from the start', range(partitions).map(() => 0), ends(), async () => {});

  // 4. the group
  const half = halves();
  await member(kafka, group, 'member A', range(partitions).map(() => 0), half, async (consumer) => {
    await consumer.commitOffsets(half.map((o, p) => ({ topic, partition: p, offset: String(o) })));
    const listed = await admin.listGroups();
    if (!listed.groups.some((g) => g.groupId === group)) fail(`listGroups: ${group} missing from ${JSON.stringify(listed)}`);
    const { groups: [d] } = await admin.describeGroups([group]);
    const owned = d.members.flatMap((m) => {
      const a = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
      return (a && a.assignment[topic]) || [];
    }).sort((x, y) => x - y);
    if (d.state !== 'Stable' || d.members.length !== 1 || JSON.stringify(owned) !== JSON.stringify(range(partitions))) {
      fail(`describeGroups: state ${d.state}, ${d.members.length} members, owning ${owned}`);
    }
  });
  const [fetched] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  const got = fetched.partitions.sort((x, y) => x.partition - y.partition).map((p) => p.offset);
  if (JSON.stringify(got) !== JSON.stringify(half.map(String))) fail(`fetchOffsets: ${got}, committed ${half}`);
  await member(kafka, group, 'member B', half, ends(), async () => {});

  await admin.disconnect();
  process.stdout.write(`OK ${records}\n`);
}

main().then(() => process.exit(0), (e) => fail(`${e && e.stack ? e.stack : e}`));
