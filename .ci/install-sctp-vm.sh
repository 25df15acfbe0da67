#!/bin/sh
# Installs what internal/testenv/sctpvm needs to run the SCTP tests in a qemu
# guest on a host whose kernel has no SCTP:
# qemu, Debian's cloud kernel (SCTP as a module) and a static busybox.
# Idempotent: does nothing when all three are there. Needs root and Debian.
set -eu

need=""
command -v qemu-system-x86_64 >/dev/null 2>&1 || need="$need qemu-system-x86"
ls /boot/vmlinuz-*-cloud-amd64 >/dev/null 2>&1 || need="$need linux-image-cloud-amd64"
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "ok installed" || need="$need busybox-static"

if [ -z "$need" ]; then
	echo "install-sctp-vm: qemu, cloud kernel and busybox-static already installed"
	exit 0
fi

echo "install-sctp-vm: installing$need"
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086 # $need is a list of package names
apt-get install -y --no-install-recommends $need
