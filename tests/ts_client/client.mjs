// Drive the working-memory server with the official MCP TypeScript SDK.
//
// Transport from the environment:
//   WM_TS_TRANSPORT=stdio (default): spawn WM_SERVER_COMMAND with JSON array WM_SERVER_ARGS
//   WM_TS_TRANSPORT=http | sse: connect to WM_SERVER_URL (…/mcp or …/sse), optional WM_TOKEN
// Prints one JSON line {"ok": true, "checks": N, ...} and exits 0, or prints the failure
// and exits 1.
import assert from "node:assert/strict";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const EXPECTED_TOOLS = [
  "memory_set", "memory_get", "memory_delete", "memory_exists", "memory_list_keys",
  "memory_get_all", "memory_clear", "task_state_set", "task_state_get", "scratchpad_append",
  "scratchpad_get", "checkpoint_create", "checkpoint_restore", "checkpoint_list",
  "checkpoint_delete", "session_open", "session_close", "session_info",
];

let checks = 0;
function check(condition, message) {
  assert.ok(condition, message);
  checks += 1;
}

function transport() {
  const kind = process.env.WM_TS_TRANSPORT ?? "stdio";
  if (kind === "stdio") {
    return new StdioClientTransport({
      command: process.env.WM_SERVER_COMMAND,
      args: JSON.parse(process.env.WM_SERVER_ARGS ?? "[]"),
      env: { ...process.env },
      stderr: "inherit",
    });
  }
  const url = new URL(process.env.WM_SERVER_URL);
  const headers = process.env.WM_TOKEN ? { Authorization: `Bearer ${process.env.WM_TOKEN}` } : {};
  if (kind === "sse") {
    return new SSEClientTransport(url, {
      requestInit: { headers },
      eventSourceInit: {
        fetch: (u, init) => fetch(u, { ...init, headers: { ...(init?.headers ?? {}), ...headers } }),
      },
    });
  }
  return new StreamableHTTPClientTransport(url, { requestInit: { headers } });
}

async function call(client, name, args = {}) {
  return client.callTool({ name, arguments: args });
}

function structured(result) {
  assert.ok(!result.isError, `unexpected error: ${JSON.stringify(result.content)}`);
  assert.ok(result.structuredContent, `no structuredContent in ${JSON.stringify(result)}`);
  return result.structuredContent;
}

function errorText(result) {
  assert.equal(result.isError, true, `expected an error result, got ${JSON.stringify(result)}`);
  return result.content.map((c) => c.text ?? "").join(" ");
}

async function main() {
  const client = new Client({ name: "wm-ts-client-test", version: "1.0.0" });
  await client.connect(transport());

  const { tools } = await client.listTools();
  const names = tools.map((t) => t.name);
  for (const name of EXPECTED_TOOLS) check(names.includes(name), `tool ${name} is listed`);
  for (const tool of tools.filter((t) => EXPECTED_TOOLS.includes(t.name))) {
    check(tool.description && tool.description.length > 20, `${tool.name} has a description`);
    check(tool.inputSchema?.type === "object", `${tool.name} has an input schema`);
    check(tool.outputSchema?.type === "object", `${tool.name} has an output schema`);
  }
  const annotations = Object.fromEntries(tools.map((t) => [t.name, t.annotations ?? {}]));
  check(annotations.memory_get.readOnlyHint === true, "memory_get is read-only");
  check(annotations.memory_clear.destructiveHint === true, "memory_clear is destructive");

  // variables
  let r = structured(await call(client, "memory_set", { key: "plan", value: { steps: ["a", "b"] } }));
  check(r.key === "plan", "memory_set echoes the key");
  await call(client, "memory_set", { key: "temp", value: 42, ttl_seconds: 60 });
  r = structured(await call(client, "memory_get", { key: "plan" }));
  check(r.found === true && JSON.stringify(r.value) === '{"steps":["a","b"]}', "memory_get value");
  check(r.ttl_seconds_remaining === null, "no TTL on plan");
  r = structured(await call(client, "memory_get", { key: "temp" }));
  check(r.ttl_seconds_remaining > 0 && r.ttl_seconds_remaining <= 60, "TTL reported");
  r = structured(await call(client, "memory_get", { key: "missing", default: "dflt" }));
  check(r.found === false && r.value === "dflt", "default returned when missing");
  r = structured(await call(client, "memory_exists", { key: "plan" }));
  check(r.exists === true, "memory_exists");
  r = structured(await call(client, "memory_list_keys", { pattern: "*" }));
  check(JSON.stringify(r.keys) === '["plan","temp"]' && r.next_cursor === null, "list keys");
  r = structured(await call(client, "memory_get_all", {}));
  check(r.values.temp === 42, "get_all");

  // errors a model can act on, and nothing changed
  let text = errorText(await call(client, "memory_set", { key: "", value: 1 }));
  check(/^INVALID_KEY/.test(text.trim()) || text.includes("INVALID_KEY"), `INVALID_KEY: ${text}`);
  text = errorText(await call(client, "memory_set", { key: "x", value: 1, ttl_seconds: -5 }));
  check(text.includes("INVALID_ARGUMENT"), `negative TTL: ${text}`);
  text = errorText(await call(client, "checkpoint_restore", { checkpoint_id: "nope" }));
  check(text.includes("NOT_FOUND"), `unknown checkpoint: ${text}`);
  check(!/Traceback|\.py|wm:\{/.test(text), "no internals on the wire");
  r = structured(await call(client, "memory_exists", { key: "x" }));
  check(r.exists === false, "failed set changed nothing");

  // task state, scratchpad, checkpoints
  r = structured(await call(client, "task_state_set", {
    task_id: "t1", status: "in_progress", current_step: 1, total_steps: 3, progress: 0.33,
  }));
  check(r.state.status === "in_progress" && r.state.updated_at, "task_state_set");
  r = structured(await call(client, "scratchpad_append", { content: "first thought" }));
  check(r.length === 1, "scratchpad_append length");
  const cp = structured(await call(client, "checkpoint_create", { label: "before" }));
  check(typeof cp.checkpoint_id === "string" && cp.created_at, "checkpoint_create");
  await call(client, "memory_delete", { key: "plan" });
  await call(client, "scratchpad_append", { content: "second thought" });
  r = structured(await call(client, "checkpoint_restore", { checkpoint_id: cp.checkpoint_id }));
  check(r.restored === true, "checkpoint_restore");
  r = structured(await call(client, "memory_get", { key: "plan" }));
  check(r.found === true, "restore brought the key back");
  r = structured(await call(client, "scratchpad_get", {}));
  check(JSON.stringify(r.entries) === '["first thought"]', "restore reset the scratchpad");
  r = structured(await call(client, "checkpoint_list", {}));
  check(r.checkpoints.length === 1 && r.checkpoints[0].label === "before", "checkpoint_list");
  r = structured(await call(client, "task_state_get", {}));
  check(r.state.task_id === "t1", "task_state_get");
  r = structured(await call(client, "session_info", {}));
  check(r.session !== undefined && r.usage !== undefined, "session_info");

  // resources
  const { resources } = await client.listResources();
  check(resources.length >= 1, "resources are listed");
  const own = resources.find((res) => res.uri.includes("session"));
  if (own) {
    const read = await client.readResource({ uri: own.uri });
    const body = JSON.parse(read.contents[0].text);
    check(body !== null && typeof body === "object", "session resource is JSON");
  }

  // subscriptions: over HTTP the update travels on the GET stream while every POST is
  // answered with a JSON body, so this checks both work together
  const updated = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no resources/updated within 10 s")), 10000);
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      clearTimeout(timer);
      resolve(n.params.uri);
    });
  });
  await client.subscribeResource({ uri: "memory://session/current" });
  await call(client, "memory_set", { key: "watched", value: 1 });
  check((await updated) === "memory://session/current", "resources/updated after a write");
  await client.unsubscribeResource({ uri: "memory://session/current" });
  await call(client, "memory_delete", { key: "watched" });

  r = structured(await call(client, "memory_clear", {}));
  check(r.cleared === 2, `memory_clear cleared ${r.cleared}`);
  await client.close();
  console.log(JSON.stringify({ ok: true, checks, tools: names.length }));
}

main().catch((err) => {
  console.log(JSON.stringify({ ok: false, checks, error: String(err?.stack ?? err) }));
  process.exit(1);
});
