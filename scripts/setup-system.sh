#!/usr/bin/env bash
# Installs the Debian packages recflow builds against, only when missing: OpenBLAS (linked by
# ndarray-linalg's `openblas-system`), pkg-config and OpenSSL headers (for HTTPS), and the DejaVu
# font the plots are drawn with.
set -euo pipefail
need=()
for pkg in libopenblas-dev pkg-config libssl-dev fonts-dejavu-core; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "installing Debian packages: ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
