// A SkyFlow registry subscriber in JavaScript (Node 18+), using only the event contract
// (docs/events.md): read the stream in order, decode msgpack, fold ServiceCreated and
// ServiceDeleted into the set of live services, and skip (and report) what it cannot read.
//
//   npm install && NATS_URL=nats://127.0.0.1:4222 node subscriber.mjs [namespace]
//
// MAX_EVENTS=n stops after n messages and prints what is live (used by the tests).
import { connect } from "nats";
import { decode } from "@msgpack/msgpack";

const namespace = process.argv[2] ?? "*";
const max = Number(process.env.MAX_EVENTS ?? Infinity);
let seen = 0;

// type -> newest version understood (older versions lack fields this fold does not use:
// labels, addresses, status, port names)
const KNOWN = {
  ServiceCreated: 5, ServiceUpdated: 4, ServiceStatusChanged: 3,
  ServiceDeleted: 1, ServiceForceDeleted: 1,
};

// The fold: each type by name. A type missing here is reported, never read as a delete.
function apply(live, key, event) {
  switch (event.type) {
    case "ServiceCreated":
    case "ServiceUpdated":
    case "ServiceStatusChanged": { // each carries the whole service
      const kind = event.type === "ServiceCreated" ? "ADDED" : "MODIFIED";
      live.set(key, event.service);
      const ports = event.service.ports.map((p) => `${p.port}:${p.target_port}/${p.protocol}`);
      return `${kind} ${key} ${event.service.type} ${event.service.cluster_ip ?? "-"} ${ports.join(",")}`;
    }
    case "ServiceDeleted":
    case "ServiceForceDeleted": // written over an unreadable event: still a delete
      return live.delete(key) ? `DELETED ${key}` : null;
    default:
      console.error(`skipped ${key}: ${event.type} is in KNOWN but not folded here`);
      return null;
  }
}
const nc = await connect({ servers: process.env.NATS_URL ?? "nats://127.0.0.1:4222" });
const consumer = await nc.jetstream().consumers.get("SKYFLOW_SERVICES", {
  filterSubjects: [`skyflow.svc.${namespace}.*`],   // ordered consumer from the start of the log
});
const live = new Map();
for await (const msg of await consumer.consume()) {
  if (++seen > max) break;
  const [, , ns, name] = msg.subject.split(".");
  let event;
  try { event = decode(msg.data); } catch { console.error(`skipped seq ${msg.seq}: not msgpack`); continue; }
  const body = event.service ?? event;
  if (!(event.type in KNOWN) || event.version > KNOWN[event.type] || body.namespace !== ns || body.name !== name) {
    console.error(`skipped seq ${msg.seq}: ${event.type} v${event.version}`);
    continue;
  }
  const change = apply(live, `${ns}/${name}`, event);
  if (change) console.log(`${change} by ${event.actor} (seq ${msg.seq})`);
  if (seen === max) break;
}
console.log(`live: ${[...live.keys()].sort().join(" ") || "(none)"}`);
await nc.close();
