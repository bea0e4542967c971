// Consumes `count` messages from `queueUrl` with sqs-consumer and prints one JSON line:
// {"messages", "seconds", "cpu_seconds"}. Usage:
//   node consume.mjs <endpoint> <queueUrl> <count> <batchSize>
// Called by sqs-handler-bench; the handler does no work, as in the Rust runs, and returns the
// message: since sqs-consumer 8 that is what acknowledges (deletes) it.
import { Consumer } from "sqs-consumer";
import { SQSClient } from "@aws-sdk/client-sqs";

const [endpoint, queueUrl, countArg, batchArg] = process.argv.slice(2);
const count = Number(countArg);
const batchSize = Number(batchArg);
if (!endpoint || !queueUrl || !(count > 0) || !(batchSize >= 1)) {
  console.error("usage: node consume.mjs <endpoint> <queueUrl> <count> <batchSize>");
  process.exit(2);
}

const sqs = new SQSClient({
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "test", secretAccessKey: "test" },
});

let handled = 0;
const cpuStart = process.cpuUsage();
const start = process.hrtime.bigint();
const options = { queueUrl, sqs, handleMessage: async (message) => { handled += 1; return message; } };
if (batchSize !== 1) options.batchSize = batchSize;
const consumer = Consumer.create(options);
consumer.on("error", (err) => console.error("sqs-consumer error:", err.message));
consumer.on("processing_error", (err) => console.error("sqs-consumer processing_error:", err.message));

const done = new Promise((resolve) => {
  const check = setInterval(() => {
    if (handled >= count) { clearInterval(check); resolve(); }
  }, 5);
});
const limit = setTimeout(() => { console.error(`timed out after ${handled} of ${count}`); process.exit(1); }, 600_000);
consumer.start();
await done;
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
consumer.stop({ abort: true });
clearTimeout(limit);
const cpu = process.cpuUsage(cpuStart);
console.log(JSON.stringify({ messages: handled, seconds, cpu_seconds: (cpu.user + cpu.system) / 1e6 }));
process.exit(0);
