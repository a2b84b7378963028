#!/bin/sh
# deploy/build-deb.sh - build the Debian package with debhelper
# (dpkg-buildpackage -b -us -uc) in a clean copy of the source tree.
#
#   sh deploy/build-deb.sh OUTDIR
#
# Leaves OUTDIR/referrald_<version>_<arch>.deb (and .buildinfo, .changes).
# Owns: OUTDIR. Must never: build in the working tree itself (dpkg-buildpackage
# writes beside the source and debian/ gains build state), or sign anything.
set -eu
cd "$(dirname "$0")/.."
OUT=${1:?usage: build-deb.sh OUTDIR}
case $OUT in /*) ;; *) OUT=$(pwd)/$OUT ;; esac
VERSION=$(dpkg-parsechangelog -l debian/changelog -S Version)
SRC=$OUT/referrald-$VERSION

rm -rf "$OUT"
mkdir -p "$SRC"
# The tree as it is (committed or not), without build outputs and local state.
tar -cf - --exclude=./build --exclude='./build-*' --exclude=./var --exclude=./.git \
	--exclude=./node_modules --exclude=./tests/fuzz/crashes . | tar -C "$SRC" -xf -
(cd "$SRC" && dpkg-buildpackage -b -us -uc >"$OUT/build.log" 2>&1) || {
	tail -n 40 "$OUT/build.log" >&2
	echo "build-deb: dpkg-buildpackage failed (full log: $OUT/build.log)" >&2
	exit 1
}
rm -rf "$SRC"
ls "$OUT"/referrald_"$VERSION"_*.deb
