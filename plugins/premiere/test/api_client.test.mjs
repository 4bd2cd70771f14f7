// Node tests of the panel's logic (node --test plugins/premiere/test/). The tests that talk to a server
// need S2VT_STATE_FILE (a running `s2vt serve`) and S2VT_DEMO_DIR (a copy of the demo project inside its
// allowed folders); tests/plugins/test_premiere_panel.py provides both.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";

const require = createRequire(import.meta.url);
const api = require("../api_client.js");
const stateFile = process.env.S2VT_STATE_FILE;
const demoDir = process.env.S2VT_DEMO_DIR;
const needsServer = { skip: !stateFile || !demoDir ? "no S2VT_STATE_FILE / S2VT_DEMO_DIR" : false };

function client(tokenOverride) {
  const conn = api.parseConnection(fs.readFileSync(stateFile, "utf-8"));
  return new api.S2vtClient({ url: conn.url, token: tokenOverride || conn.token });
}

test("parseConnection accepts only a loopback URL with a token", () => {
  const ok = api.parseConnection('{"url": "http://127.0.0.1:8765/", "token": "abc"}');
  assert.deepEqual(ok, { url: "http://127.0.0.1:8765", token: "abc", port: 8765 });
  for (const bad of ['{"url": "http://10.0.0.2:8765", "token": "a"}', '{"url": "https://127.0.0.1:1", "token": "a"}',
    '{"url": "http://127.0.0.1:99999", "token": "a"}', '{"url": "http://127.0.0.1:80@evil.example:1", "token": "a"}',
    '{"url": "http://127.0.0.1:8765"}', "not json"]) {
    assert.throws(() => api.parseConnection(bad), api.S2vtError, bad);
  }
});

test("defaultStateFile follows the server's rules", () => {
  assert.equal(api.defaultStateFile({ S2VT_HOME: "/h" }, "linux", "/home/u"), "/h/serve.json");
  assert.equal(api.defaultStateFile({}, "linux", "/home/u"), "/home/u/.local/state/s2v-toolkit/serve.json");
  assert.equal(api.defaultStateFile({ XDG_STATE_HOME: "/x" }, "linux", "/home/u"), "/x/s2v-toolkit/serve.json");
  assert.equal(api.defaultStateFile({}, "darwin", "/Users/u"),
    "/Users/u/Library/Application Support/s2v-toolkit/serve.json");
  assert.equal(api.defaultStateFile({ LOCALAPPDATA: "C:\\Users\\u\\AppData\\Local" }, "win32", "C:\\Users\\u"),
    "C:\\Users\\u\\AppData\\Local\\s2v-toolkit\\serve.json");
});

test("export format: OTIO from Premiere 25.6 when the converter has it, FCP XML otherwise", () => {
  assert.equal(api.chooseExportFormat("25.5.1", true), "fcp_xml");
  assert.equal(api.chooseExportFormat("25.6.0", true), "otio");
  assert.equal(api.chooseExportFormat("26.0", true), "otio");
  assert.equal(api.chooseExportFormat("26.0", false), "fcp_xml");
  assert.equal(api.conformOutputFor({ outputs: { otio_json: "a.otio", fcp_xml: "a.xml" } }, "fcp_xml"), "a.xml");
  assert.equal(api.conformOutputFor({ outputs: { otio_json: "a.otio", fcp_xml: "a.xml" } }, "otio"), "a.otio");
  assert.throws(() => api.conformOutputFor({ outputs: {} }, "otio"), api.S2vtError);
});

test("the server refuses a wrong token and files outside its folders", needsServer, async () => {
  await assert.rejects(client("wrong-token").server(), (e) => e.status === 401 && e.code === "bad_token");
  const info = await client().server();
  assert.equal(info.name, "s2vt-serve");
  await assert.rejects(client().createProject("/etc/passwd", null, "x"),
    (e) => e.status === 403 && e.code === "forbidden_path" && /outside/.test(e.message));
});

test("runWorkflow: export, plan, render, conform and import the conformed sequence", needsServer, async () => {
  const statuses = [];
  const exported = [];
  const imported = [];
  const host = {
    async exportSequence(format) {
      assert.equal(format, "fcp_xml");
      const out = path.join(demoDir, `exported_${Date.now()}.xml`);  // Premiere's FCP XML of the demo sequence
      fs.copyFileSync(path.join(demoDir, "scene.xml"), out);
      exported.push(out);
      return out;
    },
    async importTimeline(p) { imported.push(p); return true; },
  };
  let createdId = null;
  const result = await api.runWorkflow({
    client: client(), host, castPath: path.join(demoDir, "cast.yaml"), sequenceName: "DEMO_SCENE", format: "fcp_xml",
    onStatus: (t) => statuses.push(t), onCreated: (id) => { createdId = id; }, wait: { pollMs: 50, timeoutMs: 60000 },
  });
  assert.equal(result.projectId, createdId);
  assert.deepEqual(imported, [result.conformed]);
  assert.match(result.conformed, /\.s2v_v001\.xml$/);
  const xml = fs.readFileSync(result.conformed, "utf-8");
  assert.match(xml, /S2V v001/);                                  // the new track with the renders
  assert.equal(result.summary.counts.done, 2);
  assert.equal(result.summary.counts.skipped, 1);
  assert.ok(statuses.includes("rendering"), statuses.join(" | "));
  assert.ok(statuses.some((s) => s.startsWith("exported DEMO_SCENE as fcp_xml")));
  // the editor's exported file is untouched: the conform wrote new files
  assert.equal(fs.readFileSync(exported[0], "utf-8"), fs.readFileSync(path.join(demoDir, "scene.xml"), "utf-8"));
});

test("waitStep gives up after its time limit; cancel stops the render", needsServer, async () => {
  const c = client();
  const created = await c.createProject(path.join(demoDir, "scene.xml"), path.join(demoDir, "cast.yaml"), "slow");
  await c.waitStep(created.id, "plan", { pollMs: 50, timeoutMs: 30000 });
  await c.render(created.id, { seconds_per_job: 5 });
  await assert.rejects(c.waitStep(created.id, "render", { pollMs: 50, timeoutMs: 300 }), /still running/);
  const res = await c.cancel(created.id);
  assert.equal(res.cancelled, "render");
  await assert.rejects(c.waitStep(created.id, "render", { pollMs: 50, timeoutMs: 20000 }), /render cancelled/);
});
