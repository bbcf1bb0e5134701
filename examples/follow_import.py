#!/usr/bin/python3
"""Select images and follow their import to the end, over Socket.IO with python-socketio.

    BOOTSTREAM_URL=http://127.0.0.1:5240 BOOTSTREAM_TOKEN=... \\
        python3 examples/follow_import.py ubuntu/noble amd64,arm64 [OS/RELEASE ARCHES]...

Needs python-socketio 5 (Debian: apt-get install python3-socketio python3-websocket).
Adds the images to the selection (like `bootstream select`), saving with the current revision and
retrying on `conflict`; then follows the import run that picks the save up and prints progress.
Exit 0 when every image asked for is synced (or rack-synced), 1 when one failed or the run was
stopped or refused, 2 on a usage error. BOOTSTREAM_TIMEOUT (seconds, default 3600) bounds the wait.
"""

import heapq
import os
import queue
import sys
import time

import socketio

URL = os.environ.get("BOOTSTREAM_URL", "http://127.0.0.1:5240")
TOKEN = os.environ.get("BOOTSTREAM_TOKEN")
TIMEOUT = float(os.environ.get("BOOTSTREAM_TIMEOUT", "3600"))
EVENTS = ["snapshot", "image", "image:removed", "selection", "settings", "source", "import",
          "rack", "rack:removed", "presence", "audit"]


def usage(message):
    print(f"follow_import: {message}\nusage: follow_import.py OS/RELEASE ARCH[,ARCH...] ...", file=sys.stderr)
    sys.exit(2)


args = sys.argv[1:]
if not TOKEN:
    usage("set BOOTSTREAM_TOKEN")
if not args or len(args) % 2:
    usage("give OS/RELEASE and ARCHES pairs")
wanted = []
for spec, arches in zip(args[::2], args[1::2]):
    parts = spec.split("/")
    arch_list = [a for a in arches.split(",") if a]
    if len(parts) != 2 or not all(parts) or not arch_list:
        usage(f'bad image "{spec}"')
    wanted.append({"os": parts[0], "release": parts[1], "arches": arch_list})
targets = [f"{w['os']}/{w['release']}/{arch}" for w in wanted for arch in w["arches"]]


def merge(items):
    out = [dict(item, arches=list(item["arches"])) for item in items]
    for add in wanted:
        same = next((i for i in out if i["os"] == add["os"] and i["release"] == add["release"]), None)
        if same:
            same["arches"] = sorted(set(same["arches"]) | set(add["arches"]))
        else:
            out.append(dict(add))
    return out


def describe(image):
    if image is None:
        return "not in the region yet"
    if image["state"] == "downloading":
        percent = 100 * image["bytesDone"] // image["bytesTotal"] if image["bytesTotal"] else 0
        return f"downloading {percent}% of {image['bytesTotal']} bytes"
    if image["state"] == "failed":
        return f"failed: {image['error']}"
    version = f" (version {image['version']})" if image["version"] else ""
    return f"{image['state']}{version}, racks {image['racks']['synced']}/{image['racks']['total']}"


# python-socketio runs every event handler in a thread of its own, so handlers only queue the
# events; the main thread puts them back in `seq` order. Each event also carries a second argument,
# the Socket.IO connection-state-recovery offset, which socket.io-client hides: ignore it.
sio = socketio.Client(reconnection=True)
inbox = queue.Queue()
refused = []
for name in EVENTS:
    sio.on(name, lambda data, *_offset, name=name: inbox.put((name, data)))
sio.on("connect_error", lambda data=None: refused.append(
    data.get("message") if isinstance(data, dict) else str(data or "connection failed")))

try:
    sio.connect(URL, auth={"token": TOKEN}, wait=False)  # the snapshot (or a refusal) is awaited below
except socketio.exceptions.ConnectionError as error:
    print(f"cannot connect to {URL}: {refused[-1] if refused else error}", file=sys.stderr)
    sys.exit(1)

state = None  # the last snapshot, kept current by the events below
last_seq = None
pending = []  # (seq, n, name, data) waiting for the events before them
arrivals = 0
gap_since = None


def apply(name, data):
    """Folds one event into `state` (only what this script reads) and remembers its seq."""
    global state, last_seq
    if name == "snapshot":
        state = {k: v for k, v in data.items() if k != "seq"}
        state["images"] = {image["id"]: image for image in data["images"]}
    elif name == "image":
        state["images"][data["image"]["id"]] = data["image"]
    elif name == "image:removed":
        state["images"].pop(data["id"], None)
    elif name in ("selection", "settings", "source", "import"):
        state[name] = data[name]
    elif name in ("rack", "rack:removed"):
        gone = data["rack"]["name"] if name == "rack" else data["name"]
        state["racks"] = [r for r in state["racks"] if r["name"] != gone] + ([data["rack"]] if name == "rack" else [])
    last_seq = data["seq"]


def next_events(timeout):
    """Yields events in seq order; after a gap that does not fill within 2 s, reloads with state:get."""
    global arrivals, gap_since
    try:
        name, data = inbox.get(timeout=timeout)
        arrivals += 1
        heapq.heappush(pending, (data["seq"], arrivals, name, data))
    except queue.Empty:
        pass
    while pending:
        seq, _, name, data = pending[0]
        if name == "snapshot" or last_seq is None or seq <= last_seq + 1:
            heapq.heappop(pending)
            gap_since = None
            if name == "snapshot" or last_seq is None or seq == last_seq + 1:
                if state is not None or name == "snapshot":
                    apply(name, data)
                    yield name, data
            continue
        gap_since = gap_since or time.monotonic()
        if time.monotonic() - gap_since > 2:
            answer = sio.call("state:get", {})
            snapshot = dict(answer["snapshot"], seq=seq - 1)
            apply("snapshot", snapshot)
            yield "snapshot", snapshot
            gap_since = None
            continue
        break


connect_deadline = time.monotonic() + 10
while state is None:
    if refused or time.monotonic() > connect_deadline:
        reason = refused[-1] if refused else "no snapshot within 10 s"
        print(f"cannot connect to {URL}: {reason}", file=sys.stderr)  # "unauthorized": a wrong token
        sio.disconnect()
        sys.exit(1)
    for _ in next_events(0.2):
        pass

images = list(state["images"].values())


def count(*states):
    return sum(1 for image in images if image["state"] in states)


items = ", ".join(f"{i['os']}/{i['release']} [{','.join(i['arches'])}]" for i in state["selection"]["items"])
print(f"connected to {URL} as {state['you']['name']} ({state['you']['role']}); seq {last_seq}")
print(f"  selection revision {state['selection']['revision']}: {items or 'nothing'}")
print(f"  images: {len(images)} ({count('synced', 'rack-synced')} synced, "
      f"{count('queued', 'downloading')} importing, {count('failed')} failed)")
print(f"  import: {'running since ' + state['import']['startedAt'] if state['import']['running'] else 'idle'}; "
      f"racks online: {sum(1 for r in state['racks'] if r['online'])}/{len(state['racks'])}")

# Read, change, save with the revision read; on conflict start again from the current selection.
# The ack is call()'s return value: {"ok": true, "selection": ...} or {"ok": false, "error": ...}.
selection = state["selection"]
for attempt in range(1, 11):
    started_before = state["import"]["startedAt"]
    answer = sio.call("selection:save", {"revision": selection["revision"], "items": merge(selection["items"])})
    if answer["ok"]:
        saved_revision = answer["selection"]["revision"]
        print(f"selection saved as revision {saved_revision}")
        break
    error = answer["error"]
    if error["code"] == "conflict" and attempt < 10:
        print(f"conflict: revision {selection['revision']} is stale, retrying")
        selection = error["selection"]
        continue
    print(f"selection:save refused: {error['code']}: {error['message']}", file=sys.stderr)
    sio.disconnect()
    sys.exit(1)

# The run that imports our save is the first `import` event with running: true after our `selection`
# event (the events of one connection come in order). Its running: false event ends the wait.
saved = False
our_run = None
printed = {}
deadline = time.monotonic() + TIMEOUT
down_since = None
code = None
while code is None:
    if time.monotonic() > deadline:
        print(f"gave up after {TIMEOUT:.0f} s", file=sys.stderr)
        code = 1
        break
    # python-socketio reconnects after a network error, but not when the region closed the socket
    # (e.g. the token was revoked): give up when the connection stays down for a minute.
    down_since = None if sio.connected else down_since or time.monotonic()
    if not sio.connected and (refused or time.monotonic() - down_since > 60):
        reason = f"refused: {refused[-1]}" if refused else "down for 60 s"
        print(f"lost the connection to the region ({reason})", file=sys.stderr)
        code = 1
        break
    for name, data in next_events(0.5):
        for image_id in targets:
            line = describe(state["images"].get(image_id))
            if printed.get(image_id) != line:
                print(f"{image_id}: {line}", flush=True)
            printed[image_id] = line
        if name == "selection" and data["selection"]["revision"] == saved_revision:
            saved = True
        if name == "snapshot" and state["selection"]["revision"] >= saved_revision:
            saved = True  # a fresh snapshot after a reconnect already holds the save
        if not saved:
            continue
        run = state["import"]
        # Our save may start a run, or join the one already running (both import what we asked for).
        if run["running"] and our_run is None:
            our_run = run["startedAt"]
        # After a reconnect without recovery (a fresh snapshot), any run started since the save counts.
        if our_run is not None:
            ended = not run["running"] and run["startedAt"] == our_run
        else:
            ended = name == "snapshot" and not run["running"] and run["startedAt"] != started_before
        if ended:
            if run["error"]:
                print(f"import finished with: {run['error']}")
            bad = [i for i in targets if state["images"].get(i, {}).get("state") not in ("synced", "rack-synced")]
            print("all synced" if not bad else f"not synced: {', '.join(bad)}")
            code = 0 if not bad else 1
            break

sio.disconnect()
sys.exit(code)
