#!/usr/bin/env bash
# `idata train` stopped by SIGINT and SIGTERM at three points of tokenizing, at the size issue 21
# asks for: a 100,000-row build with the real 151k-token Qwen vocabulary (tests/test_train_signals.py;
# CI runs the same test on 30,000 rows). Each run must end within 5 s, exit 130/143 with one line,
# and leave no process and no half-written cache entry. About 10 minutes on 2 busy cores.
#   bash benchmarks/fault_train_signals.sh            # 100,000 rows
#   ROWS=500000 bash benchmarks/fault_train_signals.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export TRAIN_SIGNAL_ROWS="${ROWS:-100000}" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
exec .venv/bin/python -m pytest tests/test_train_signals.py -q -p no:cacheprovider -k "tokenizing or killed" "$@"
