#!/usr/bin/env bash
# mkdeb.sh: builds the Debian package mqttflow_<VERSION>_<arch>.deb from this tree with
# Debian's own tools (`make deb` runs it after building):
#   make install into debian/mqttflow (PREFIX=/usr, SYSCONFDIR=/etc, the unit in
#   /lib/systemd/system), dpkg-shlibdeps for ${shlibs:Depends} (the Debian packages of the
#   libraries the binaries link: paho, libyaml, liburing, pcre2, jansson, libc; a library the
#   tree builds itself, under usr/lib/mqttflow, ships inside the package and is no
#   dependency), dpkg-gencontrol for DEBIAN/control, dpkg-deb --root-owner-group to pack.
#
# What the package does beyond its files (maintainer scripts below): postinst creates the
# system user `mqttflow` (home /var/lib/mqttflow) when it does not exist, and reloads systemd;
# the unit stays disabled (no config is installed: /etc/mqttflow/config.yaml is the
# operator's). prerm stops a running service. postrm purge removes /var/lib/mqttflow (spool
# and dead letters of the service), the unit's enablement links, and the user if this
# package created it. No debhelper: the scripts are short and the package has one binary
# package, so dpkg-dev's tools are all it needs.
#
#   BUILD=build OUT=build scripts/mkdeb.sh     -> $OUT/mqttflow_<version>_<arch>.deb (printed)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-$BUILD}
for tool in dpkg-deb dpkg-shlibdeps dpkg-gencontrol dpkg-architecture; do
    command -v "$tool" >/dev/null || {
        echo "mkdeb: $tool is missing (apt-get install dpkg-dev)" >&2
        exit 2
    }
done
version=$(cat VERSION)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
work=$BUILD/deb
pkg=$work/debian/mqttflow
rm -rf "$work"
mkdir -p "$work/debian" "$OUT"

make --no-print-directory -s install BUILD="$BUILD" DESTDIR="$(pwd)/$pkg" PREFIX=/usr \
    SYSCONFDIR=/etc SYSTEMDUNITDIR=/lib/systemd/system >/dev/null
# Debian ships stripped binaries (debug symbols go to -dbgsym packages, not made here)
strip --strip-unneeded "$pkg/usr/bin/mqttflow" "$pkg"/usr/libexec/mqttflow/*
gzip -9n "$pkg/usr/share/man/man1/mqttflow.1" "$pkg/usr/share/man/man5/mqttflow.yaml.5"

cat >"$work/debian/control" <<EOF
Source: mqttflow
Section: net
Priority: optional
Maintainer: mqttflow developers <mqttflow@localhost>
Build-Depends: libpaho-mqtt-dev, libyaml-dev, liburing-dev, libjansson-dev, libpcre2-dev, python3, pkg-config
Standards-Version: 4.6.2

Package: mqttflow
Architecture: any
Depends: \${shlibs:Depends}, passwd
Recommends: \${shlibs:Recommends}
Description: runs user logic on MQTT traffic as a crash-isolated pipeline
 mqttflow reads a YAML file of MQTT clients, callbacks (C shared objects), rules and
 processing chains and runs it as a multi-process pipeline over shared-memory rings
 (ingress, router, workers, relay) under a supervisor: a crashing callback takes down one
 worker, never the pipeline, and no acknowledged message is lost.
 .
 This package contains the mqttflow command, the stage binaries, the callback header with
 its pkg-config file, the systemd unit (disabled), the example configuration with its
 callbacks, the manual pages and the guides.
EOF
cat >"$work/debian/changelog" <<EOF
mqttflow ($version) unstable; urgency=medium

  * Built from the source tree by scripts/mkdeb.sh.

 -- mqttflow developers <mqttflow@localhost>  $(date -R -d @"${SOURCE_DATE_EPOCH:-$(date +%s)}")
EOF
gzip -9nc "$work/debian/changelog" >"$pkg/usr/share/doc/mqttflow/changelog.Debian.gz"

mkdir -p "$pkg/DEBIAN"
cat >"$pkg/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    if ! getent passwd mqttflow >/dev/null; then
        useradd --system --user-group --home-dir /var/lib/mqttflow --no-create-home \
            --shell /usr/sbin/nologin --comment "mqttflow service" mqttflow
        created=1
    fi
    if [ ! -d /var/lib/mqttflow ]; then
        install -d -m 0750 -o mqttflow -g mqttflow /var/lib/mqttflow
    fi
    # postrm removes the user on purge only when this package made it
    if [ "${created:-0}" = 1 ]; then
        touch /var/lib/mqttflow/.user-created-by-package
    fi
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
    fi
fi
exit 0
EOF
cat >"$pkg/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    systemctl stop mqttflow.service >/dev/null 2>&1 || true
fi
exit 0
EOF
cat >"$pkg/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
if [ "$1" = purge ]; then
    rm -f /etc/systemd/system/multi-user.target.wants/mqttflow.service
    rmdir --ignore-fail-on-non-empty /etc/systemd/system/multi-user.target.wants 2>/dev/null || true
    rm -rf /var/lib/systemd/deb-systemd-helper-enabled/mqttflow.service.dsh-also \
        /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/mqttflow.service
    if [ -e /var/lib/mqttflow/.user-created-by-package ] && getent passwd mqttflow >/dev/null; then
        userdel mqttflow >/dev/null 2>&1 || true
        getent group mqttflow >/dev/null && groupdel mqttflow >/dev/null 2>&1 || true
    fi
    rm -rf /var/lib/mqttflow
fi
exit 0
EOF
chmod 0755 "$pkg/DEBIAN/postinst" "$pkg/DEBIAN/prerm" "$pkg/DEBIAN/postrm"

(
    cd "$work"
    libdirs=()
    [ -d debian/mqttflow/usr/lib/mqttflow ] && libdirs=(-ldebian/mqttflow/usr/lib/mqttflow)
    # Python callbacks are optional (the shim is loaded only for them): libpython is
    # recommended, not required, so a C-only machine need not install it
    python=()
    shim=debian/mqttflow/usr/lib/mqttflow/mqttflow-python.so
    [ -f $shim ] && python=(-dRecommends "$shim")
    dpkg-shlibdeps -Tdebian/mqttflow.substvars "${libdirs[@]}" \
        debian/mqttflow/usr/bin/mqttflow debian/mqttflow/usr/libexec/mqttflow/* \
        debian/mqttflow/usr/share/mqttflow/examples/callbacks/*.so "${python[@]}"
    dpkg-gencontrol -pmqttflow -Pdebian/mqttflow -Tdebian/mqttflow.substvars -fdebian/files
)
(cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
    xargs -0 md5sum >DEBIAN/md5sums)
deb=$OUT/mqttflow_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$deb" >/dev/null
echo "$deb"
