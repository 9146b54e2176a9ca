#!/usr/bin/env bash
# Container smoke test: builds the image with podman and checks it for real.
#
#   scripts/container-smoke.sh
#
# Runs from anywhere (it changes to the repository root) and first runs
# scripts/container-env.sh, which installs podman and the base image if needed (machines
# without a Docker engine).
#
# 1. checks docker-compose.yml names the same image, command and settings as this run;
# 2. starts the image (its own CMD: the compiled server) with API keys and a named volume;
# 3. /healthz, /readyz, the dashboard at /, the HEALTHCHECK command, auth, the user it runs as, PID 1;
# 4. enqueues `generate-report` over REST and waits for it to complete;
# 5. SIGTERM (podman stop): exit code 0 and "ratchet server stopped" in the log;
# 6. a new container on the same volume, with node_modules/tsx hidden (an empty tmpfs over
#    it), still has the execution and runs a new one: the server needs no tsx;
# 7. SIGTERM during a running attempt with a short RATCHET_DRAIN_MS: the attempt is released
#    and completes after a restart;
# 8. a TypeScript tasks module bind-mounted under /app/tasks (RATCHET_TASKS, as documented)
#    loads and its task completes.
# Prints PASS/FAIL lines, exits 1 on any failure, always removes its containers and volume.
# Idempotent: leftovers of an interrupted run are removed first. RATCHET_IMAGE and
# RATCHET_SMOKE_NAME change the image tag and the container/volume names (default
# localhost/ratchet and ratchet-smoke), so parallel runs on one machine do not collide.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${RATCHET_IMAGE:-localhost/ratchet}
COMPOSE_IMAGE=localhost/ratchet
EXPECTED_CMD='["node","apps/server/dist/cli.js","start"]'
NAME=${RATCHET_SMOKE_NAME:-ratchet-smoke}
VOLUME=$NAME-data
TASKS_DIR=$(mktemp -d)
SECRET=$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n') # 36 hex characters (16+ required)
failures=0

pass() { echo "PASS $*"; }
fail() {
  echo "FAIL $*"
  failures=$((failures + 1))
}
cleanup() {
  podman rm -f -t 0 "$NAME" >/dev/null 2>&1 || true # container and volume of this script only
  podman volume rm -f "$VOLUME" >/dev/null 2>&1 || true
}
show_logs() {
  echo "---- podman logs $NAME (last 40 lines)"
  podman logs --tail 40 "$NAME" 2>&1 || true
  echo "----"
}
# A failure that makes the following checks meaningless.
abort() {
  fail "$*"
  show_logs
  echo "container smoke test: FAILED ($failures failure(s))"
  exit 1
}

# JSON field of a file: json_get FILE 'expression on j' (e.g. j.status)
# Prints nothing if the file is not JSON, so callers report the body instead of exiting.
json_get() {
  node -e 'try { const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); const v = ('"$2"'); console.log(typeof v === "object" ? JSON.stringify(v) : String(v ?? "")) } catch {}' "$1"
}

# HTTP: api METHOD PATH [BODY] -> prints the status code, body in $BODY_FILE
BODY_FILE=$(mktemp)
trap 'cleanup; rm -f "$BODY_FILE"; rm -rf "$TASKS_DIR"' EXIT
api() {
  local args=(-sS -o "$BODY_FILE" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $SECRET")
  [ $# -ge 3 ] && args+=(-H 'content-type: application/json' --data "$3")
  curl "${args[@]}" "http://127.0.0.1:$PORT$2" || true # curl prints 000 when it cannot connect
}

wait_healthy() {
  for _ in $(seq 1 120); do
    if [ "$(podman inspect --format '{{.State.Running}}' "$NAME" 2>/dev/null)" != true ]; then
      abort "container exited before /healthz answered (exit code $(podman inspect --format '{{.State.ExitCode}}' "$NAME" 2>/dev/null))"
    fi
    if curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  abort "/healthz did not answer within 60 s"
}

# Without systemd, podman cannot schedule the image's HEALTHCHECK timer and says so on stderr
# at run, stop and rm (harmless: the check is run by hand below); those lines are filtered out.
podman_q() { podman "$@" 2> >(grep -v 'systemd connection' >&2); }

start_container() { # extra podman run args...
  podman_q run -d --name "$NAME" --network=host \
    -e PORT="$PORT" -e RATCHET_API_KEYS="smoke:$SECRET" "$@" \
    -v "$VOLUME:/data" "$IMAGE" >/dev/null
}

# SIGTERM and check a clean exit: stop_and_check LABEL
stop_and_check() {
  local started=$SECONDS code
  podman_q stop -t 60 "$NAME" >/dev/null
  code=$(podman inspect --format '{{.State.ExitCode}}' "$NAME")
  if [ "$code" = 0 ]; then pass "$1: SIGTERM -> exit code 0 after $((SECONDS - started)) s"; else fail "$1: exit code $code after SIGTERM"; fi
  if podman logs "$NAME" 2>&1 | grep -q 'ratchet server stopped'; then
    pass "$1: log has \"ratchet server stopped\""
  else
    fail "$1: no \"ratchet server stopped\" in the log"
    show_logs
  fi
}

cleanup

# ---- environment and image ----
bash scripts/container-env.sh
# --format docker: podman's default OCI image format has no HEALTHCHECK and would drop it
# (docker build keeps it anyway). ~3 min the first time (apt, npm ci, better-sqlite3), then cached.
started=$SECONDS
previous=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
if podman build --network=host --format docker -t "$IMAGE" . >/tmp/ratchet-container-build.log 2>&1; then
  pass "podman build -t $IMAGE . ($((SECONDS - started)) s, log /tmp/ratchet-container-build.log)"
else
  tail -30 /tmp/ratchet-container-build.log
  abort "podman build (log /tmp/ratchet-container-build.log)"
fi
# The image this build replaced, now untagged (kept if a container still uses it).
if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{.Id}}' "$IMAGE")" ]; then
  podman rmi "$previous" >/dev/null 2>&1 || true
fi
cmd=$(podman image inspect --format '{{json .Config.Cmd}}' "$IMAGE")
[ "$cmd" = "$EXPECTED_CMD" ] && pass "image CMD $cmd" || fail "image CMD is $cmd, expected $EXPECTED_CMD"
user=$(podman image inspect --format '{{.Config.User}}' "$IMAGE")
[ "$user" = node ] && pass "image USER node" || fail "image USER is '$user', expected node"
health=$(podman image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE")
case "$health" in *'/healthz'*) pass "image HEALTHCHECK probes /healthz" ;; *) fail "image HEALTHCHECK: $health" ;; esac
echo "     image size: $(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1 / 1e6}')"

# ---- docker-compose.yml ----
# Parsed with PyYAML if python3 has it, else with js-yaml if node_modules has it (a transitive
# dev dependency, no new one); else a grep of the lines that matter.
compose_json() {
  if python3 -c 'import yaml' >/dev/null 2>&1; then
    echo "     docker-compose.yml parsed with python3 PyYAML" >&2
    python3 -c 'import json, yaml; print(json.dumps(yaml.safe_load(open("docker-compose.yml"))))'
  elif node -e 'require.resolve("js-yaml")' >/dev/null 2>&1; then
    echo "     docker-compose.yml parsed with node js-yaml" >&2
    node -e 'console.log(JSON.stringify(require("js-yaml").load(require("fs").readFileSync("docker-compose.yml", "utf8"))))'
  else
    return 1
  fi
}
if json=$(compose_json); then
  # One line per check: "PASS ..." or "FAIL ...".
  results=$(EXPECTED_CMD="$EXPECTED_CMD" IMAGE="$COMPOSE_IMAGE" node -e '
    const c = JSON.parse(require("fs").readFileSync(0, "utf8"))
    const out = []
    const check = (ok, what) => out.push(`${ok ? "PASS" : "FAIL"} compose: ${what}`)
    const r = c?.services?.ratchet ?? {}
    const lite = c?.services?.["ratchet-sqlite"] ?? {}
    const envOf = (s) => Array.isArray(s.environment)
      ? Object.fromEntries(s.environment.map((e) => [e.split("=")[0], e.split("=").slice(1).join("=")]))
      : (s.environment ?? {})
    const env = envOf(r)
    const seconds = (d) => { const m = /^(\d+)(ms|s|m)?$/.exec(String(d)); return m ? Number(m[1]) * ({ ms: 0.001, s: 1, m: 60 }[m[2] ?? "s"]) : NaN }
    for (const [name, s] of [["ratchet", r], ["ratchet-sqlite", lite]]) {
      check(s.image === process.env.IMAGE, `${name} image is ${s.image}`)
      check(s.build === "." || s.build?.context === ".", `${name} builds from the repository root`)
      check(s.command === undefined || JSON.stringify(s.command) === process.env.EXPECTED_CMD,
        `${name} command ${JSON.stringify(s.command ?? "(image CMD)")} is the image CMD`)
      check(String(envOf(s).RATCHET_API_KEYS ?? "").startsWith("${RATCHET_API_KEYS:?"), `${name}: RATCHET_API_KEYS is required from the environment`)
      check(envOf(s).HOST === "0.0.0.0", `${name}: HOST=0.0.0.0`)
      check(JSON.stringify(s.healthcheck?.test ?? "").includes("/healthz"), `${name} healthcheck probes /healthz`)
      const drain = Number(envOf(s).RATCHET_DRAIN_MS ?? 30000) / 1000
      check(seconds(s.stop_grace_period) > drain, `${name} stop_grace_period ${s.stop_grace_period} > RATCHET_DRAIN_MS (${drain} s)`)
    }
    check((r.deploy?.replicas ?? 1) >= 2, `ratchet runs ${r.deploy?.replicas ?? 1} replicas`)
    check(String(env.DATABASE_URL ?? "").startsWith("postgres://"), "ratchet: DATABASE_URL is PostgreSQL")
    check(r.depends_on?.postgres?.condition === "service_healthy", "ratchet waits for a healthy postgres")
    check((r.ports ?? []).some((p) => String(p.target ?? p).endsWith(":8787")), "ratchet publishes port 8787 of each replica")
    check(JSON.stringify(c?.services?.postgres?.healthcheck?.test ?? "").includes("pg_isready"), "postgres healthcheck runs pg_isready")
    check((lite.profiles ?? []).includes("sqlite"), "ratchet-sqlite only under the sqlite profile")
    check((lite.volumes ?? []).some((v) => String(v.target ?? v).endsWith(":/data") || v.target === "/data"), "ratchet-sqlite: a volume on /data")
    check((lite.ports ?? []).some((p) => String(p.target ?? p).endsWith("8787")), "ratchet-sqlite: port 8787 published")
    console.log(out.join("\n"))
  ' <<<"$json")
else
  echo "     no YAML parser (PyYAML, js-yaml): grep of docker-compose.yml" >&2
  results=$(
    g() { grep -Eq "$1" docker-compose.yml && echo "PASS compose: $2" || echo "FAIL compose: $2"; }
    g "^ +image: $COMPOSE_IMAGE\$" "ratchet image is $COMPOSE_IMAGE"
    if grep -Fq "command: ['node', 'apps/server/dist/cli.js', 'start']" docker-compose.yml ||
      ! grep -Eq '^ +command:' docker-compose.yml; then
      echo "PASS compose: ratchet command is the image CMD"
    else
      echo "FAIL compose: ratchet command is the image CMD"
    fi
    g 'RATCHET_API_KEYS: \$\{RATCHET_API_KEYS:\?' "RATCHET_API_KEYS is required"
    g 'HOST: .?0\.0\.0\.0' "HOST=0.0.0.0"
    g ':/data$' "a volume on /data"
    g 'condition: service_healthy' "the servers wait for a healthy postgres"
    g "profiles: \\['sqlite'\\]" "ratchet-sqlite only under the sqlite profile"
    g '/healthz' "healthcheck probes /healthz"
  )
fi
# A compose implementation, where one is installed, validates the file against its schema.
for compose in docker-compose podman-compose; do
  command -v "$compose" >/dev/null || continue
  if out=$(RATCHET_API_KEYS="smoke:$SECRET" "$compose" -f docker-compose.yml config 2>&1 >/dev/null); then
    results+=$'\n'"PASS compose: \`$compose config\` accepts docker-compose.yml"
  else
    results+=$'\n'"FAIL compose: \`$compose config\`: $out"
  fi
  break
done
echo "$results"
failures=$((failures + $(grep -c '^FAIL' <<<"$results" || true)))

# ---- run: health, auth, an execution ----
PORT=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close() })')
podman volume create "$VOLUME" >/dev/null
start_container
wait_healthy
pass "container up, /healthz 200 on port $PORT (HOST=0.0.0.0 and DATABASE_URL from the image)"
code=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/readyz" || true)
[ "$code" = 200 ] && pass "/readyz 200" || fail "/readyz answered $code"
# The dashboard is built into the image and served at / (no key needed for the page itself).
page=$(curl -sS "http://127.0.0.1:$PORT/" || true)
case "$page" in *'<div id="root">'*) pass "/ serves the dashboard" ;; *) fail "/ did not serve the dashboard: ${page:0:200}" ;; esac
podman healthcheck run "$NAME" >/dev/null 2>&1 && pass "HEALTHCHECK command succeeds in the container" || fail "podman healthcheck run $NAME"
whoami=$(podman exec "$NAME" id -un)
[ "$whoami" = node ] && pass "server runs as user node" || fail "server runs as $whoami"
pid1=$(podman exec "$NAME" cat /proc/1/cmdline | tr '\0' ' ')
case "$pid1" in "node apps/server/dist/cli.js start ") pass "PID 1 is node on the compiled server: $pid1" ;; *) fail "PID 1 is '$pid1'" ;; esac
code=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/api/executions" || true)
[ "$code" = 401 ] && pass "no API key -> 401" || fail "no API key -> $code, expected 401"

code=$(api POST /api/executions '{"taskId":"generate-report","input":{"accountId":"acme","month":"2026-10","chunks":1}}')
[ "$code" = 200 ] || abort "POST /api/executions -> $code: $(cat "$BODY_FILE")"
id=$(json_get "$BODY_FILE" 'j.execution.id')
[ -n "$id" ] || abort "no execution id in $(cat "$BODY_FILE")"
pass "enqueued generate-report: $id"
code=$(api POST "/api/executions/$id/wait" '{"timeoutMs":20000}')
status=$(json_get "$BODY_FILE" 'j.status')
if [ "$code" = 200 ] && [ "$status" = completed ]; then
  pass "execution completed, output $(json_get "$BODY_FILE" 'j.output')"
else
  fail "wait -> $code, status $status: $(cat "$BODY_FILE")"
fi
podman exec "$NAME" test -s /data/ratchet.db && pass "database file /data/ratchet.db written" || fail "no /data/ratchet.db"

# ---- SIGTERM, then a new container on the same volume, without tsx ----
stop_and_check "idle stop"
podman_q rm "$NAME" >/dev/null
# An empty tmpfs over node_modules/tsx (notmpcopyup: podman would copy the image's files into
# it): if anything of the server needed tsx, it would not start.
start_container -e RATCHET_DRAIN_MS=1000 --mount type=tmpfs,destination=/app/node_modules/tsx,notmpcopyup
wait_healthy
tsx=$(podman exec "$NAME" node -e 'import("tsx/esm/api").then(() => console.log("found"), (e) => console.log(e.code))')
if [ "$tsx" = ERR_MODULE_NOT_FOUND ]; then
  pass "tsx cannot be imported in this container (an empty tmpfs over node_modules/tsx)"
else
  fail "tsx is still importable in this container: $tsx"
fi
code=$(api GET "/api/executions/$id")
status=$(json_get "$BODY_FILE" 'j.status')
if [ "$code" = 200 ] && [ "$status" = completed ]; then
  pass "new container on the same volume: execution $id still there, completed"
else
  fail "after restart GET /api/executions/$id -> $code: $(cat "$BODY_FILE")"
fi
code=$(api POST /api/executions '{"taskId":"send-welcome-email","input":{"userId":"u1","email":"ada@example.com"}}')
notsx=$(json_get "$BODY_FILE" 'j.execution.id')
code=$(api POST "/api/executions/$notsx/wait" '{"timeoutMs":20000}')
if [ "$code" = 200 ] && [ "$(json_get "$BODY_FILE" 'j.status')" = completed ]; then
  pass "without tsx: send-welcome-email ran (after its planned retry) and completed"
else
  fail "without tsx: send-welcome-email -> $code: $(cat "$BODY_FILE")"
fi

# ---- SIGTERM during a running attempt (RATCHET_DRAIN_MS=1000, the task takes ~4 s) ----
code=$(api POST /api/executions '{"taskId":"generate-report","input":{"accountId":"acme","month":"2026-11","chunks":10}}')
[ "$code" = 200 ] || abort "POST /api/executions (long) -> $code: $(cat "$BODY_FILE")"
long=$(json_get "$BODY_FILE" 'j.execution.id')
for _ in $(seq 1 40); do
  api GET "/api/executions/$long" >/dev/null
  [ "$(json_get "$BODY_FILE" 'j.status')" = running ] && break
  sleep 0.1
done
stop_and_check "stop while running"
if podman logs "$NAME" 2>&1 | grep -q 'attempt released at shutdown'; then
  pass "running attempt released at shutdown after RATCHET_DRAIN_MS"
else
  fail "no \"attempt released at shutdown\" in the log"
fi
podman_q rm "$NAME" >/dev/null
start_container
wait_healthy
code=$(api POST "/api/executions/$long/wait" '{"timeoutMs":20000}')
status=$(json_get "$BODY_FILE" 'j.status')
if [ "$code" = 200 ] && [ "$status" = completed ]; then
  pass "released execution ran again after restart and completed (attempt $(json_get "$BODY_FILE" 'j.attempt'))"
else
  fail "released execution after restart: $code $(cat "$BODY_FILE")"
fi
stop_and_check "stop after the release"
podman_q rm "$NAME" >/dev/null

# ---- a TypeScript tasks module mounted into the image (docs/deployment.md) ----
cat >"$TASKS_DIR/index.ts" <<'TS'
import { z } from 'zod'
import { TerminalError, task } from '@ratchet/core'

const input = z.object({ name: z.string() })
type Input = z.infer<typeof input>

export const hello = task({
  id: 'hello',
  input,
  run: ({ name }: Input): { greeting: string } => {
    if (name === '') throw new TerminalError('no name')
    return { greeting: `Hello, ${name}, from TypeScript` }
  },
})

export const tasks = { hello }
TS
chmod -R a+rX "$TASKS_DIR"
start_container -v "$TASKS_DIR:/app/tasks:ro" -e RATCHET_TASKS=/app/tasks/index.ts
wait_healthy
code=$(api POST /api/executions '{"taskId":"hello","input":{"name":"Ada"}}')
hello=$(json_get "$BODY_FILE" 'j.execution.id')
code=$(api POST "/api/executions/$hello/wait" '{"timeoutMs":20000}')
if [ "$code" = 200 ] && [ "$(json_get "$BODY_FILE" 'j.output.greeting')" = "Hello, Ada, from TypeScript" ]; then
  pass "TypeScript tasks module at /app/tasks/index.ts: loaded (tsx) and its task completed"
else
  fail "TypeScript tasks module: $code $(cat "$BODY_FILE")"
  show_logs
fi
stop_and_check "final stop"

if [ "$failures" -eq 0 ]; then
  echo "container smoke test: PASS"
else
  echo "container smoke test: FAILED ($failures failure(s))"
  exit 1
fi
