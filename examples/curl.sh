#!/usr/bin/env bash
# Select an image and wait until it is synced, with curl and the HTTP API only.
#
#   BOOTSTREAM_URL=http://127.0.0.1:5240 BOOTSTREAM_TOKEN=... examples/curl.sh ubuntu/noble amd64
#
# Reads the state, adds OS/RELEASE ARCH to the selection with the state's revision (retrying on a
# 409 conflict), starts an import, and polls GET /api/v1/state until the image is synced (or
# rack-synced): exit 0; failed, refused or timed out (BOOTSTREAM_TIMEOUT seconds, default 3600): exit 1.
# JSON is read with jq when it is installed, else with python3.
set -euo pipefail

URL="${BOOTSTREAM_URL:-http://127.0.0.1:5240}"
TOKEN="${BOOTSTREAM_TOKEN:-}"
TIMEOUT="${BOOTSTREAM_TIMEOUT:-3600}"
if [ -z "$TOKEN" ] || [ $# -ne 2 ] || [[ "$1" != */* ]]; then
  echo "usage: BOOTSTREAM_TOKEN=... $0 OS/RELEASE ARCH" >&2
  exit 2
fi
OS="${1%%/*}" RELEASE="${1#*/}" ARCH="$2" ID="$1/$2"

# api METHOD PATH [BODY]: prints the response body, then the HTTP status on a line of its own
# (000 when the region cannot be reached; curl says why on stderr).
api() {
  curl -sS -X "$1" "$URL$2" -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
    ${3:+--data "$3"} -w '\n%{http_code}\n' || true
}
body() { sed '$d' <<<"$1"; }
status() { tail -n1 <<<"$1"; }

# json QUERY < state-or-answer: the few things this script reads from the JSON.
#   revision  .selection.revision
#   save      the selection:save body: the selection with OS/RELEASE ARCH added
#   image     "STATE PERCENT% ERROR" of our image, or "absent"
#   run       "RUNNING STARTED-AT" of the import
JQ_revision='.selection.revision'
JQ_save='.selection as $s | {revision: $s.revision, items: (
  if any($s.items[]; .os == $os and .release == $release)
  then $s.items | map(if .os == $os and .release == $release then .arches = (.arches + [$arch] | unique) else . end)
  else $s.items + [{os: $os, release: $release, arches: [$arch]}] end)}'
JQ_image='[.images[] | select(.id == $id)] | if length == 0 then "absent" else .[0] |
  "\(.state) \(if .bytesTotal > 0 then (.bytesDone * 100 / .bytesTotal | floor) else 0 end)% \(.error // "")" | rtrimstr(" ") end'
JQ_run='"\(.import.running) \(.import.startedAt)"'
PY='
import json, sys
query, os_, release, arch, id_ = sys.argv[1:]
d = json.load(sys.stdin)
if query == "revision":
    print(d["selection"]["revision"])
elif query == "save":
    items = d["selection"]["items"]
    same = [i for i in items if i["os"] == os_ and i["release"] == release]
    if same:
        same[0]["arches"] = sorted(set(same[0]["arches"]) | {arch})
    else:
        items.append({"os": os_, "release": release, "arches": [arch]})
    print(json.dumps({"revision": d["selection"]["revision"], "items": items}))
elif query == "image":
    i = next((i for i in d["images"] if i["id"] == id_), None)
    done = i and (i["bytesDone"] * 100 // i["bytesTotal"] if i["bytesTotal"] else 0)
    print("absent" if i is None else ("%s %d%% %s" % (i["state"], done, i["error"] or "")).rstrip())
elif query == "run":
    print("%s %s" % (str(d["import"]["running"]).lower(), d["import"]["startedAt"]))
'
json() {
  if command -v jq >/dev/null; then
    local filter="JQ_$1"
    jq -c -r --arg os "$OS" --arg release "$RELEASE" --arg arch "$ARCH" --arg id "$ID" "${!filter}"
  else
    python3 -c "$PY" "$1" "$OS" "$RELEASE" "$ARCH" "$ID"
  fi
}

# 1. Save the selection with the revision read from the state; on 409 conflict read it again.
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  state="$(api GET /api/v1/state)"
  [ "$(status "$state")" = 200 ] || { echo "GET /api/v1/state: $(body "$state")" >&2; exit 1; }
  before="$(body "$state" | json run)"
  answer="$(api POST /api/v1/commands/selection:save "$(body "$state" | json save)")"
  [ "$(status "$answer")" = 200 ] && break
  if [ "$(status "$answer")" = 409 ] && [ "$attempt" -lt 10 ]; then
    echo "conflict: someone saved first; retrying"
    continue
  fi
  echo "selection:save refused ($(status "$answer")): $(body "$answer")" >&2
  exit 1
done
echo "selection saved as revision $(body "$answer" | json revision)"

# 2. Saving already starts an import; import:start asks for one explicitly (the answer holds the
#    import state from before it began: follow GET /api/v1/state, or the `import` event).
answer="$(api POST /api/v1/commands/import:start '{}')"
[ "$(status "$answer")" = 200 ] || { echo "import:start refused: $(body "$answer")" >&2; exit 1; }

# 3. Poll until the image is synced or rack-synced (exit 0), or failed in an import that began
#    after the save (exit 1): a "failed" left over from an earlier import is retried first.
deadline=$((SECONDS + TIMEOUT))
last=""
while [ "$SECONDS" -lt "$deadline" ]; do
  state="$(api GET /api/v1/state)"
  [ "$(status "$state")" = 200 ] || { echo "GET /api/v1/state: $(body "$state")" >&2; exit 1; }
  line="$(body "$state" | json image)"
  run="$(body "$state" | json run)"
  [ "$line" = "$last" ] || echo "$ID: $line"
  last="$line"
  case "$line" in
    synced* | rack-synced*) exit 0 ;;
    failed*) [ "$run" != "$before" ] && [[ "$run" == false* ]] && exit 1 ;;
  esac
  sleep 1
done
echo "gave up after $TIMEOUT s" >&2
exit 1
