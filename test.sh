#!/usr/bin/env bash
# The project's test command: installs what the tests need when it is
# missing, then runs go vet and every test. On a fresh Debian machine it
# needs root (or sudo), Go, and the package registries.
set -euo pipefail
cd "$(dirname "$0")"

# as_root runs a command as root, through sudo when not root already.
as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	else
		sudo "$@"
	fi
}

apt_updated=false
# apt_install installs Debian packages, updating the index once per run.
apt_install() {
	if ! $apt_updated; then
		as_root apt-get update
		apt_updated=true
	fi
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
}

# kcat: a Kafka client that none of us wrote, for the end-to-end tests.
need_kcat() {
	command -v kcat >/dev/null 2>&1 || apt_install kcat
}

# A C compiler: the race detector (go test -race) needs cgo.
need_cc() {
	command -v gcc >/dev/null 2>&1 || apt_install gcc libc6-dev
}

need_kcat
need_cc
export CGO_ENABLED=1

echo "+ go vet ./..."
go vet ./...
echo "+ go test -race ./... -count=1 -timeout 20m"
go test -race ./... -count=1 -timeout 20m
