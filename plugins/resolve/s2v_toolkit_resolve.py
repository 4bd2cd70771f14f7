"""s2v-toolkit for DaVinci Resolve: re-dub the current timeline through a local `s2vt serve`.

Install: copy this file into Resolve's Scripts folder (see README.md beside it), then run
Workspace > Scripts > s2v_toolkit_resolve. Or run it outside Resolve (Studio) with the scripting
environment variables set:  python s2v_toolkit_resolve.py --cast /path/cast.yaml

What it does, on the current timeline:
 1. exports it (OTIO on Resolve 18.5 and later, FCP 7 XML before) into the export folder;
 2. submits it with the cast file you pick to `s2vt serve` (URL and token from its state file);
 3. waits for the plan and the renders, printing progress to the Console (Workspace > Console);
 4. imports the finished renders into a bin ("S2V renders" / "<timeline> vNNN") and places them on
    a new video track named "S2V vNNN" at the record frames of the plan, or adds them as takes on the
    original clips (--mode takes); adds a yellow marker for each skipped shot and a red one for each
    failed shot, with the reason in the note.
Nothing of the timeline is removed or changed besides the new track/takes and markers.

Only the Python standard library is used (Resolve's Python has no extra packages). Every Resolve call
used here is in Resolve's scripting README; tests check them against a fake that implements exactly
those calls (tests/plugins/test_resolve_script.py).
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request

SCRIPT_VERSION = "0.1.0"
BIN_NAME = "S2V renders"
TRACK_PREFIX = "S2V v"
SKIP_COLOR = "Yellow"
FAIL_COLOR = "Red"
MARKER_TAG = "s2vt:"
OTIO_SINCE = (18, 5)          # Timeline.Export with resolve.EXPORT_OTIO appeared in Resolve 18.5
EXCLUSIVE_END_SINCE = (19,)   # clipInfo endFrame became an exclusive bound in Resolve 19


class S2VTError(Exception):
    """A problem the editor can fix (no server, no timeline, bad cast file...): one line, no traceback."""


# ---------------------------------------------------------------------- settings
def state_dir():
    """Same rules as s2v_toolkit.serve.state.state_dir (kept in step by a test)."""
    if os.environ.get("S2VT_HOME"):
        return os.path.expanduser(os.environ["S2VT_HOME"])
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(os.path.expanduser("~"), "AppData", "Local")
        return os.path.join(base, "s2v-toolkit")
    if sys.platform == "darwin":
        return os.path.join(os.path.expanduser("~"), "Library", "Application Support", "s2v-toolkit")
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "s2v-toolkit")


def default_state_file():
    return os.path.join(state_dir(), "serve.json")


def settings_path():
    return os.path.join(state_dir(), "resolve_plugin.json")


def load_settings():
    try:
        with open(settings_path(), "r", encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def save_settings(settings):
    path = settings_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(settings, f, indent=2)
    os.replace(tmp, path)


# ---------------------------------------------------------------------- API client
def read_connection(state_file=None):
    path = state_file or default_state_file()
    try:
        with open(path, "r", encoding="utf-8") as f:
            info = json.load(f)
    except FileNotFoundError:
        raise S2VTError("no running `s2vt serve` (no state file at %s): start it in a terminal with "
                        "`s2vt serve`" % path)
    except (OSError, ValueError) as exc:
        raise S2VTError("cannot read the s2vt serve state file %s (%s)" % (path, exc))
    if not isinstance(info, dict) or "url" not in info or "token" not in info:
        raise S2VTError("%s is not an s2vt serve state file" % path)
    if not str(info["url"]).startswith("http://127.0.0.1:"):
        raise S2VTError("%s: the server URL %r is not on 127.0.0.1; refusing to send the token there"
                        % (path, info["url"]))
    return info


class ApiClient(object):
    """The few calls of the s2vt serve API this script needs (JSON over HTTP on 127.0.0.1)."""

    def __init__(self, url, token, timeout=30.0):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(self, method, path, body=None):
        data = None
        headers = {"Authorization": "Bearer " + self.token, "Accept": "application/json"}
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read())["error"]["message"]
            except Exception:  # noqa: BLE001 - any unreadable error body
                message = exc.reason
            raise S2VTError("s2vt serve: %s %s: %s (HTTP %d)" % (method, path, message, exc.code))
        except (urllib.error.URLError, OSError) as exc:
            raise S2VTError("cannot reach s2vt serve at %s (%s); is it running?" % (self.url, exc))
        return json.loads(payload) if payload else None

    def create_project(self, timeline, cast, name, options=None):
        return self.request("POST", "/v1/projects", {"timeline": timeline, "cast": cast, "name": name,
                                                     "options": options or {}})

    def project(self, project_id):
        return self.request("GET", "/v1/projects/%s" % project_id)

    def jobs(self, project_id):
        return self.request("GET", "/v1/projects/%s/jobs" % project_id)

    def render(self, project_id, options):
        return self.request("POST", "/v1/projects/%s/render" % project_id, {"options": options})

    def log(self, project_id, offset):
        return self.request("GET", "/v1/projects/%s/log?offset=%d" % (project_id, offset))

    def wait(self, project_id, step, timeout, poll=1.0, say=print, show_log=True):
        """Poll until ``step`` ends (bounded by ``timeout`` seconds); print progress and new log lines."""
        deadline = time.time() + timeout
        offset, last = 0, None
        while True:
            project = self.project(project_id)
            task = project["tasks"][step]
            if show_log:
                chunk = self.log(project_id, offset)
                offset = chunk["next_offset"]
                for line in chunk["text"].splitlines():
                    say("[s2vt] " + line)
            progress = task.get("progress") or {}
            shown = (task["state"], progress.get("done"), progress.get("total"))
            if shown != last and task["state"] == "running" and progress.get("total"):
                say("[s2vt] %s: %d/%d %s" % (step, progress["done"], progress["total"], progress.get("message", "")))
            last = shown
            if task["state"] in ("done", "failed", "cancelled", "interrupted"):
                if task["state"] != "done":
                    raise S2VTError("%s %s: %s" % (step, task["state"], task.get("error") or "see the log"))
                return project
            if time.time() >= deadline:
                raise S2VTError("%s still running after %d s; run the script again with --resume %s to import "
                                "when it is done" % (step, timeout, project_id))
            time.sleep(poll)


# ---------------------------------------------------------------------- Resolve access
def get_resolve(namespace=None):
    """The Resolve object: given by Resolve when it runs the script, else through DaVinciResolveScript
    (external scripting: RESOLVE_SCRIPT_API / RESOLVE_SCRIPT_LIB / PYTHONPATH set as Resolve's README says)."""
    ns = namespace if namespace is not None else globals()
    if ns.get("resolve") is not None:
        return ns["resolve"]
    for name in ("bmd", "app", "fusion"):
        obj = ns.get(name)
        if obj is None:
            continue
        try:
            res = obj.scriptapp("Resolve") if name == "bmd" else obj.GetResolve()
        except Exception:  # noqa: BLE001 - the host object may lack the call
            res = None
        if res is not None:
            return res
    try:
        import DaVinciResolveScript as dvr  # noqa: N813
    except ImportError:
        api = os.environ.get("RESOLVE_SCRIPT_API") or default_script_api()
        modules = os.path.join(api, "Modules")
        if modules not in sys.path:
            sys.path.append(modules)
        try:
            import DaVinciResolveScript as dvr  # noqa: N813
        except ImportError:
            raise S2VTError("cannot import DaVinciResolveScript; run this from Workspace > Scripts, or set "
                            "RESOLVE_SCRIPT_API, RESOLVE_SCRIPT_LIB and PYTHONPATH (see plugins/resolve/README.md)")
    res = dvr.scriptapp("Resolve")
    if res is None:
        raise S2VTError("Resolve is not running, or external scripting is off (Preferences > System > General > "
                        "External scripting using: Local)")
    return res


def default_script_api():
    if sys.platform == "darwin":
        return "/Library/Application Support/Blackmagic Design/DaVinci Resolve/Developer/Scripting"
    if sys.platform == "win32":
        return os.path.join(os.environ.get("PROGRAMDATA", r"C:\ProgramData"),
                            "Blackmagic Design", "DaVinci Resolve", "Support", "Developer", "Scripting")
    return "/opt/resolve/Developer/Scripting"


def resolve_version(resolve):
    try:
        fields = resolve.GetVersion()
        return tuple(int(x) for x in fields[:3])
    except Exception:  # noqa: BLE001 - unknown: assume an old version (FCP 7 XML export)
        return (0, 0, 0)


def current_timeline(resolve):
    project = resolve.GetProjectManager().GetCurrentProject()
    if project is None:
        raise S2VTError("no project is open in Resolve")
    timeline = project.GetCurrentTimeline()
    if timeline is None:
        raise S2VTError("project %r has no current timeline; open one on the Edit page" % project.GetName())
    return project, timeline


def _safe_name(text):
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip("._")
    return keep[:80] or "timeline"


def export_timeline(resolve, timeline, folder):
    """Export ``timeline`` into ``folder``: OTIO where this Resolve has it, FCP 7 XML otherwise.
    Returns (path, format)."""
    os.makedirs(folder, exist_ok=True)
    base = os.path.join(folder, "%s_%s" % (_safe_name(timeline.GetName()), time.strftime("%Y%m%d-%H%M%S")))
    none = getattr(resolve, "EXPORT_NONE", 0)
    otio_type = getattr(resolve, "EXPORT_OTIO", None)
    if otio_type is not None and resolve_version(resolve) >= OTIO_SINCE:
        path = base + ".otio"
        if timeline.Export(path, otio_type, none) and os.path.isfile(path):
            return path, "otio"
    path = base + ".xml"
    if not timeline.Export(path, resolve.EXPORT_FCP_7_XML, none) or not os.path.isfile(path):
        raise S2VTError("Resolve could not export timeline %r to %s" % (timeline.GetName(), path))
    return path, "fcp_xml"


def end_frame(frame_count, version):
    """clipInfo/AddTake endFrame for ``frame_count`` frames from 0: exclusive from Resolve 19 on,
    inclusive (the last frame) before."""
    return frame_count if version >= EXCLUSIVE_END_SINCE else frame_count - 1


def _find_or_add_folder(media_pool, parent, name):
    for sub in parent.GetSubFolderList() or []:
        if sub.GetName() == name:
            return sub
    folder = media_pool.AddSubFolder(parent, name)
    if folder is None:
        raise S2VTError("Resolve could not create the media pool bin %r" % name)
    return folder


def _norm(path):
    return os.path.normcase(os.path.normpath(os.path.abspath(path))) if path else ""


def _next_version(timeline):
    used = []
    for i in range(1, (timeline.GetTrackCount("video") or 0) + 1):
        name = timeline.GetTrackName("video", i) or ""
        if name.startswith(TRACK_PREFIX) and name[len(TRACK_PREFIX):].isdigit():
            used.append(int(name[len(TRACK_PREFIX):]))
    return max(used) + 1 if used else 1


def _item_under(timeline, frame, below_track):
    """The topmost timeline item on video tracks 1..below_track-1 that covers absolute ``frame``."""
    for index in range(below_track - 1, 0, -1):
        for item in timeline.GetItemListInTrack("video", index) or []:
            if item.GetStart() <= frame < item.GetEnd():
                return item
    return None


def place_results(resolve, project, timeline, jobs_doc, mode="track", say=print):
    """Import the done renders and place them (new track, or takes); add markers for skipped/failed
    shots. Returns a report dict."""
    version = resolve_version(resolve)
    jobs = jobs_doc["jobs"]
    done = [j for j in jobs if j["state"] == "done" and j.get("output")]
    start = timeline.GetStartFrame()
    report = {"imported": 0, "placed": [], "takes": [], "markers": [], "problems": [], "track": None, "bin": None}
    vnum = _next_version(timeline)
    label = "%s%03d" % (TRACK_PREFIX, vnum)

    if done:
        media_pool = project.GetMediaPool()
        root = media_pool.GetRootFolder()
        folder = _find_or_add_folder(media_pool, _find_or_add_folder(media_pool, root, BIN_NAME),
                                     "%s %s" % (timeline.GetName(), label))
        report["bin"] = "%s/%s" % (BIN_NAME, folder.GetName())
        media_pool.SetCurrentFolder(folder)
        items = media_pool.ImportMedia([j["output"] for j in done]) or []
        by_path = {}
        for item in items:
            by_path[_norm(item.GetClipProperty("File Path"))] = item
        report["imported"] = len(items)
        if mode == "track":
            if not timeline.AddTrack("video"):
                raise S2VTError("Resolve could not add a video track to %r" % timeline.GetName())
            track = timeline.GetTrackCount("video")
            timeline.SetTrackName("video", track, label)
            report["track"] = {"index": track, "name": label}
        for job in done:
            item = by_path.get(_norm(job["output"]))
            n = job["record_out"] - job["record_in"]
            if item is None:
                report["problems"].append("%s: Resolve did not import %s" % (job["label"], job["output"]))
                continue
            record = start + job["record_in"]
            if mode == "track":
                info = {"mediaPoolItem": item, "startFrame": 0, "endFrame": end_frame(n, version),
                        "mediaType": 1, "trackIndex": report["track"]["index"], "recordFrame": record}
                placed = media_pool.AppendToTimeline([info]) or []
                if not placed:
                    report["problems"].append("%s: Resolve did not place %s" % (job["label"], job["output"]))
                    continue
                got = (placed[0].GetStart(), placed[0].GetEnd())
                if got != (record, record + n):
                    report["problems"].append("%s: placed at %d-%d, planned %d-%d"
                                              % (job["label"], got[0], got[1], record, record + n))
                report["placed"].append({"job": job["id"], "record_frame": record, "frames": n})
            else:
                original = _item_under(timeline, record, (timeline.GetTrackCount("video") or 0) + 1)
                if original is None:
                    report["problems"].append("%s: no clip under record frame %d for a take" % (job["label"], record))
                    continue
                if original.GetStart() != record or original.GetEnd() != record + n:
                    report["problems"].append("%s: the take covers %d-%d, the clip %d-%d (trim the take)"
                                              % (job["label"], record, record + n, original.GetStart(),
                                                 original.GetEnd()))
                if original.AddTake(item, 0, end_frame(n, version)):
                    report["takes"].append({"job": job["id"], "record_frame": record, "frames": n})
                else:
                    report["problems"].append("%s: Resolve did not add the take" % job["label"])

    for job in jobs:
        if job["state"] not in ("skipped", "failed"):
            continue
        color = SKIP_COLOR if job["state"] == "skipped" else FAIL_COLOR
        note = job.get("error") if job["state"] == "failed" and job.get("error") else job.get("reason", "")
        name = "S2V %s: %s" % (job["state"], job["label"])
        duration = max(1, job["record_out"] - job["record_in"])
        # timeline markers count frames from the timeline's first frame (not absolute like recordFrame)
        if timeline.AddMarker(job["record_in"], color, name, note or "", duration, MARKER_TAG + job["id"]):
            report["markers"].append({"job": job["id"], "frame": job["record_in"], "color": color})
        else:
            report["problems"].append("%s: marker at frame %d not added (one is there already?)"
                                      % (job["label"], job["record_in"]))
    for problem in report["problems"]:
        say("[s2vt] problem: " + problem)
    return report


# ---------------------------------------------------------------------- the whole run
def pick_cast(args, settings, say=print):
    """The cast file: --cast, then $S2VT_CAST, then a file dialog (tkinter) starting at the last one."""
    cast = args.cast or os.environ.get("S2VT_CAST")
    if not cast and not args.no_dialog:
        try:
            import tkinter
            from tkinter import filedialog

            root = tkinter.Tk()
            root.withdraw()
            last = settings.get("cast") or ""
            cast = filedialog.askopenfilename(
                title="s2v-toolkit: pick the cast file", initialdir=os.path.dirname(last) or os.path.expanduser("~"),
                filetypes=[("Cast file", "*.yaml *.yml *.json"), ("All files", "*")])
            root.destroy()
        except Exception:  # noqa: BLE001 - no Tk in this Python: fall back to the last choice
            cast = None
        cast = cast or settings.get("cast")
    if not cast:
        raise S2VTError("no cast file: pass --cast FILE or set S2VT_CAST (a YAML file listing the characters)")
    cast = os.path.abspath(os.path.expanduser(cast))
    if not os.path.isfile(cast):
        raise S2VTError("cast file not found: %s" % cast)
    return cast


def run(resolve, args, say=print):
    settings = load_settings()
    conn = read_connection(args.state_file)
    client = ApiClient(conn["url"], conn["token"], timeout=args.http_timeout)
    project, timeline = current_timeline(resolve)
    if args.resume:
        project_id = args.resume
        say("[s2vt] resuming project %s" % project_id)
    else:
        cast = pick_cast(args, settings, say)
        export_dir = args.export_dir or settings.get("export_dir") or os.path.join(
            os.path.expanduser("~"), "s2v-toolkit", "resolve-exports")
        path, fmt = export_timeline(resolve, timeline, export_dir)
        say("[s2vt] exported %r as %s: %s" % (timeline.GetName(), fmt, path))
        plan_options = {"turns": os.path.abspath(args.turns)} if args.turns else {}
        created = client.create_project(path, cast, timeline.GetName(), plan_options)
        project_id = created["id"]
        settings.update(cast=cast, last_project=project_id, export_dir=export_dir)
        save_settings(settings)
        say("[s2vt] project %s: planning" % project_id)
        client.wait(project_id, "plan", args.timeout, args.poll, say)
    state = client.project(project_id)
    if state["tasks"]["render"]["state"] != "done":
        options = {"model": args.model} if args.model else {}
        if state["busy"] != "render":
            client.render(project_id, options)
        say("[s2vt] rendering")
        client.wait(project_id, "render", args.timeout, args.poll, say)
    jobs_doc = client.jobs(project_id)
    report = place_results(resolve, project, timeline, jobs_doc, mode=args.mode, say=say)
    report["project"] = project_id
    counts = {}
    for j in jobs_doc["jobs"]:
        counts[j["state"]] = counts.get(j["state"], 0) + 1
    say("[s2vt] done: %s; imported %d, placed %d, takes %d, markers %d"
        % (", ".join("%s %d" % kv for kv in sorted(counts.items())), report["imported"], len(report["placed"]),
           len(report["takes"]), len(report["markers"])))
    return report


def build_parser():
    p = argparse.ArgumentParser(prog="s2v_toolkit_resolve", description=__doc__.split("\n\n")[0])
    p.add_argument("--cast", help="cast file (default: $S2VT_CAST, a file dialog, or the last one used)")
    p.add_argument("--mode", choices=("track", "takes"), default=os.environ.get("S2VT_RESOLVE_MODE", "track"),
                   help="place renders on a new video track (default) or as takes on the original clips")
    p.add_argument("--model", default=os.environ.get("S2VT_MODEL"), help="generator for the render, e.g. tiny")
    p.add_argument("--turns", default=None,
                   help="speaker turns (JSON from `s2vt diarize --json`, or RTTM) to use instead of diarizing")
    p.add_argument("--state-file", default=None, help="s2vt serve state file (default: the per-user one)")
    p.add_argument("--export-dir", default=None, help="where to export the timeline (inside the server's allowed folders)")
    p.add_argument("--resume", metavar="PROJECT_ID", help="import the renders of an earlier submission")
    p.add_argument("--timeout", type=float, default=6 * 3600, help="give up waiting after this many seconds")
    p.add_argument("--poll", type=float, default=2.0, help="seconds between progress checks")
    p.add_argument("--http-timeout", type=float, default=30.0, help="seconds per HTTP request")
    p.add_argument("--no-dialog", action="store_true", help="never open a file dialog")
    return p


def main(argv=None, resolve=None, say=print):
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        report = run(resolve if resolve is not None else get_resolve(), args, say)
    except S2VTError as exc:
        say("[s2vt] error: %s" % exc)
        return 2
    return 0 if not report["problems"] else 1


def _launched_by_resolve():
    # Workspace > Scripts runs this file with Resolve's objects already in its globals.
    return any(globals().get(name) is not None for name in ("resolve", "bmd", "app"))


if _launched_by_resolve():
    main([])  # never sys.exit inside Resolve: it would stop Resolve's script host
elif __name__ == "__main__":
    sys.exit(main())
