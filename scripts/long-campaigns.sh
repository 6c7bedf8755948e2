#!/bin/sh
# The long on-demand campaigns of docs/reliability.md ("The last long run").
# Runs them and prints their figures as the doc's Markdown tables, headed by
# the commit, the exact command, the dates and the machine, ready to paste.
#
#   scripts/long-campaigns.sh                   # 10,000 power cuts, 2,000 kills, release
#   WALGUARD_CAMPAIGN_ITERATIONS=200 WALGUARD_CAMPAIGN_KILLS=50 \
#     scripts/long-campaigns.sh --debug         # a short check, debug build
#
# WALGUARD_CAMPAIGN_SEED sets the first seed. Exits non-zero if a campaign
# found a violation (the tables are printed all the same).
set -eu
cd "$(git rev-parse --show-toplevel)"
profile=--release
build="release build"
if [ "${1:-}" = "--debug" ]; then
    profile=""
    build="debug build"
fi
iterations=${WALGUARD_CAMPAIGN_ITERATIONS:-10000}
kills=${WALGUARD_CAMPAIGN_KILLS:-2000}
commit=$(git rev-parse --short HEAD)
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
    commit="$commit plus uncommitted changes (commit first: a figure names its commit)"
fi
command="WALGUARD_CAMPAIGN_ITERATIONS=$iterations WALGUARD_CAMPAIGN_KILLS=$kills cargo test $profile -p walguard-actors --test crash_lab -- --ignored on_demand --nocapture --test-threads=1"
log=$(mktemp)
out=$(mktemp)
trap 'rm -f "$log" "$out"' EXIT
cargo test $profile -p walguard-actors --test crash_lab --no-run >/dev/null 2>&1 || true
started=$(date -u '+%Y-%m-%d %H:%M:%S')
status=0
env WALGUARD_CAMPAIGN_ITERATIONS="$iterations" WALGUARD_CAMPAIGN_KILLS="$kills" \
    cargo test $profile -p walguard-actors --test crash_lab -- \
    --ignored on_demand --nocapture --test-threads=1 >"$out" 2>"$log" || status=$?
ended=$(date -u '+%Y-%m-%d %H:%M:%S')
cpu=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || echo unknown)
echo "Commit \`$commit\`, $build, $(nproc) cores ($cpu), from $started to $ended UTC:"
echo
echo '```sh'
echo "$command"
echo '```'
grep -E '^(####|\|)' "$out" | sed 's/^\(####.*\)$/\n\1\n/' || true
echo
grep -E '^[0-9]+ (power cuts|kills) ' "$log" || true
if [ "$status" -ne 0 ]; then
    echo "long-campaigns: the campaigns failed (exit $status); the failures:" >&2
    grep -E 'WALGUARD_CAMPAIGN_SEED=|panicked' "$log" | head -20 >&2
fi
exit "$status"
