#!/usr/bin/env bash
# Makes sure the programs the tests drive are installed: redis-server (every
# service's store) and chromium (the page tests). `make test` and .ci/run call
# it first. A missing program is installed through apt when this user can
# (root, or passwordless sudo); otherwise the script stops at once with the
# one command to run, instead of letting dozens of tests fail one by one.
set -euo pipefail

declare -A package_of=([redis-server]=redis-server [chromium]=chromium)

missing=()
for prog in redis-server chromium; do
	command -v "$prog" >/dev/null 2>&1 || missing+=("${package_of[$prog]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if command -v apt-get >/dev/null 2>&1; then
	if [ "$(id -u)" -eq 0 ]; then
		as_root=()
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		as_root=(sudo -n)
	else
		echo "The tests need: ${missing[*]}. Install with:" >&2
		echo "  sudo apt-get install -y ${missing[*]}" >&2
		exit 1
	fi
	echo "--- installing ${missing[*]} (the tests need them)"
	"${as_root[@]}" apt-get update -qq
	"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	exit 0
fi

echo "The tests need: ${missing[*]} (the programs redis-server and chromium in PATH)." >&2
echo "Install them with your package manager, e.g. on macOS: brew install redis chromium" >&2
exit 1
