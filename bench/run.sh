#!/usr/bin/env bash
# Runs walguard's benchmark and its peers on the same workload and prints one
# markdown table. See bench/README.md.
#
# Usage: bench/run.sh [--writes N] [--runs N] [--synchronous normal|full|both] [--only SYSTEM]
#
# Every flag is passed to both sides. `--only` picks a side: a system whose
# name starts with `walguard` runs only the walguard example, any other only
# the peers binary. Set BENCH_JSON_OUT=FILE to keep the merged JSON lines.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

usage() {
    sed -n '5,9p' "$root/bench/run.sh" | sed 's/^# \{0,1\}//'
}

args=()
only=""
while (($#)); do
    case "$1" in
        -h | --help)
            usage
            exit 0
            ;;
        --only)
            if (($# < 2)); then
                echo "run.sh: --only needs a value" >&2
                exit 2
            fi
            only="$2"
            shift 2
            ;;
        --only=*)
            only="${1#--only=}"
            shift
            ;;
        *)
            args+=("$1")
            shift
            ;;
    esac
done

run_peers=1
run_walguard=1
peer_args=("${args[@]+"${args[@]}"}")
walguard_args=("${args[@]+"${args[@]}"}")
if [[ -n "$only" ]]; then
    if [[ "$only" == walguard* ]]; then
        run_peers=0
        walguard_args+=(--only "$only")
    else
        run_walguard=0
        peer_args+=(--only "$only")
    fi
fi

results="$(mktemp)"
trap 'rm -f "$results"' EXIT

cpu_model="$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)"
machine="$(nproc) CPUs, ${cpu_model:-unknown CPU}, Linux $(uname -r)"
load_before="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)"

if ((run_peers)); then
    echo "run.sh: building and running the peers (bench/peers)" >&2
    # Its own target dir, whatever CARGO_TARGET_DIR says: it must not share
    # build artefacts with the workspace (both link a different `sqlite3`).
    CARGO_TARGET_DIR="$root/bench/peers/target" \
        cargo run --release --manifest-path bench/peers/Cargo.toml -- \
        "${peer_args[@]+"${peer_args[@]}"}" >>"$results"
fi

walguard_failed=0
if ((run_walguard)); then
    if [[ -f actors/examples/bench_walguard.rs || -f actors/examples/bench_walguard/main.rs ]] ||
        grep -Eq '^[[:space:]]*name[[:space:]]*=[[:space:]]*"bench_walguard"' actors/Cargo.toml; then
        echo "run.sh: building and running the walguard side (bench_walguard example)" >&2
        if ! cargo run --release -p walguard-actors --example bench_walguard -- \
            "${walguard_args[@]+"${walguard_args[@]}"}" >>"$results"; then
            echo "run.sh: the bench_walguard example failed; the table below shows the peers only" >&2
            walguard_failed=1
        fi
    else
        echo "run.sh: note: actors/examples/bench_walguard does not exist yet; walguard side skipped" >&2
    fi
fi

load_after="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)"

if [[ -n "${BENCH_JSON_OUT:-}" ]]; then
    cp "$results" "$BENCH_JSON_OUT"
fi

echo "## walguard benchmark"
echo
echo "Machine: $machine."
echo "Load average (1/5/15 min): $load_before before, $load_after after."
echo "Run on $(date -u '+%Y-%m-%d %H:%M UTC'); args: ${args[*]:-(defaults)}${only:+ --only $only}."
echo
python3 bench/table.py "$results"

if ((walguard_failed)); then
    exit 1
fi
