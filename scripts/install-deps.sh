#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, when they are missing.
# Runs as root on CI; elsewhere it only reports what is missing.
set -euo pipefail
# libstrongswan-standard-plugins holds the openssl plugin (x25519, ChaCha20-Poly1305, ECP)
# that internal/testbed.DefaultPlugins loads; --no-install-recommends would leave it out.
# The desktop app (Fyne's GLFW driver, cgo) needs the GL and X11 headers
# (Fyne's list for Debian is gcc libgl1-mesa-dev xorg-dev libxkbcommon-dev;
# these are the parts of xorg-dev GLFW uses); its Xvfb test needs Xvfb,
# a session bus for the tray, xwininfo and ImageMagick's import.
# wireguard-tools is `wg`, which configures wireguard-go in make bench.
desktop=(libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev libxinerama-dev libxi-dev libxxf86vm-dev libxkbcommon-dev pkg-config xvfb xauth x11-utils imagemagick dbus-daemon)
pkgs=("${desktop[@]}" wireguard-tools strongswan-charon libstrongswan-standard-plugins libcharon-extra-plugins libcharon-extauth-plugins strongswan-swanctl iperf3 iproute2 nftables iputils-ping tcpdump openjdk-17-jdk-headless gcc libc6-dev)
missing=()
for p in "${pkgs[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: not root; missing packages (interop tests will skip): ${missing[*]}" >&2
	exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
