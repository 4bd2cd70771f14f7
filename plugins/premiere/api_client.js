/*
 * s2v-toolkit panel for Premiere Pro: everything that does not need Premiere.
 *
 * A plain CommonJS module (UXP's require and Node's both load it) so that its logic is tested with
 * Node against a real `s2vt serve` (tests/plugins/test_premiere_panel.py runs plugins/premiere/test/).
 * Premiere-specific steps (exporting the sequence, importing the result) are passed in by index.js.
 */
"use strict";

const LOOPBACK_URL = /^http:\/\/127\.0\.0\.1:(\d{1,5})$/;
const FINAL_STATES = ["done", "failed", "cancelled", "interrupted"];
// Premiere writes OpenTimelineIO from 25.6 on (ProjectConverter.exportAsOpenTimelineIO); FCP 7 XML before.
const OTIO_SINCE = [25, 6];

class S2vtError extends Error {
  constructor(message, status, code) {
    super(message);
    this.name = "S2vtError";
    this.status = status || 0;
    this.code = code || "";
  }
}

/** Connection facts from the server's state file text (serve.json) or a pasted copy of it. */
function parseConnection(text) {
  let info;
  try {
    info = JSON.parse(text);
  } catch (e) {
    throw new S2vtError("the connection text is not the JSON of s2vt serve's state file");
  }
  if (!info || typeof info.url !== "string" || typeof info.token !== "string" || !info.token) {
    throw new S2vtError("the state file needs 'url' and 'token' (is this s2vt serve's serve.json?)");
  }
  const url = info.url.replace(/\/+$/, "");
  const m = LOOPBACK_URL.exec(url);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) {
    throw new S2vtError(`the server URL ${info.url} is not http://127.0.0.1:PORT; refusing to send the token there`);
  }
  return { url, token: info.token, port: Number(m[1]) };
}

/** Where s2vt serve writes its state file (same rules as s2v_toolkit.serve.state). */
function defaultStateFile(env, platform, home) {
  const join = (...parts) => parts.join(platform === "win32" ? "\\" : "/");
  if (env.S2VT_HOME) return join(env.S2VT_HOME, "serve.json");
  if (platform === "win32") {
    return join(env.LOCALAPPDATA || join(home, "AppData", "Local"), "s2v-toolkit", "serve.json");
  }
  if (platform === "darwin") return join(home, "Library", "Application Support", "s2v-toolkit", "serve.json");
  return join(env.XDG_STATE_HOME || join(home, ".local", "state"), "s2v-toolkit", "serve.json");
}

function parseVersion(text) {
  return String(text || "0").split(/[^0-9]+/).filter(Boolean).map(Number);
}

function versionAtLeast(version, minimum) {
  const v = Array.isArray(version) ? version : parseVersion(version);
  for (let i = 0; i < minimum.length; i++) {
    const a = v[i] || 0;
    if (a !== minimum[i]) return a > minimum[i];
  }
  return true;
}

/** "otio" where this Premiere can write OTIO, else "fcp_xml". */
function chooseExportFormat(hostVersion, canExportOtio) {
  return canExportOtio && versionAtLeast(hostVersion, OTIO_SINCE) ? "otio" : "fcp_xml";
}

/** The conformed timeline to import: the one in the format the sequence was exported in. */
function conformOutputFor(conformResult, format) {
  const outputs = (conformResult && conformResult.outputs) || {};
  const wanted = format === "otio" ? ["otio_json"] : ["fcp_xml", "otio_json"];
  for (const key of wanted) if (outputs[key]) return outputs[key];
  throw new S2vtError(`the conform wrote no ${format} timeline (outputs: ${Object.keys(outputs).join(", ") || "none"})`);
}

function summarizeJobs(jobsDoc) {
  const counts = {};
  for (const j of jobsDoc.jobs) counts[j.state] = (counts[j.state] || 0) + 1;
  const text = Object.keys(counts).sort().map((k) => `${k} ${counts[k]}`).join(", ");
  return { counts, text, skipped: jobsDoc.jobs.filter((j) => j.state === "skipped" || j.state === "failed") };
}

const sleepMs = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class S2vtClient {
  constructor({ url, token, fetchImpl, timeoutMs }) {
    const conn = parseConnection(JSON.stringify({ url, token }));
    this.url = conn.url;
    this.token = conn.token;
    this.fetch = fetchImpl || globalThis.fetch;
    this.timeoutMs = timeoutMs || 30000;
  }

  async request(method, path, body) {
    const headers = { Authorization: `Bearer ${this.token}`, Accept: "application/json" };
    const init = { method, headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let timer = null;
    if (typeof AbortController !== "undefined") {
      const ctl = new AbortController();
      init.signal = ctl.signal;
      timer = setTimeout(() => ctl.abort(), this.timeoutMs);
    }
    let resp;
    try {
      resp = await this.fetch(this.url + path, init);
    } catch (e) {
      throw new S2vtError(`cannot reach s2vt serve at ${this.url} (${e.message}); is it running?`);
    } finally {
      if (timer) clearTimeout(timer);
    }
    const text = await resp.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (e) {
      throw new S2vtError(`s2vt serve answered ${method} ${path} with non-JSON (HTTP ${resp.status})`, resp.status);
    }
    if (!resp.ok) {
      const err = (data && data.error) || {};
      throw new S2vtError(`s2vt serve: ${method} ${path}: ${err.message || resp.statusText} (HTTP ${resp.status})`,
        resp.status, err.code);
    }
    return data;
  }

  server() { return this.request("GET", "/v1/server"); }
  createProject(timeline, cast, name, options) {
    return this.request("POST", "/v1/projects", { timeline, cast, name, options: options || {} });
  }
  project(id) { return this.request("GET", `/v1/projects/${encodeURIComponent(id)}`); }
  jobs(id) { return this.request("GET", `/v1/projects/${encodeURIComponent(id)}/jobs`); }
  render(id, options) { return this.request("POST", `/v1/projects/${encodeURIComponent(id)}/render`, { options: options || {} }); }
  conform(id, options) { return this.request("POST", `/v1/projects/${encodeURIComponent(id)}/conform`, { options: options || {} }); }
  cancel(id) { return this.request("POST", `/v1/projects/${encodeURIComponent(id)}/cancel`, {}); }
  review(id) { return this.request("POST", `/v1/projects/${encodeURIComponent(id)}/review`, {}); }
  log(id, offset) { return this.request("GET", `/v1/projects/${encodeURIComponent(id)}/log?offset=${offset | 0}`); }

  /** Poll until ``step`` ends; bounded by timeoutMs. Calls onProgress(task) and onLog(text) as things move. */
  async waitStep(id, step, { timeoutMs = 6 * 3600 * 1000, pollMs = 1000, onProgress, onLog, sleep = sleepMs } = {}) {
    const deadline = Date.now() + timeoutMs;
    let offset = 0;
    for (;;) {
      const project = await this.project(id);
      const task = project.tasks[step];
      if (onLog) {
        const chunk = await this.log(id, offset);
        offset = chunk.next_offset;
        if (chunk.text) onLog(chunk.text);
      }
      if (onProgress) onProgress(task, project);
      if (FINAL_STATES.includes(task.state)) {
        if (task.state !== "done") throw new S2vtError(`${step} ${task.state}: ${task.error || "see the log"}`);
        return project;
      }
      if (Date.now() >= deadline) {
        throw new S2vtError(`${step} still running after ${Math.round(timeoutMs / 1000)} s (project ${id}); ` +
          "open the panel again later to import");
      }
      await sleep(pollMs);
    }
  }
}

/**
 * The panel's whole job: export -> submit -> plan -> render -> conform -> import the conformed sequence.
 * host.exportSequence(format) -> Promise<path>; host.importTimeline(path) -> Promise<boolean>.
 */
async function runWorkflow({ client, host, castPath, sequenceName, model, planOptions, format, onStatus, onCreated,
                             wait }) {
  const say = onStatus || (() => {});
  const waitOpts = Object.assign({}, wait || {});
  const timelinePath = await host.exportSequence(format);
  say(`exported ${sequenceName || "the sequence"} as ${format}: ${timelinePath}`);
  const created = await client.createProject(timelinePath, castPath, sequenceName || "", planOptions || {});
  if (onCreated) onCreated(created.id);
  say(`project ${created.id}: planning`);
  const progress = (step) => (task) => {
    const p = task.progress || {};
    if (task.state === "running" && p.total) say(`${step}: ${p.done}/${p.total} ${p.message || ""}`.trim());
  };
  await client.waitStep(created.id, "plan", Object.assign({ onProgress: progress("plan") }, waitOpts));
  await client.render(created.id, model ? { model } : {});
  say("rendering");
  await client.waitStep(created.id, "render", Object.assign({ onProgress: progress("render") }, waitOpts));
  const jobsDoc = await client.jobs(created.id);
  const summary = summarizeJobs(jobsDoc);
  say(`jobs: ${summary.text}`);
  await client.conform(created.id, {});
  const project = await client.waitStep(created.id, "conform", waitOpts);
  const conformed = conformOutputFor(project.tasks.conform.result || project.conform, format);
  const imported = await host.importTimeline(conformed);
  if (!imported) throw new S2vtError(`Premiere did not import ${conformed}; use File > Import on it`);
  say(`imported ${conformed}`);
  return { projectId: created.id, conformed, jobs: jobsDoc, summary };
}

module.exports = {
  S2vtClient, S2vtError, parseConnection, defaultStateFile, parseVersion, versionAtLeast, chooseExportFormat,
  conformOutputFor, summarizeJobs, runWorkflow, OTIO_SINCE,
};
