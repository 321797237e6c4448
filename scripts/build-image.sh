#!/usr/bin/env bash
# Build the orbit-server image with buildah from scratch, in the layout of the
# Containerfile, where no base image can be pulled and no Docker engine runs:
# the binary (with its embedded plugins), the shared libraries `ldd` lists, the
# CA bundle, passwd/group entries for the non-root user, /app/data owned by it,
# and the same entrypoint, command, user, working directory, environment and
# ports as the Containerfile's final stage (PATH as in the distroless base, so
# that `kubectl exec POD -- orbit-server config check` finds the binary).
#
#   scripts/build-image.sh [--bin target/release/orbit-server] [--tag orbit-rs/orbit-server:0.1.0]
#                          [--operator target/release/orbit-operator] [--oci-archive FILE] [--root DIR]
#
# The operator binary (host/operator), when built, goes in the same image as
# /usr/local/bin/orbit-operator (k8s/operator/deployment.yaml runs it with
# `command`), so one image serves both.
#
# --root gives buildah a storage directory of its own (default: buildah's); the
# storage driver is vfs, which needs no overlay support. Prints the image id.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=target/release/orbit-server
operator=target/release/orbit-operator
tag=localhost/orbit-rs/orbit-server:0.1.0
archive=
root_args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin=$2; shift 2 ;;
        --tag) tag=$2; shift 2 ;;
        --operator) operator=$2; shift 2 ;;
        --oci-archive) archive=$2; shift 2 ;;
        --root) root_args=(--root "$2/storage" --runroot "$2/run"); shift 2 ;;
        -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done
command -v buildah >/dev/null || { echo "buildah not found: apt-get install -y --no-install-recommends buildah" >&2; exit 1; }
[ -x "$bin" ] || { echo "no binary at $bin: cargo build --release --bin orbit-server" >&2; exit 1; }
b() { buildah --storage-driver vfs "${root_args[@]}" "$@"; }

uid=65532
ctr=$(b from --name "orbit-image-build-$$" scratch)
trap 'b rm "$ctr" >/dev/null 2>&1 || true' EXIT
mnt=$(b mount "$ctr")

# The binary and what the dynamic loader needs to run it.
install -D -m 0755 "$bin" "$mnt/usr/local/bin/orbit-server"
bins=("$bin")
if [ -x "$operator" ]; then
    install -D -m 0755 "$operator" "$mnt/usr/local/bin/orbit-operator"
    bins+=("$operator")
fi
for lib in $(for b in "${bins[@]}"; do ldd "$b"; done | grep -o '=> /[^ ]*\|^\s*/[^ ]*' | grep -o '/[^ ]*' | sort -u); do
    install -D -m 0755 "$(readlink -f "$lib")" "$mnt$lib"
done
# CA certificates for the cloud backends' TLS (distroless ships them too).
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$mnt/etc/ssl/certs/ca-certificates.crt"
fi
# The users of distroless' nonroot variant.
install -d -m 0755 "$mnt/etc"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%s:%s:nonroot:/home/nonroot:/sbin/nologin\n' "$uid" "$uid" > "$mnt/etc/passwd"
printf 'root:x:0:\nnonroot:x:%s:\n' "$uid" > "$mnt/etc/group"
install -d -m 1777 "$mnt/tmp"
install -d -m 0750 -o "$uid" -g "$uid" "$mnt/app/data"
chown "$uid:$uid" "$mnt/app"
b umount "$ctr" >/dev/null

b config \
    --entrypoint '["/usr/local/bin/orbit-server"]' \
    --cmd serve \
    --user "$uid:$uid" \
    --workingdir /app \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env ORBIT_DATA_DIR=/app/data \
    --port 8080/tcp --port 9090/tcp \
    --label org.opencontainers.image.title=orbit-server \
    --label org.opencontainers.image.source=https://github.com/turingworks/orbit-rs \
    --label org.opencontainers.image.licenses=Apache-2.0 \
    "$ctr"
id=$(b commit --quiet --format oci "$ctr" "$tag")
if [ -n "$archive" ]; then
    rm -f "$archive"
    b push --quiet "$tag" "oci-archive:$archive:$tag"
    echo "wrote $archive" >&2
fi
echo "$id"
