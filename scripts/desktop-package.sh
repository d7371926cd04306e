#!/usr/bin/env bash
# Packages the desktop app for Linux as Fyne expects (`fyne package`):
# build/qcdvpn-desktop-linux.tar.xz with the binary, the .desktop entry and
# the icon, from desktop/cmd/qcdvpn-desktop/FyneApp.toml. The fyne tool
# (fyne.io/tools) builds with its own module, so it is run at its pinned
# version rather than added to go.mod (it wants a newer Fyne than ours).
set -euo pipefail
FYNE_TOOLS=${FYNE_TOOLS:-fyne.io/tools/cmd/fyne@v1.7.4}
root=$(cd "$(dirname "$0")/.." && pwd)
src=$root/desktop/cmd/qcdvpn-desktop
mkdir -p "$root/build"
# fyne package bumps Build in FyneApp.toml; keep the committed file as it is.
cp "$src/FyneApp.toml" "$root/build/.FyneApp.toml.orig"
trap 'cp "$root/build/.FyneApp.toml.orig" "$src/FyneApp.toml"; rm -f "$root/build/.FyneApp.toml.orig" "$src/qcdvpn-desktop" "$src/qcdvpn.tar.xz"' EXIT
(cd "$src" && go run "$FYNE_TOOLS" package -os linux --release)
mv "$src/qcdvpn.tar.xz" "$root/build/qcdvpn-desktop-linux.tar.xz"
tar -tJf "$root/build/qcdvpn-desktop-linux.tar.xz" | grep -q 'usr/local/bin/qcdvpn-desktop$'
echo "desktop-package: build/qcdvpn-desktop-linux.tar.xz"
