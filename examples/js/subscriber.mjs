// A SkyFlow registry subscriber in JavaScript (Node 18+), using only the event contract
// (EVENTS.md): read the stream in order, decode msgpack, fold ServiceCreated and
// ServiceDeleted into the set of live services, and skip (and report) what it cannot read.
//
//   npm install && NATS_URL=nats://127.0.0.1:4222 node subscriber.mjs [namespace]
//
// MAX_EVENTS=n stops after n messages (used by the project's tests).
import { connect } from "nats";
import { decode } from "@msgpack/msgpack";

const KNOWN = { ServiceCreated: 1, ServiceDeleted: 1 }; // type -> newest version understood
const namespace = process.argv[2] ?? "*";
const max = Number(process.env.MAX_EVENTS ?? Infinity);

const nc = await connect({ servers: process.env.NATS_URL ?? "nats://127.0.0.1:4222" });
const js = nc.jetstream();
// An ordered consumer from the start of the log, filtered on the server.
const consumer = await js.consumers.get("SKYFLOW_SERVICES", {
  filterSubjects: [`skyflow.svc.${namespace}.*`],
});
const live = new Map();
let seen = 0;

for await (const msg of await consumer.consume()) {
  const [, , ns, name] = msg.subject.split(".");
  let event;
  try {
    event = decode(msg.data);
  } catch (err) {
    console.error(`skipped seq ${msg.seq}: not msgpack`);
  }
  if (event !== undefined) {
    const known = KNOWN[event.type];
    const subjectMatches = (event.service ?? event).namespace === ns && (event.service ?? event).name === name;
    if (known === undefined || event.version > known || !subjectMatches) {
      console.error(`skipped seq ${msg.seq}: ${event.type} v${event.version} on ${msg.subject}`);
    } else if (event.type === "ServiceCreated") {
      live.set(`${ns}/${name}`, event.service);
      const ports = event.service.ports.map((p) => `${p.port}:${p.target_port}/${p.protocol}`);
      console.log(`ADDED ${ns}/${name} ${event.service.type} ${ports.join(",")} by ${event.actor} (seq ${msg.seq})`);
    } else if (live.delete(`${ns}/${name}`)) {
      console.log(`DELETED ${ns}/${name} by ${event.actor} (seq ${msg.seq})`);
    }
  }
  if (++seen >= max) break;
}
console.log(`live: ${[...live.keys()].sort().join(" ") || "(none)"}`);
await nc.close();
