#!/usr/bin/env bash
# Run README.md's two quick-start commands in a fresh Debian root, as a new user would on a
# new machine, and print each command's time and exit code.
#
#   bash scripts/fresh_debian.sh [--suite bookworm|trixie] [--tree] [--keep] [--tests 'ARGS']
#
# The root comes from debootstrap (minbase) of the machine's configured Debian mirror; the bare
# base is cached as a tarball ($MEMSIM_ROOT_CACHE, default /var/cache/memsim-fresh-root) and
# unpacked anew for every run.  Only what makes the root reach the same package registries as
# this machine is carried in: the pip configuration and CA bundle, and /opt/wheels (read-only)
# where this kind of machine keeps its CPU wheel of torch.  memsim is copied in from git HEAD
# (--tree: the working tree with uncommitted changes).  --tests passes arguments to pytest in
# place of the README's `-q` (e.g. --tests '-q -x tests/test_install.py').  Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC="$(pwd)"
SUITE=bookworm; TREE=""; KEEP=""; TEST_ARGS="-q"
while [ $# -gt 0 ]; do
  case "$1" in
    --suite) SUITE="$2"; shift 2;;
    --tree) TREE=yes; shift;;
    --keep) KEEP=yes; shift;;
    --tests) TEST_ARGS="$2"; shift 2;;
    -h|--help) sed -n '2,15p' "$0"; exit 0;;
    *) echo "fresh_debian: unknown argument $1 (accepted: --suite bookworm|trixie, --tree, --keep, --tests 'ARGS')" >&2; exit 2;;
  esac
done
case "$SUITE" in bookworm|trixie) ;; *) echo "fresh_debian: --suite must be bookworm or trixie, got $SUITE" >&2; exit 2;; esac
[ "$(id -u)" -eq 0 ] || { echo "fresh_debian: needs root (debootstrap and chroot)" >&2; exit 2; }
command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }

mirror="$(awk '/^URIs:/ && !/security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
[ -n "$mirror" ] || mirror="$(awk '$1 == "deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)"
mirror="${mirror:-http://deb.debian.org/debian}"
CACHE="${MEMSIM_ROOT_CACHE:-/var/cache/memsim-fresh-root}"
BASE="$CACHE/$SUITE-minbase.tar"
mkdir -p "$CACHE"
if [ ! -s "$BASE" ]; then
  echo "fresh_debian: debootstrap $SUITE from $mirror (cached in $BASE afterwards)" >&2
  tmp="$(mktemp -d "$CACHE/build.XXXXXX")"
  t0=$(date +%s)
  debootstrap --variant=minbase "$SUITE" "$tmp" "$mirror" >"$CACHE/debootstrap.log" 2>&1 \
    || { echo "fresh_debian: debootstrap failed, see $CACHE/debootstrap.log" >&2; rm -rf "$tmp"; exit 1; }
  tar -C "$tmp" -cf "$BASE.part" . && mv "$BASE.part" "$BASE"
  rm -rf "$tmp"
  echo "fresh_debian: base built in $(( $(date +%s) - t0 )) s" >&2
fi

ROOTFS="$(mktemp -d /tmp/memsim-fresh-root.XXXXXX)"
cleanup() {
  for m in opt/wheels dev/pts dev proc sys; do umount -l "$ROOTFS/$m" 2>/dev/null || true; done
  if [ -z "$KEEP" ]; then rm -rf --one-file-system "$ROOTFS"; else echo "fresh_debian: root kept in $ROOTFS" >&2; fi
}
trap cleanup EXIT
tar -C "$ROOTFS" -xf "$BASE"
# The machine's apt sources (a fresh machine uses the same mirror), its resolver, CA bundle and pip
# configuration: the root then reaches exactly the registries this machine reaches.
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
if [ -f /etc/apt/sources.list.d/debian.sources ] && [ "$SUITE" = "$(. /etc/os-release && echo "$VERSION_CODENAME")" ]; then
  rm -f "$ROOTFS/etc/apt/sources.list"
  cp /etc/apt/sources.list.d/debian.sources "$ROOTFS/etc/apt/sources.list.d/"
fi
cp /etc/apt/apt.conf.d/99artifact-registry "$ROOTFS/etc/apt/apt.conf.d/" 2>/dev/null || true
cp /etc/ssl/certs/ca-certificates.crt "$ROOTFS/etc/memsim-host-ca.crt"
mkdir -p "$ROOTFS/etc/xdg/pip" "$ROOTFS/root/.config/pip" "$ROOTFS/opt/wheels"
[ -f /etc/xdg/pip/pip.conf ] && cp /etc/xdg/pip/* "$ROOTFS/etc/xdg/pip/"
[ -f "$HOME/.config/pip/pip.conf" ] && cp "$HOME/.config/pip/pip.conf" "$ROOTFS/root/.config/pip/"
[ -d /opt/wheels ] && mount --bind -o ro /opt/wheels "$ROOTFS/opt/wheels"
mount -t proc proc "$ROOTFS/proc"; mount -t sysfs sys "$ROOTFS/sys"
mount --bind /dev "$ROOTFS/dev"; mount --bind /dev/pts "$ROOTFS/dev/pts"
mkdir -p "$ROOTFS/root/memsim"
if [ -n "$TREE" ]; then
  git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -C "$ROOTFS/root/memsim" -xf -
else
  git archive HEAD | tar -C "$ROOTFS/root/memsim" -xf -
fi
cp -r ../shared "$ROOTFS/root/shared" 2>/dev/null || true

run() {  # run COMMAND: in the root, as root, with a clean environment; prints its time and exit code
  local cmd="$1" t0 rc
  echo "fresh_debian: # $cmd" >&2
  t0=$(date +%s)
  set +e
  chroot "$ROOTFS" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb CI=true \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PIP_CERT=/etc/memsim-host-ca.crt REQUESTS_CA_BUNDLE=/etc/memsim-host-ca.crt \
    /bin/bash -c "cd /root/memsim && $cmd" </dev/null 2>&1 | grep --line-buffered -v "is ignored: it is neither a file nor a directory"
  rc=${PIPESTATUS[0]}
  set -e
  SUMMARY+="$(printf 'fresh_debian: %-50s exit %d in %d s' "$cmd" "$rc" $(( $(date +%s) - t0 )))"$'\n'
  return "$rc"
}
echo "fresh_debian: Debian $SUITE root in $ROOTFS ($(cat "$ROOTFS/etc/debian_version")), memsim from $([ -n "$TREE" ] && echo "the working tree" || git rev-parse --short HEAD)" >&2
status=0; SUMMARY=""
run "bash scripts/install.sh && memsim demo" || status=1
run "bash scripts/install.sh && python3 -m pytest $TEST_ARGS" || status=1
printf '%s' "$SUMMARY"
exit "$status"
