#!/usr/bin/env bats
# package.bats - the Debian package (issue 13, part 1): built by debhelper from
# a copy of this tree, clean under lintian, holding exactly what an operator
# needs where Debian puts it.
load ../lib/common

setup_file() {
	export DEB_OUT DEB
	REFD_TMP=$(mktemp -d "${TMPDIR:-/tmp}/refd-test.XXXXXX")
	export REFD_TMP
	DEB_OUT=$REFD_TMP/deb
	sh "$REFD_ROOT/deploy/build-deb.sh" "$DEB_OUT" >"$REFD_TMP/build-deb.out" 2>&1 || {
		cat "$REFD_TMP/build-deb.out" >&2
		return 1
	}
	DEB=$(ls "$DEB_OUT"/referrald_*_"$(dpkg --print-architecture)".deb)
	dpkg-deb -c "$DEB" | awk '{ print $1, $2, $6 }' | sed 's| \./| /|; s|/$||' >"$REFD_TMP/list"
	mkdir "$REFD_TMP/root" "$REFD_TMP/control"
	dpkg-deb -x "$DEB" "$REFD_TMP/root"
	dpkg-deb -e "$DEB" "$REFD_TMP/control"
}

teardown_file() { refd_teardown_file; }

@test "make deb's name is referrald_<version>_<arch>.deb, the version the binary reports" {
	local v
	v=$("$REFD_TMP/root/usr/sbin/referrald" --version | awk '{ print $2 }')
	[ -n "$v" ]
	[ "$(basename "$DEB")" = "referrald_${v}_$(dpkg --print-architecture).deb" ]
	"$REFD_TMP/root/usr/bin/referralctl" --version | grep -qx "referralctl $v"
}

@test "lintian: no error and no warning, on the package and on its .changes" {
	run lintian "$DEB" "$DEB_OUT"/referrald_*.changes
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(grep -c '^[EW]: ' <<<"$output")" -eq 0 ]
	# No override silences anything.
	[ ! -e "$REFD_ROOT/debian/referrald.lintian-overrides" ]
	[ ! -e "$REFD_ROOT/debian/source/lintian-overrides" ]
}

@test "the package holds the daemon, the CLI, the unit, the config, the man pages and the directories" {
	local f
	for f in /usr/sbin/referrald /usr/bin/referralctl /etc/referrald/referrald.conf \
		/etc/referrald/referralctl.conf /usr/lib/systemd/system/referrald.service \
		/usr/share/man/man8/referrald.8.gz /usr/share/man/man5/referrald.conf.5.gz \
		/usr/share/man/man1/referralctl.1.gz /usr/share/doc/referrald/copyright; do
		grep -q " $f\$" "$REFD_TMP/list" || { echo "missing $f" >&2; return 1; }
	done
	# The directories ship empty with dpkg's usual modes; postinst gives them
	# to the referrald user with 0700 and 0750 (next test: lintian would
	# rightly warn about non-standard modes in the archive).
	grep -qx 'drwxr-xr-x root/root /etc/referrald/keys' "$REFD_TMP/list"
	grep -qx 'drwxr-xr-x root/root /var/lib/referrald' "$REFD_TMP/list"
	grep -qx -- '-rwxr-xr-x root/root /usr/sbin/referrald' "$REFD_TMP/list"
	# Nothing under /lib (the unit moved to /usr/lib), no key file shipped.
	! grep -q ' /lib/' "$REFD_TMP/list"
	! grep -q ' /etc/referrald/keys/.' "$REFD_TMP/list"
	# Both configuration files are conffiles.
	grep -qx /etc/referrald/referrald.conf "$REFD_TMP/control/conffiles"
	grep -qx /etc/referrald/referralctl.conf "$REFD_TMP/control/conffiles"
}

@test "the migrations are inside the binary: it needs no SQL file" {
	! grep -q '\.sql$' "$REFD_TMP/list"
	grep -aq 'CREATE TABLE' "$REFD_TMP/root/usr/sbin/referrald"
}

@test "the shipped configuration is commented, names keys under /etc/referrald/keys and holds no secret" {
	local c=$REFD_TMP/root/etc/referrald/referrald.conf
	[ "$(grep -c '^#' "$c")" -gt 40 ]
	grep -qx 'uic_key_file = /etc/referrald/keys/uic.key' "$c"
	grep -qx 'user = referrald' "$c"
	! grep -Eiq 'password *=|[0-9a-f]{32}|BEGIN .*PRIVATE' "$c"
	! grep -Eiq '^[^#]*token *=' "$REFD_TMP/root/etc/referrald/referralctl.conf"
}

@test "postinst creates the system user the Debian way and gives it the key and state directories" {
	local p=$REFD_TMP/control/postinst
	grep -q 'adduser --system --quiet --ingroup referrald' "$p"
	grep -q 'addgroup --system --quiet referrald' "$p"
	grep -q 'chown referrald:referrald /etc/referrald/keys' "$p"
	grep -q 'chmod 0700 /etc/referrald/keys' "$p"
	grep -q 'chmod 0750 /var/lib/referrald' "$p"
	# debhelper's snippets: enable the unit, restart after upgrade.
	grep -q 'deb-systemd-helper' "$p"
	sh -n "$p"
	sh -n "$REFD_TMP/control/postrm"
}

@test "the unit is Type=notify, hardened, and systemd-analyze scores it OK or better" {
	local u=$REFD_TMP/root/usr/lib/systemd/system/referrald.service score
	grep -qx 'Type=notify' "$u"
	grep -qx 'ExecStart=/usr/sbin/referrald -c /etc/referrald/referrald.conf' "$u"
	grep -qx 'CapabilityBoundingSet=' "$u"
	grep -qx 'SystemCallFilter=@system-service' "$u"
	grep -qx 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' "$u"
	for k in ProtectSystem=strict ProtectHome=yes PrivateTmp=yes PrivateDevices=yes \
		NoNewPrivileges=yes MemoryDenyWriteExecute=yes LockPersonality=yes; do
		grep -qx "$k" "$u" || { echo "unit lacks $k" >&2; return 1; }
	done
	run systemd-analyze security --offline=yes "$u"
	echo "$output" | tail -n 1
	score=$(sed -n 's/.*Overall exposure level for referrald.service: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p' <<<"$output")
	echo "# systemd-analyze security: $score" >&3
	case ${score#* } in OK | SAFE | PERFECT) ;; *) return 1 ;; esac
}

@test "referrald.conf(5) documents every key of the daemon's table, and the pages format cleanly" {
	local m=$REFD_TMP/root/usr/share/man
	"$REFD_TMP/root/usr/sbin/referrald" --config-reference |
		sed -n 's/^| `\[\([a-z]*\)\] \([a-z_]*\)`.*/\1 \2/p' >"$REFD_TMP/keys"
	[ "$(wc -l <"$REFD_TMP/keys")" -gt 30 ]
	zcat "$m/man5/referrald.conf.5.gz" >"$REFD_TMP/conf.5"
	while read -r sec key; do
		awk -v s=".SS [$sec]" -v k=".B $(sed 's/_/_/g' <<<"$key")" '
			$0 == s { in_s = 1; next } /^\.SS / { in_s = 0 } in_s && $0 == k { f = 1 }
			END { exit !f }' "$REFD_TMP/conf.5" || { echo "conf.5 lacks [$sec] $key" >&2; return 1; }
	done <"$REFD_TMP/keys"
	for p in man8/referrald.8.gz man5/referrald.conf.5.gz man1/referralctl.1.gz; do
		run env LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$m/$p"
		[ "$status" -eq 0 ]
		[ -z "$(env LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$m/$p" 2>&1 >/dev/null)" ]
	done
	# The first-install steps, in order.
	zcat "$m/man8/referrald.8.gz" | awk '/^\.SH FIRST INSTALL/ { on = 1 } on' |
		grep -o 'CREATE ROLE\|init\\-keys\|\\-\\-migrate\|mint\\-admin\\-token\|systemctl enable' |
		uniq | tr '\n' ' ' | grep -qx 'CREATE ROLE init\\-keys \\-\\-migrate mint\\-admin\\-token systemctl enable '
}
