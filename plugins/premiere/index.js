/*
 * s2v-toolkit panel (UXP, Premiere Pro 25+): exports the active sequence, sends it to the local
 * `s2vt serve`, shows progress, and imports the conformed sequence (renders on a new "S2V vNNN" track).
 * The logic lives in api_client.js (tested with Node); this file is the Premiere and UI glue only.
 */
"use strict";

const api = require("./api_client.js");
const ppro = require("premierepro");
const uxp = require("uxp");
const fs = require("fs");

const $ = (id) => document.getElementById(id);
let current = { projectId: localStorage.getItem("s2vt.lastProject") || null };

function status(text) { $("status").textContent = text; }
function log(text) {
  const el = $("log");
  el.textContent += text.endsWith("\n") ? text : text + "\n";
  el.scrollTop = el.scrollHeight;
}

function homeFolder() {
  try { return require("os").homedir(); } catch (e) { return null; }
}

function platformName() {
  try { return require("os").platform(); } catch (e) { return "darwin"; }
}

/** The connection: the pasted text if any, else the state file s2vt serve wrote. */
function readConnection() {
  const pasted = $("connectionText").value.trim();
  if (pasted) return api.parseConnection(pasted);
  const env = {};  // UXP has no process.env: the default locations only (paste the file for S2VT_HOME)
  const path = api.defaultStateFile(env, platformName(), homeFolder() || "");
  let text;
  try {
    text = fs.readFileSync(path, { encoding: "utf-8" });
  } catch (e) {
    throw new api.S2vtError(`no s2vt serve state file at ${path}: start \`s2vt serve\`, or paste its serve.json here`);
  }
  return api.parseConnection(text);
}

async function connect() {
  const conn = readConnection();
  const client = new api.S2vtClient({ url: conn.url, token: conn.token });
  const info = await client.server();
  $("connection").textContent = `Connected: ${info.url} (s2v-toolkit ${info.version})`;
  return client;
}

function exportFolder() {
  // Inside the home folder: `s2vt serve` only reads files under its allowed folders (home by default).
  const sep = platformName() === "win32" ? "\\" : "/";
  const folder = [homeFolder(), "s2v-toolkit", "premiere-exports"].join(sep);
  try { fs.mkdirSync(folder, { recursive: true }); } catch (e) { /* exists */ }
  return { folder, sep };
}

async function premiereHost() {
  const project = await ppro.Project.getActiveProject();
  if (!project) throw new api.S2vtError("no project is open");
  const sequence = await project.getActiveSequence();
  if (!sequence) throw new api.S2vtError("no active sequence: open the sequence to re-dub");
  const converter = ppro.ProjectConverter;
  const canOtio = !!(converter && typeof converter.exportAsOpenTimelineIO === "function");
  const format = api.chooseExportFormat(uxp.host.version, canOtio);
  const name = sequence.name || "sequence";
  return {
    name,
    format,
    async exportSequence(fmt) {
      const { folder, sep } = exportFolder();
      const stamp = new Date().toISOString().replace(/[-:]/g, "").slice(0, 15);
      const safe = String(name).replace(/[^A-Za-z0-9_.-]+/g, "_").slice(0, 80) || "sequence";
      const path = `${folder}${sep}${safe}_${stamp}${fmt === "otio" ? ".otio" : ".xml"}`;
      const ok = fmt === "otio"
        ? await converter.exportAsOpenTimelineIO(sequence, path, true)
        : await converter.exportAsFinalCutProXML(sequence, path, true);
      if (!ok) throw new api.S2vtError(`Premiere did not export the sequence to ${path}`);
      return path;
    },
    async importTimeline(path) {
      // The conformed timeline comes in as a new sequence (the original sequence is not touched).
      return project.importFiles([path], true, await project.getRootItem(), false);
    },
  };
}

async function onRun() {
  $("run").disabled = true;
  try {
    const client = await connect();
    const castPath = $("castPath").value.trim();
    if (!castPath) throw new api.S2vtError("pick the cast file first");
    localStorage.setItem("s2vt.cast", castPath);
    const host = await premiereHost();
    const result = await api.runWorkflow({
      client, host, castPath, sequenceName: host.name, model: $("model").value, format: host.format,
      onStatus: (t) => { status(t); log(t); },
      onCreated: (id) => { current.projectId = id; localStorage.setItem("s2vt.lastProject", id); },
      wait: { pollMs: 2000, onLog: log },
    });
    current.projectId = result.projectId;
    localStorage.setItem("s2vt.lastProject", result.projectId);
    status(`Done: ${result.summary.text}. Imported ${result.conformed}`);
  } catch (e) {
    status(`Error: ${e.message}`);
    log(`error: ${e.message}`);
  } finally {
    $("run").disabled = false;
  }
}

async function onPickCast() {
  const file = await uxp.storage.localFileSystem.getFileForOpening({ types: ["yaml", "yml", "json"] });
  if (file) $("castPath").value = file.nativePath;
}

async function onReview() {
  try {
    if (!current.projectId) throw new api.S2vtError("nothing submitted yet");
    const client = await connect();
    await client.review(current.projectId);
    status("Review panel opened");
  } catch (e) { status(`Error: ${e.message}`); }
}

async function onCancel() {
  try {
    if (!current.projectId) return;
    const client = await connect();
    const res = await client.cancel(current.projectId);
    status(res.cancelled ? `Asked ${res.cancelled} to stop` : "Nothing running");
  } catch (e) { status(`Error: ${e.message}`); }
}

$("castPath").value = localStorage.getItem("s2vt.cast") || "";
$("run").addEventListener("click", onRun);
$("pickCast").addEventListener("click", onPickCast);
$("review").addEventListener("click", onReview);
$("cancel").addEventListener("click", onCancel);
connect().catch((e) => { $("connection").textContent = `Not connected: ${e.message}`; });
