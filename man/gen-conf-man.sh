#!/bin/sh
# man/gen-conf-man.sh - write referrald.conf(5) from the daemon's own key
# table (`referrald --config-reference`, the same source as README's
# reference), so the manual can never disagree with the binary.
#
#   sh man/gen-conf-man.sh BUILD/referrald VERSION >referrald.conf.5
#
# Owns: the page's fixed text and the Markdown-table-to-roff conversion.
# Must never: hand-edit a key's description (change it in daemon/config.c).
set -eu
BIN=${1:?usage: gen-conf-man.sh REFERRALD VERSION}
VERSION=${2:?usage: gen-conf-man.sh REFERRALD VERSION}
TABLE=$("$BIN" --config-reference)

cat <<EOF
.TH REFERRALD.CONF 5 "" "referrald $VERSION" "File Formats"
.SH NAME
referrald.conf \\- configuration file of referrald
.SH SYNOPSIS
.I /etc/referrald/referrald.conf
.SH DESCRIPTION
One INI\\-style file:
.B key = value
lines grouped under
.B [section]
headers, and whole\\-line comments starting with
.B #
or
.BR ; .
A value in double quotes keeps its spaces and allows \\e" and \\e\\e inside.
Unknown sections or keys, duplicate keys, bad values, missing required keys and
unreadable files are refused at start with the file, the line and the reason;
.B referrald \\-c FILE \\-\\-check\\-config
checks a file without starting.
.PP
Sizes are bytes with an optional k, m or g (64k, 1m); durations a number with
a unit: ms, s, m, h or d (500ms, 10s, 5m, 1h, 7d).
Keys marked "reloadable" take effect on SIGHUP; the others need a restart, and
a reload that changes one is refused while the daemon runs on unchanged.
.PP
The key files named in
.B [security]
are created by
.BR "referrald \\-\\-init\\-keys" ;
they must be mode 0600 and owned by the user the daemon runs as.
.SH KEYS
.ad l
EOF

# | `[sec] key` | type | default | required | SIGHUP | description |
printf '%s\n' "$TABLE" | awk -F' [|] ' '
	function roff(s) {
		gsub(/\\[|]/, "|", s)         # Markdown-escaped bar in enum lists
		gsub(/\\/, "\\e", s)
		gsub(/-/, "\\-", s)
		gsub(/`/, "", s)
		if (s ~ /^[.'"'"']/) s = "\\&" s
		return s
	}
	NR <= 2 { next }
	{
		key = $1; sub(/^[|] `\[/, "", key); sub(/`$/, "", key)
		sec = key; sub(/\].*/, "", sec); name = key; sub(/^[^]]*\] /, "", name)
		desc = $6; sub(/ [|]$/, "", desc)
		if (sec != cur) { print ".SS [" sec "]"; cur = sec }
		print ".TP"
		print ".B " roff(name)
		line = roff($2)
		# \: lets a long cipher list break after each colon.
		if ($3 != "(none)") { d = roff($3); gsub(/:/, ":\\:", d); line = line "; default " d }
		if ($4 == "yes") line = line "; required"
		line = line ($5 == "yes" ? "; reloadable" : "; restart needed")
		print line "."
		print ".br"
		print roff(desc)
	}'

cat <<'EOF'
.SH FILES
.TP
.I /etc/referrald/referrald.conf
this file (a conffile of the package)
.TP
.I /etc/referrald/keys/
the key files, owned by the referrald user, mode 0700
.SH SEE ALSO
.BR referrald (8),
.BR referralctl (1)
EOF
