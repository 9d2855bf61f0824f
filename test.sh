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

# fauxqs: the SQS/SNS emulator of the AWS target tests, a Node package
# pinned in testbed/package-lock.json. Installed again when the lock file
# changed since the last install.
need_fauxqs() {
	command -v node >/dev/null 2>&1 || apt_install nodejs
	command -v npm >/dev/null 2>&1 || apt_install npm
	local major
	major=$(node -p 'process.versions.node.split(".")[0]')
	if [ "$major" -lt 20 ]; then
		echo "test.sh: fauxqs needs Node 20 or later; node is $(node --version)" >&2
		exit 1
	fi
	if [ ! -x testbed/node_modules/.bin/fauxqs ] ||
		[ testbed/package-lock.json -nt testbed/node_modules/.package-lock.json ]; then
		npm ci --prefix testbed --no-audit --no-fund
	fi
}

need_kcat
need_cc
need_fauxqs
export CGO_ENABLED=1

echo "+ go vet ./..."
go vet ./...
echo "+ go test -race ./... -count=1 -timeout 20m"
go test -race ./... -count=1 -timeout 20m
