#!/usr/bin/env bash
# Contract checks: buf lint, generated code up to date, no breaking change against the
# previous commit of main. Run through npm so node_modules/.bin (buf, protoc-gen-es) is on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

buf lint

# Regenerate and fail if anything under libs/gen differs from what is committed.
buf generate
if [ -n "$(git status --porcelain -- libs/gen)" ]; then
  echo "generated code is stale: run 'npm run generate' and commit libs/gen" >&2
  git status --porcelain -- libs/gen >&2
  exit 1
fi

# buf breaking needs a previous commit that has protos; the first commit has nothing to compare.
if git rev-parse --verify -q HEAD~1 >/dev/null && git cat-file -e HEAD~1:proto 2>/dev/null; then
  buf breaking --against '.git#ref=HEAD~1'
  echo "buf breaking: no breaking change against HEAD~1"
else
  echo "buf breaking: skipped, HEAD~1 has no proto/ to compare against"
fi
