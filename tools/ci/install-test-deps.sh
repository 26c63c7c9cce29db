#!/usr/bin/env bash
# Installs what `make test` needs on a fresh Debian machine, and nothing when it is
# already there: Debian's chromium (the dashboard is checked in a real headless
# browser). Go modules come through the module proxy at build time. Needs root for
# apt-get; without root it says what is missing and the tests that need it skip.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
if [ ${#need[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-test-deps: not root; missing Debian packages: ${need[*]} (tests that need them will skip)" >&2
	exit 0
fi
echo "install-test-deps: apt-get install ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
for attempt in 1 2 3; do
	if apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
		exit 0
	fi
	echo "install-test-deps: apt-get failed (attempt $attempt), retrying" >&2
	sleep 5
done
echo "install-test-deps: could not install ${need[*]}" >&2
exit 1
