"""What idle consumers cost SeaweedFS: 50 librdkafka consumers (a group each) waiting at the
end of one 4-partition topic through tidegate on SMQ, for each `--smq-fetch-poll-ms` given,
one after the other on one SeaweedFS; prints FetchMessage calls per second (tidegate's
metrics) and weed's and tidegate's CPU (from /proc) over SECONDS.

    .cache/venv/bin/python perf/idle_consumers.py MASTER WEED_PID SECONDS POLL_MS[:BINARY]...

MASTER: a running SeaweedFS's master (`scripts/seaweedfs start DIR`, its ports.env);
WEED_PID: its weed.pid; BINARY: the tidegate to run (default target/release/tidegate), to
compare two builds. Alternate the settings (100 500 100 500): the machine is noisy."""
import subprocess, sys, time, re, os, urllib.request, socket, threading
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
master, weed_pid, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
polls = sys.argv[4:]
def free():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
def fetch_calls(metrics):
    text = urllib.request.urlopen(f"http://{metrics}/metrics").read().decode()
    return sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith("tidegate_seaweedfs_calls_total") and 'rpc="FetchMessage"' in l)
for setting in polls:
    poll, _, binary = setting.partition(":")
    binary = binary or "target/release/tidegate"
    port, mport = free(), free()
    metrics = f"127.0.0.1:{mport}"
    tg = subprocess.Popen([binary, "--backend", "smq", "--smq-master", master, "--listen", "127.0.0.1",
                           "--port", str(port), "--broker-port-base", "0", "--shards", "1", "--metrics-addr", metrics,
                           "--smq-fetch-poll-ms", poll], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    tg.stdout.readline()
    boot = f"127.0.0.1:{port}"
    topic = f"idle-{poll}-{int(time.time())}"
    admin = AdminClient({"bootstrap.servers": boot}); admin.create_topics([NewTopic(topic, 4, 1)])[topic].result()
    p = Producer({"bootstrap.servers": boot}); [p.produce(topic, b"x", partition=i) for i in range(4)]; p.flush(30)
    consumers = [Consumer({"bootstrap.servers": boot, "group.id": f"g{i}-{topic}", "auto.offset.reset": "earliest"}) for i in range(50)]
    for c in consumers: c.subscribe([topic])
    got = 0; deadline = time.time() + 60
    while got < 200 and time.time() < deadline:
        for c in consumers:
            m = c.poll(0.01)
            if m is not None and m.error() is None: got += 1
    stop = False
    def polling():
        while not stop:
            for c in consumers: c.poll(0)
            time.sleep(0.05)
    t = threading.Thread(target=polling); t.start()
    time.sleep(3)
    f0, w0, t0 = fetch_calls(metrics), cpu(weed_pid), cpu(tg.pid)
    time.sleep(seconds)
    f1, w1, t1 = fetch_calls(metrics), cpu(weed_pid), cpu(tg.pid)
    stop = True; t.join()
    print(f"{binary}, poll {poll} ms: consumed {got}/200; FetchMessage {(f1-f0)/seconds:.0f}/s; weed CPU {100*(w1-w0)/seconds:.1f} %; tidegate CPU {100*(t1-t0)/seconds:.1f} %", flush=True)
    for c in consumers: c.close()
    tg.terminate(); tg.wait()
