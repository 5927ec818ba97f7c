#!/usr/bin/env bash
# Benchmarks jobs side by side with peer job queues on the local PostgreSQL
# and writes BENCHMARKS.md at the repository's root. Options go to the
# driver: --rounds, --jobs, --workers, --retained, --samples, --systems,
# --scenarios, --server, --output (see --help). README.md beside this file.
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --locked --quiet
exec ./target/release/peers-driver "$@"
