# archive.sh is sourced by the scripts that reach Debian's archive. It
# defines archive_uri, which prints the archive URI this machine already
# uses (so no host name lives in this repository), or fails.

archive_uri() {
	local uri
	uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	if [ -z "$uri" ]; then
		uri=$(awk '$1 == "deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
	fi
	[ -n "$uri" ] || {
		printf 'error: cannot find the Debian archive URI in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list\n' >&2
		return 1
	}
	echo "$uri"
}
