#!/usr/bin/env bash
# Runs every Go fuzz target of the product module for FUZZTIME each (default 2000x:
# iterations; a duration such as 60s also works).
# `go test -fuzz` takes one target of one package per run, so the targets are found by
# name and run one after another. A crash leaves its input under testdata/fuzz/ and
# fails the run.
set -euo pipefail
cd "$(dirname "$0")/../.."
fuzztime=${FUZZTIME:-2000x}
found=0
while IFS= read -r file; do
	dir=$(dirname "$file")
	for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]+)\(' "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/'); do
		found=$((found + 1))
		echo "fuzz ./$dir $target for $fuzztime"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "./$dir"
	done
done < <(git ls-files '*_test.go' | grep -v '^tools/compat/' | xargs grep -l '^func Fuzz' || true)
echo "fuzz: $found targets, $fuzztime each"
