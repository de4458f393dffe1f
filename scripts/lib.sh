# Helpers the bench and test scripts share. Sourced, not run:
# `source "$HERE/scripts/lib.sh"`.

# Prints, one to a line, the Debian packages of the commands that are missing. Each
# argument is a command, or COMMAND:PACKAGE when the package has another name
# (`/usr/sbin/in.tftpd:tftpd-hpa`).
missing_packages() {
    local spec
    for spec in "$@"; do
        command -v "${spec%%:*}" >/dev/null 2>&1 || echo "${spec#*:}"
    done
}

# Installs what is missing of the commands given (as for `missing_packages`) with one
# apt-get run.
need_tools() {
    local missing
    mapfile -t missing < <(missing_packages "$@")
    ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
}

# Installs Debian packages (with sudo when not root).
apt_install() {
    local sudo=""
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    echo "installing $* with apt-get" >&2
    $sudo apt-get update -qq >/dev/null
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Builds one of labserv's binaries (release) and prints its path; HERE is the checkout.
release_bin() {
    echo "building $1 (release)" >&2
    (cd "$HERE" && cargo build --release --quiet --bin "$1")
    echo "$HERE/target/release/$1"
}

# A port on 127.0.0.1 that is free now: TCP, or UDP with `free_port udp`.
free_port() {
    python3 -c 'import socket, sys
kind = socket.SOCK_DGRAM if sys.argv[1:] == ["udp"] else socket.SOCK_STREAM
s = socket.socket(socket.AF_INET, kind)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' "$@"
}

# Waits until URL answers with no error status (below 400; curl's further options after
# it), for up to WAIT_TENTHS tenths of a second (100); an error when it never does.
wait_url() {
    local url=$1 i
    shift
    for ((i = 0; i < ${WAIT_TENTHS:-100}; i++)); do
        curl -sf -o /dev/null "$@" "$url" && return 0
        sleep 0.1
    done
    echo "nothing answered at $url" >&2
    return 1
}

# The median of the numbers on stdin (any number to a line), with DIGITS decimals when
# given; "-" when there are none.
median() {
    tr -s ' \t' '\n\n' | awk NF | sort -g | awk -v d="${1:-}" '{a[NR] = $1} END {
        if (!NR) { print "-"; exit }
        m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
        if (d == "") print m; else printf "%.*f\n", d, m
    }'
}

# A over B as "1.23x"; "-" when either has no figure.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "" || a == "-" || b == "" || b == "-" || b + 0 <= 0) print "-"; else printf "%.2fx\n", a / b
    }'
}

# The servers in round R's order: each goes first in turn (SERVERS rotated by R), and
# every other round the order runs backwards. With rotation alone each server ran right
# after the same one in every round (in bench/http serv after python, whose keep-alive
# run ends in timeouts), so whatever one run leaves behind fell on the same server each
# time; now a server follows one neighbour in odd rounds and the other in even ones.
order() {
    local r=$1 n=${#SERVERS[@]} i
    for ((i = 0; i < n; i++)); do
        if ((r % 2)); then
            echo "${SERVERS[$(((r + i) % n))]}"
        else
            echo "${SERVERS[$(((r % n - i + n) % n))]}"
        fi
    done
}
