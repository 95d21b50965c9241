#!/usr/bin/env bash
# Build lilypad's local Docker base images without any image registry
# (`docker pull` cannot work on these machines; only Debian's apt mirror is
# reachable):
#   lilypad/busybox:1          Debian's busybox-static in an otherwise empty rootfs
#   lilypad/python:3-bookworm  debootstrap --variant=minbase + python3-minimal,
#                              plus python3 (python3-minimal alone lacks most of
#                              the stdlib, even `json`) and ca-certificates
# Each image is skipped when it already exists with the current recipe (label
# org.lilypad.recipe). Needs a running Docker engine and root (apt-get,
# debootstrap). Quiet on success: one line per image built.
set -euo pipefail

BUSYBOX_IMAGE="lilypad/busybox:1"
PYTHON_IMAGE="lilypad/python:3-bookworm"
SUITE="bookworm"
PYTHON_PACKAGES="python3-minimal,python3,ca-certificates"
# Bump when a recipe changes, so existing images get rebuilt.
BUSYBOX_RECIPE="busybox-static-1"
PYTHON_RECIPE="debootstrap-minbase-$SUITE-$PYTHON_PACKAGES-1"
CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/lilypad"

log() { echo "base-images: $*" >&2; }
die() { log "$*"; exit 1; }

SUDO=""
if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null || die "needs root (apt-get, debootstrap)"
    SUDO="sudo"
fi

# have_image IMAGE RECIPE: the image exists and was built by this recipe.
have_image() {
    [[ "$(docker image inspect -f '{{index .Config.Labels "org.lilypad.recipe"}}' "$1" 2>/dev/null)" == "$2" ]]
}

docker info >/dev/null 2>&1 || die "the Docker engine does not answer (run 'make setup')"

work="$(mktemp -d "${TMPDIR:-/tmp}/lilypad-base-images.XXXXXX")"
cleanup() {
    # debootstrap mounts proc/sys inside the target; never rm -rf through a mount.
    if [[ -d "$work" ]]; then
        awk -v w="$work" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r |
            while read -r m; do $SUDO umount -l "$m" 2>/dev/null || true; done
        $SUDO rm -rf --one-file-system "$work"
    fi
}
trap cleanup EXIT

apt_updated=0
apt_update_once() {
    if [[ $apt_updated == 0 ]]; then
        $SUDO apt-get update -qq >"$work/apt-update.log" 2>&1 || { cat "$work/apt-update.log" >&2; die "apt-get update failed"; }
        apt_updated=1
    fi
}

# The Debian mirror this machine's apt uses (deb822 .sources or one-line .list).
debian_mirror() {
    local f uri=""
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        uri="$(awk '
            /^[[:space:]]*$/ { if (u != "" && s ~ /(^|[[:space:]])'"$SUITE"'([[:space:]]|$)/) { print u; exit } u=""; s=""; next }
            /^URIs:/   { u=$2 }
            /^Suites:/ { $1=""; s=$0 }
            END { if (u != "" && s ~ /(^|[[:space:]])'"$SUITE"'([[:space:]]|$)/) print u }
        ' "$f" | head -n1)"
        [[ -n "$uri" ]] && break
    done
    if [[ -z "$uri" ]]; then
        uri="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
            awk -v s="$SUITE" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i+1) == s) { print $i; exit } }')"
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

build_busybox() {
    local dir="$work/busybox" deb rootfs applet
    mkdir -p "$dir/deb" "$dir/rootfs"
    if ! apt-cache show busybox-static >/dev/null 2>&1; then apt_update_once; fi
    (cd "$dir/deb" && apt-get download -qq busybox-static >"$work/busybox.log" 2>&1) ||
        { apt_update_once; (cd "$dir/deb" && apt-get download -qq busybox-static >"$work/busybox.log" 2>&1); } ||
        { cat "$work/busybox.log" >&2; die "apt-get download busybox-static failed"; }
    deb="$(ls "$dir"/deb/busybox-static_*.deb | head -n1)"
    dpkg-deb -x "$deb" "$dir/extract"

    rootfs="$dir/rootfs"
    mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev}
    chmod 1777 "$rootfs/tmp"
    install -m 0755 "$dir/extract/bin/busybox" "$rootfs/bin/busybox"
    # The result of `busybox --install -s` run inside the rootfs, without having
    # to chroot: a symlink to /bin/busybox at every applet's standard path.
    while read -r applet; do
        [[ -n "$applet" && ! -e "$rootfs/$applet" ]] && ln -s /bin/busybox "$rootfs/$applet"
    done < <("$rootfs/bin/busybox" --list-full)
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"

    tar --numeric-owner -C "$rootfs" -c . |
        docker import \
            --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'CMD ["/bin/sh"]' \
            --change "LABEL org.lilypad.recipe=$BUSYBOX_RECIPE" \
            - "$BUSYBOX_IMAGE" >/dev/null
    log "built $BUSYBOX_IMAGE ($(basename "$deb"))"
}

build_python() {
    local rootfs="$work/python-rootfs" mirror
    if ! command -v debootstrap >/dev/null; then
        apt_update_once
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq debootstrap >"$work/apt-install.log" 2>&1 ||
            { cat "$work/apt-install.log" >&2; die "apt-get install debootstrap failed"; }
    fi
    mirror="$(debian_mirror)"
    # Keep the downloaded .debs between runs (debootstrap wants an absolute path).
    mkdir -p "$CACHE_DIR/debootstrap"
    if ! $SUDO debootstrap --variant=minbase --include="$PYTHON_PACKAGES" \
            --cache-dir="$(cd "$CACHE_DIR/debootstrap" && pwd -P)" \
            "$SUITE" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
        tail -n 40 "$work/debootstrap.log" >&2
        die "debootstrap $SUITE from $mirror failed"
    fi
    # Nothing of the build machine's apt state belongs in the image.
    $SUDO rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    $SUDO tar --numeric-owner -C "$rootfs" -c . |
        docker import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' \
            --change 'CMD ["python3"]' \
            --change "LABEL org.lilypad.recipe=$PYTHON_RECIPE" \
            - "$PYTHON_IMAGE" >/dev/null
    log "built $PYTHON_IMAGE (debootstrap $SUITE from $mirror)"
}

# An image built by an older recipe is left untagged by the new import: drop it
# (unless a container still uses it).
drop_old() { [[ -n "$1" && "$1" != "$(docker image inspect -f '{{.Id}}' "$2" 2>/dev/null)" ]] && docker rmi "$1" >/dev/null 2>&1 || true; }

if ! have_image "$BUSYBOX_IMAGE" "$BUSYBOX_RECIPE"; then
    old="$(docker image inspect -f '{{.Id}}' "$BUSYBOX_IMAGE" 2>/dev/null || true)"
    build_busybox
    drop_old "$old" "$BUSYBOX_IMAGE"
fi
if ! have_image "$PYTHON_IMAGE" "$PYTHON_RECIPE"; then
    old="$(docker image inspect -f '{{.Id}}' "$PYTHON_IMAGE" 2>/dev/null || true)"
    build_python
    drop_old "$old" "$PYTHON_IMAGE"
fi
