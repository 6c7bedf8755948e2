#!/usr/bin/env bash
# Runs walguard's benchmark and its peers on the same workload, taking turns
# run by run, and prints one markdown table with pairwise ratios. See
# bench/README.md.
#
# Usage: bench/run.sh [--writes N] [--lone-writes N] [--runs N] [--synchronous normal|full|both]
#                     [--only SYSTEM[,SYSTEM...]] [--lone-only SYSTEM[,SYSTEM...]]
#
# Every run is its own process, one system at a time, in rounds: round 1 runs
# each system once, round 2 again in the same order, and so on (A B C A B C),
# so that a drift in the machine's load hits every system alike.
# --lone-only runs those systems at one in flight only (tokio-rusqlite at 256
# in flight under `full` takes about a minute per run). Set
# BENCH_JSON_OUT=FILE to keep the JSON lines, in the order they were run.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Every system, in the order of a round. The batching writer and walguard's
# group commit, the pair the headline compares, run next to each other.
PEER_SYSTEMS=(batching-writer raw-batched tokio-rusqlite raw-per-insert)
WALGUARD_SYSTEMS=(walguard-group-commit walguard)
ORDER=(batching-writer walguard-group-commit raw-batched tokio-rusqlite walguard raw-per-insert)

usage() {
    sed -n '6,15p' "$root/bench/run.sh" | sed 's/^# \{0,1\}//'
}

writes=200000
lone_writes=""
runs=3
syncs=(normal full)
only=""
lone_only=""
need_value() {
    if (($# < 2)); then
        echo "run.sh: $1 needs a value" >&2
        exit 2
    fi
}
while (($#)); do
    case "$1" in
        -h | --help)
            usage
            exit 0
            ;;
        --*=*)
            set -- "${1%%=*}" "${1#*=}" "${@:2}"
            continue
            ;;
        --writes) need_value "$@"; writes="$2"; shift 2 ;;
        --lone-writes) need_value "$@"; lone_writes="$2"; shift 2 ;;
        --runs) need_value "$@"; runs="$2"; shift 2 ;;
        --synchronous)
            need_value "$@"
            case "$2" in
                normal | full) syncs=("$2") ;;
                both) syncs=(normal full) ;;
                *)
                    echo "run.sh: --synchronous wants normal, full or both, got '$2'" >&2
                    exit 2
                    ;;
            esac
            shift 2
            ;;
        --only) need_value "$@"; only="$2"; shift 2 ;;
        --lone-only) need_value "$@"; lone_only="$2"; shift 2 ;;
        *)
            echo "run.sh: unknown argument '$1'" >&2
            usage >&2
            exit 2
            ;;
    esac
done
if ! [[ "$runs" =~ ^[1-9][0-9]*$ ]]; then
    echo "run.sh: --runs wants a positive integer, got '$runs'" >&2
    exit 2
fi

systems=()
if [[ -n "$only" ]]; then
    IFS=',' read -r -a wanted <<<"$only"
    for w in "${wanted[@]}"; do
        found=0
        for s in "${ORDER[@]}"; do
            [[ "$s" == "$w" ]] && found=1
        done
        if ((!found)); then
            echo "run.sh: --only: unknown system '$w' (known: ${ORDER[*]})" >&2
            exit 2
        fi
    done
    for s in "${ORDER[@]}"; do
        for w in "${wanted[@]}"; do
            [[ "$s" == "$w" ]] && systems+=("$s")
        done
    done
else
    systems=("${ORDER[@]}")
fi

is_peer() {
    local s
    for s in "${PEER_SYSTEMS[@]}"; do
        [[ "$s" == "$1" ]] && return 0
    done
    return 1
}

need_peers=0
need_walguard=0
for s in "${systems[@]}"; do
    if is_peer "$s"; then need_peers=1; else need_walguard=1; fi
done

common=(--writes "$writes" --runs 1)
if [[ -n "$lone_writes" ]]; then
    common+=(--lone-writes "$lone_writes")
fi

results="$(mktemp)"
trap 'rm -f "$results"' EXIT

cpu_model="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)"
machine="$(nproc) CPUs, ${cpu_model:-unknown CPU}, Linux $(uname -r)"

# Build once, outside the timed runs; then run the binaries directly.
peers_bin="$root/bench/peers/target/release/walguard-peers"
walguard_bin="${CARGO_TARGET_DIR:-$root/target}/release/examples/bench_walguard"
if ((need_peers)); then
    echo "run.sh: building the peers (bench/peers)" >&2
    # Its own target dir, whatever CARGO_TARGET_DIR says: it must not share
    # build artefacts with the workspace (both link a different `sqlite3`).
    CARGO_TARGET_DIR="$root/bench/peers/target" \
        cargo build --release --manifest-path bench/peers/Cargo.toml >&2
fi
if ((need_walguard)); then
    echo "run.sh: building the walguard side (bench_walguard example)" >&2
    cargo build --release -p walguard-bench --example bench_walguard >&2
fi

load_before="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)"
for ((round = 1; round <= runs; round++)); do
    for sync in "${syncs[@]}"; do
        for s in "${systems[@]}"; do
            echo "run.sh: round $round/$runs: $s synchronous=$sync" >&2
            level=()
            if [[ ",$lone_only," == *",$s,"* ]]; then
                level=(--in-flight 1)
            fi
            if is_peer "$s"; then
                "$peers_bin" "${common[@]}" "${level[@]+"${level[@]}"}" --synchronous "$sync" --only "$s" >>"$results"
            else
                "$walguard_bin" "${common[@]}" "${level[@]+"${level[@]}"}" --synchronous "$sync" --only "$s" >>"$results"
            fi
        done
    done
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)"

if [[ -n "${BENCH_JSON_OUT:-}" ]]; then
    cp "$results" "$BENCH_JSON_OUT"
fi

echo "## walguard benchmark"
echo
echo "Machine: $machine."
echo "Load average (1/5/15 min): $load_before before, $load_after after."
echo "Run on $(date -u '+%Y-%m-%d %H:%M UTC'): $runs rounds of ${systems[*]}; synchronous ${syncs[*]}; --writes $writes${lone_writes:+ --lone-writes $lone_writes}${lone_only:+ --lone-only $lone_only}."
echo
python3 bench/table.py "$results"
