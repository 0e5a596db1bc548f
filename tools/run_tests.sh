#!/usr/bin/env bash
# `make test`: the whole suite as two pytest runs at once, one exit code.
#
#   tools/run_tests.sh [PYTHON] [PROCESSES]     # default: .venv/bin/python, 2
#
# Why two runs: Ray's test files (RAY_TESTS) must not share a process with tests that fork
# worker processes afterwards (tests/conftest.py says why), so in a single run they went last,
# on one pytest worker, while the other worker sat idle: about a third of CI's time. Here they
# start at once in a pytest process of their own, while PROCESSES workers (pytest-xdist, one
# test file each at a time) run everything else. Ray's tests mostly wait on Ray's own processes,
# so the two runs share the cores well: CI took 10 min 13 s at 9114c49, Ray's part 3.6 min
# (benchmarks/RESULTS.md). Ray's output is printed after the rest's, whole.
# Each run prints its slowest tests (--durations), to keep an eye on CI's time.
set -uo pipefail
PY=${1:-.venv/bin/python}
PROCESSES=${2:-2}
RAY_TESTS=(tests/test_ray_engine.py tests/test_ray_cluster.py)

ray_log=$(mktemp)
trap 'rm -f "$ray_log"' EXIT
"$PY" -m pytest -q --durations=10 "${RAY_TESTS[@]}" >"$ray_log" 2>&1 &
ray_pid=$!

ignore=()
for file in "${RAY_TESTS[@]}"; do ignore+=(--ignore "$file"); done
# --no-loadscope-reorder: files in tests/conftest.py's order, the longest first.
"$PY" -m pytest -q --durations=25 -n "$PROCESSES" --dist loadfile --no-loadscope-reorder "${ignore[@]}"
rest=$?

wait "$ray_pid"
ray=$?
echo
echo "===== Ray's tests (${RAY_TESTS[*]}), run alongside: exit $ray ====="
cat "$ray_log"

# pytest's exit 5 means no test ran: a failure here, like any other non-zero exit.
if [ "$rest" -ne 0 ] || [ "$ray" -ne 0 ]; then
  echo "make test: FAILED (the rest: exit $rest; Ray's tests: exit $ray)" >&2
  exit 1
fi
echo "make test: passed (both runs)"
