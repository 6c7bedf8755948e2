#!/bin/sh
# The mutation check of docs/reliability.md: plants known bugs in a scratch
# copy of HEAD and prints which tests catch each one. On demand, not in CI
# (minutes; the first run builds a scratch copy). See scripts/mutants.py for the options.
exec python3 "$(dirname "$0")/mutants.py" "$@"
