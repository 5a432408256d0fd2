#!/bin/sh
# Runs a test with no cgroup v2 hierarchy in sight, so that vigil falls back to tracking
# services by process group. The unmounts happen in a private mount namespace only.
set -e
[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root"; exit 77; }
exec unshare --mount --propagation private sh -c '
        for m in $(awk "\$3 == \"cgroup2\" { print \$2 }" /proc/self/mounts); do
                umount "$m"
        done
        exec "$@"' sh "$@"
