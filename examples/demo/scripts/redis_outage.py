#!/usr/bin/env python3
"""Measures the demo through a Redis outage, as issue 9 describes it: jobs queued and running,
Redis stopped for OUTAGE seconds (default 120), then started again on the same port.

Runs target/debug/demo (build it first: cargo build -p demo) with its defaults (embedded
sqs-local, visibility timeout 30 s, dead-letter queue after 3 receives, circuit breaker open for
30 s) and a redis-server of its own. Prints what the consumer did during the outage and where
every job ended. Usage: python3 examples/demo/scripts/redis_outage.py [OUTAGE_SECONDS] [JOBS]
"""
import json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request

OUTAGE = int(sys.argv[1]) if len(sys.argv) > 1 else 120
JOBS = int(sys.argv[2]) if len(sys.argv) > 2 else 68
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def http(method, url, body=None):
    req = urllib.request.Request(url, method=method, data=body and json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")
    except (urllib.error.URLError, ConnectionError):
        return 0, None


def wait(what, deadline, check):
    end = time.time() + deadline
    while time.time() < end:
        v = check()
        if v:
            return v
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {what}")


def redis(port, d):
    return subprocess.Popen(["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                             "--appendonly", "yes", "--appendfsync", "always", "--dir", d],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main():
    rport, api, sport = free_port(), free_port(), free_port()
    d = tempfile.mkdtemp()
    r = redis(rport, d)
    env = dict(os.environ, PORT=str(api), SQS_LOCAL_PORT=str(sport), REDIS_URL=f"redis://127.0.0.1:{rport}",
               REDIS_KEY_PREFIX=f"outage{api}:", JOB_DURATION_MS="2000", RUST_LOG="warn")
    env.pop("AWS_ENDPOINT_URL_SQS", None); env.pop("AWS_REGION", None)
    demo = subprocess.Popen([os.path.join(ROOT, "target/debug/demo")], env=env, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(d, "demo.log"), "w"))
    base, stats = f"http://127.0.0.1:{api}", f"http://127.0.0.1:{sport}/_sqs-local/stats"
    try:
        wait("the demo", 60, lambda: http("GET", base + "/health")[0] == 200)
        ids = [http("POST", base + "/jobs", {"message": f"job {i}"})[1]["id"] for i in range(JOBS)]
        wait("16 jobs done", 120, lambda: http("GET", base + "/health")[1]["consumer"][0]["processed"] >= 16)
        before = http("GET", base + "/health")[1]["consumer"][0]
        calls0 = http("GET", stats)[1]["calls"]
        r.kill(); r.wait()
        t0 = time.time()
        circuits = set()
        while time.time() - t0 < OUTAGE:
            circuits.add(http("GET", base + "/health")[1]["consumer"][0]["circuit"])
            time.sleep(1)
        during = http("GET", base + "/health")[1]["consumer"][0]
        calls1 = http("GET", stats)[1]["calls"]
        r = redis(rport, d)
        t1 = time.time()
        statuses = wait("every job to end", 900, lambda: (lambda s: s if all(
            x in ("done", "error", "dead_lettered") for x in s.values()) else None)(
            {i: http("GET", f"{base}/jobs/{i}")[1].get("status") for i in ids}))
        after = http("GET", base + "/health")[1]["consumer"][0]
        recv = lambda c: c.get("ReceiveMessage", 0)
        print(f"jobs {JOBS}, outage {OUTAGE} s; done {before['processed']} before it")
        print(f"failed attempts (receives spent on jobs) during the outage: {during['failed'] - before['failed']}")
        print(f"ReceiveMessage calls during the outage: {recv(calls1) - recv(calls0)}; circuit states seen: {sorted(circuits)}")
        print(f"after Redis returned: every job ended within {time.time() - t1:.0f} s")
        counts = {}
        for s in statuses.values():
            counts[s] = counts.get(s, 0) + 1
        print(f"statuses: {counts}; processed {after['processed']}, failed {after['failed']} in all")
        out = subprocess.run(["curl", "-s", "-X", "POST", "-H", "X-Amz-Target: AmazonSQS.GetQueueUrl",
                              "-H", "Content-Type: application/x-amz-json-1.0", "-d", '{"QueueName":"jobs-dlq"}',
                              f"http://127.0.0.1:{sport}/"], capture_output=True, text=True).stdout
        url = json.loads(out)["QueueUrl"]
        out = subprocess.run(["curl", "-s", "-X", "POST", "-H", "X-Amz-Target: AmazonSQS.GetQueueAttributes",
                              "-H", "Content-Type: application/x-amz-json-1.0", "-d",
                              json.dumps({"QueueUrl": url, "AttributeNames": ["ApproximateNumberOfMessages"]}),
                              f"http://127.0.0.1:{sport}/"], capture_output=True, text=True).stdout
        print(f"dead-letter queue: {json.loads(out)['Attributes']['ApproximateNumberOfMessages']} messages")
    finally:
        demo.terminate(); demo.wait(); r.kill(); r.wait(); shutil.rmtree(d, ignore_errors=True)


main()
