#!/bin/sh
# install-deps.sh - install the Debian 12 packages referrald needs to build,
# test, benchmark and demo, and nothing else.
#
# Owns: the package list. Fast no-op when everything is installed.
# Must never: install anything when not root other than through sudo (without
# sudo it prints the command instead),
# or touch configuration outside the package manager.
set -eu

# Build: compiler, pkg-config and the four libraries the Makefile links.
# Test: cmocka (unit), PostgreSQL 15 server (integration starts private
# clusters), bats/jq/curl/openssl (clients), yq (reads the spec's enums,
# sql_value_sets.bats), GNU parallel (bats runs two files at once with it),
# iproute2/procps (ports, pids).
# Web pages' tests: Debian's Chromium (driven by playwright-core from npm,
# which never downloads a browser of its own) and a font with Cyrillic for
# its screenshots; zlib (a unit test inflates the embedded gzip pages).
# Bench: wrk and nginx-light (the reference server). Fuzz: clang and its
# libFuzzer/sanitizer runtimes (clang only recommends them, and recommends are
# not installed). referralctl: libcurl. Packaging: debhelper (dpkg-buildpackage)
# and lintian. Failover test: haproxy in front of two daemons.
PKGS="build-essential pkg-config
libevent-dev libssl-dev libpq-dev libjansson-dev libcmocka-dev libcurl4-openssl-dev
debhelper lintian haproxy
postgresql-15 postgresql-client-15 postgresql-contrib
bats parallel jq yq curl openssl ca-certificates
iproute2 procps
wrk nginx-light
clang libclang-rt-14-dev
chromium fonts-dejavu-core zlib1g-dev"

# The spec lint runs through npx and the browser tests through node and npm;
# node only when npx is not already there
# (a machine may have its own node outside the package manager).
if ! command -v npx >/dev/null 2>&1; then
	PKGS="$PKGS nodejs npm"
fi

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	exit 0
fi

SUDO=
if [ "$(id -u)" -ne 0 ]; then
	# An ordinary user: the package step goes through sudo when there is one
	# (it asks for a password if its policy wants one); nothing else needs root.
	if command -v sudo >/dev/null 2>&1; then
		echo "install-deps: missing Debian packages:$missing (installing with sudo)" >&2
		SUDO=sudo
	else
		echo "install-deps: missing Debian packages:$missing" >&2
		echo "install-deps: run as root:" >&2
		echo "  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends$missing" >&2
		exit 1
	fi
fi

echo "install-deps: installing:$missing" >&2
# shellcheck disable=SC2086 # the lists are meant to split into words
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update </dev/null
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing </dev/null
