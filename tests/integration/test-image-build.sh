#!/bin/bash
# image/build's container images from an OCI image layout and from a `docker save`
# archive: layers applied in order with their whiteouts (by umoci), the appliance's users
# and vigil's mount points added, and bad [Image] sections refused with file:line; an
# unknown package reported at its own Packages= line, a bad unit at the appliance's file.
# The cache: unchanged inputs are up to date (image and appliance) without redoing work,
# a change of the builder rebuilds both; hostile layers write nothing outside the root.
# The data disk carries the label /etc/fstab mounts it by, a kept one relabelled in place.
# Usage: test-image-build.sh SOURCE_ROOT BUILD_DIR
set -u
root=$1
build=$2
here=$(cd "$(dirname "$0")" && pwd)
n=0
failed=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=1; return 1; fi; }

if [ "$(id -u)" != 0 ]; then echo "1..0 # SKIP needs root (image/build)"; exit 77; fi
for tool in umoci skopeo mksquashfs unsquashfs; do
        if ! command -v $tool > /dev/null; then echo "1..0 # SKIP $tool is missing"; exit 77; fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
app=$tmp/app
mkdir -p "$app/units" "$app/overlay/etc"
echo "from the overlay" > "$app/overlay/etc/motd"

# Two layers: the second deletes a file of the first (a whiteout) and adds one.
cd "$tmp"
umoci init --layout layout &&
umoci new --image layout:v1 &&
umoci unpack --image layout:v1 b1 &&
mkdir -p b1/rootfs/etc && echo one > b1/rootfs/etc/gone && echo kept > b1/rootfs/etc/kept &&
umoci repack --image layout:v1 b1 && rm -rf b1 &&
umoci unpack --image layout:v1 b1 && rm b1/rootfs/etc/gone && echo two > b1/rootfs/etc/added &&
umoci repack --image layout:v1 b1 && rm -rf b1 &&
skopeo --insecure-policy copy --quiet oci:layout:v1 docker-archive:saved.tar:base:v1 \
        > /dev/null 2>&1 &&
skopeo --insecure-policy copy --quiet oci:layout:v1 oci-archive:saved-oci.tar:base:v1 \
        > /dev/null 2>&1
ok $? "an OCI layout with two layers, a docker-archive and an oci-archive of it"

builder=$root/image/build
build_image() { # $1: the image's name, $2: the [Image] line naming the base; sets $out,
        # $rc, $img (its squashfs) and $list (its files)
        cat > "$app/appliance.conf" <<EOC
[Appliance]
Name=imgtest

[User]
Name=player
UID=1234
Home=/home/player

[Image]
Name=$1
$2
Directory=overlay
EOC
        out=$("$builder" --appliance "$app" --images-only --cache-dir "$tmp/cache" \
                --vigil-build "$build" 2>&1)
        rc=$?
        img=$(echo "$out" | awk -v n="$1" '$1 == n { print $3 }' | tail -1)
        list=$(unsquashfs -lls -d "" "$img" 2>/dev/null)
}

check_image() { # $1: what, $2: the [Image] line naming the base
        build_image base "$2"
        ok $rc "$1: image/build --images-only" || echo "$out" | sed 's/^/#   /'
        echo "$list" | grep -q ' /etc/kept$' && echo "$list" | grep -q ' /etc/added$' &&
                ! echo "$list" | grep -q ' /etc/gone$'
        ok $? "$1: the layers in order, the whiteout applied"
        for d in proc dev sys tmp run; do echo "$list" | grep -q "^d.* /$d\$" || break; done
        ok $? "$1: vigil's mount points are there"
        unsquashfs -cat "$img" etc/passwd 2>/dev/null | grep -q '^player:x:1234:' &&
                unsquashfs -cat "$img" etc/motd 2>/dev/null | grep -q 'from the overlay'
        ok $? "$1: the appliance's users and the Directory= overlay"
}
check_image "OCI layout" "OCI=../layout:v1"
check_image "docker save archive" "Archive=../saved.tar"
check_image "podman save --format oci-archive" "Archive=../saved-oci.tar"

# Layers that try to reach a directory outside the image root: nothing may land there,
# neither from the layer (umoci) nor from what image/build adds on top (passwd, mount
# points, homes, the Directory= overlay), whatever symlinks the base holds.
outside=$tmp/outside
hostile() { # $1: the case of make-hostile-layout.py; sets $out, $rc, $list
        rm -rf "$outside" "$tmp/hostile" && mkdir -p "$outside" &&
                for v in victim victim-link victim-hard; do echo $v > "$outside/$v"; done
        python3 "$here/make-hostile-layout.py" "$tmp/hostile" "$outside" "$1"
        build_image hostile "OCI=../hostile:v1"
        escaped=$( (cd "$outside" && find . ! -name . | sort | tr '\n' ' '
                for v in victim victim-link victim-hard; do
                        [ "$(cat $v 2> /dev/null)" = $v ] || echo "$v changed"
                done
                find "$tmp" -path "$tmp/cache/images" -prune -o \( -name dotdot -o \
                        -name absolute -o -name 'through-*' \) -print) 2>&1)
        [ "$escaped" = "./victim ./victim-hard ./victim-link " ]
}
hostile paths
ok $? "a layer with ../, absolute paths, symlinks out and whiteouts of ../: nothing outside" ||
        echo "$escaped$out" | sed 's/^/#   /'
for f in dotdot absolute through-abslink through-rellink; do
        echo "$list" | grep -q " $outside/$f\$" || break
done
[ $rc = 0 ] && echo "$list" | grep -q ' /etc/ok$'
ok $? "a layer with ../, absolute paths, symlinks out: its files are inside the image" ||
        echo "$list$out" | sed 's/^/#   /'
hostile hardlink
ok $? "a layer with a hard link to a file outside: nothing outside is touched" ||
        echo "$escaped$out" | sed 's/^/#   /'
hostile dirlinks
ok $? "a base whose /etc, /usr, /tmp, /home are symlinks out: image/build writes nothing there" ||
        echo "$escaped$out" | sed 's/^/#   /'
[ $rc = 0 ] && unsquashfs -cat "$img" etc/passwd 2> /dev/null | grep -q '^player:x:1234:' &&
        unsquashfs -cat "$img" etc/motd 2> /dev/null | grep -q 'from the overlay' &&
        echo "$list" | grep -q '^d.* /home/player$' && echo "$list" | grep -q '^drwxrwxrwt.* /tmp$'
ok $? "a base whose /etc, /usr, /tmp, /home are symlinks out: the image gets them as directories" ||
        echo "$list$out" | sed 's/^/#   /'

# The image cache: unchanged inputs give the image already built; a change to any input of
# the image's key, the builder itself included, builds a new version.
changed_builder() { # a copy of image/build that differs by a comment, with its policies
        mkdir -p "$tmp/changed/image" && ln -sfn "$root/policies" "$tmp/changed/policies" &&
                cp "$root/image/build" "$tmp/changed/image/build" &&
                echo "# changed" >> "$tmp/changed/image/build"
}
build_image base "OCI=../layout:v1"
first=$img
first_id=$(stat -c %i.%Y "$img" 2> /dev/null)
build_image base "OCI=../layout:v1"
[ $rc = 0 ] && [ "$img" = "$first" ] && [ "$(stat -c %i.%Y "$img")" = "$first_id" ] &&
        echo "$out" | grep -q "image base .*: up to date" && ! echo "$out" | grep -q 'MiB ('
ok $? "an image with unchanged inputs is up to date: the same file, not built again" ||
        echo "$out" | sed 's/^/#   /'
echo "changed" > "$app/overlay/etc/changed"
build_image base "OCI=../layout:v1"
rm "$app/overlay/etc/changed"
[ $rc = 0 ] && [ -n "$img" ] && [ "$img" != "$first" ] && echo "$out" | grep -q 'MiB ('
ok $? "a change in the Directory= overlay builds a new image version" ||
        echo "$out" | sed 's/^/#   /'
changed_builder
builder=$tmp/changed/image/build
build_image base "OCI=../layout:v1"
builder=$root/image/build
[ $rc = 0 ] && [ -n "$img" ] && [ "$img" != "$first" ] && echo "$out" | grep -q 'MiB ('
ok $? "a change in image/build itself builds a new image version" ||
        echo "$out" | sed 's/^/#   /'

cat > "$app/appliance.conf" <<EOC
[Appliance]
Name=imgtest
[Image]
Name=bad
OCI=../nowhere:v1
EOC
out=$("$root/image/build" --appliance "$app" --images-only --cache-dir "$tmp/cache" \
        --vigil-build "$build" 2>&1)
echo "$out" | grep -q "appliance.conf:5: error: invalid OCI= value"
ok $? "a missing OCI layout is an error naming file:line"

cat > "$app/appliance.conf" <<EOC
[Appliance]
Name=imgtest
DataDiskDevice=vda
EOC
out=$("$root/image/build" --appliance "$app" --images-only --cache-dir "$tmp/cache" \
        --vigil-build "$build" 2>&1)
echo "$out" | grep -q "appliance.conf:3: error: invalid DataDiskDevice= value \"vda\""
ok $? "DataDiskDevice= must be a path under /dev/" || echo "$out" | sed 's/^/#   /'

# An unknown package is reported at its own line, in [Image] as in [Appliance].
cat > "$app/appliance.conf" <<EOC
[Appliance]
Name=imgtest
Packages=no-such-package-for-vigil-a

[Image]
Name=bad
Packages=no-such-package-for-vigil-b
EOC
out=$("$root/image/build" --appliance "$app" --images-only --cache-dir "$tmp/cache" \
        --vigil-build "$build" 2>&1)
echo "$out" | grep -q "appliance.conf:3: error: package no-such-package-for-vigil-a is unknown"
ok $? "an unknown [Appliance] Packages= package is an error at its line" ||
        echo "$out" | sed 's/^/#   /'
sed -i 's/^Packages=no-such-package-for-vigil-a$/Packages=/' "$app/appliance.conf"
out=$("$root/image/build" --appliance "$app" --images-only --cache-dir "$tmp/cache" \
        --vigil-build "$build" 2>&1)
echo "$out" | grep -q "appliance.conf:7: error: package no-such-package-for-vigil-b is unknown"
ok $? "an unknown [Image] Packages= package is an error at its line, not at [Appliance]'s" ||
        echo "$out" | sed 's/^/#   /'

# A unit the appliance's build rejects (vigilctl verify on the staged root) is reported at
# the appliance's own file, never at the temporary staging copy.
cat > "$app/appliance.conf" <<EOC
[Appliance]
Name=unittest
EOC
cat > "$app/units/bad.service" <<EOC
[Unit]
Description=a unit vigil refuses

[Service]
ExecStart=/bin/true
PrivateTmp=yes
EOC
mkdir -p "$app/units/bad.service.d"
printf '[Service]\nNoSuchDirective=1\n' > "$app/units/bad.service.d/extra.conf"
if ! ls /boot/vmlinuz-* > /dev/null 2>&1; then
        n=$((n + 1)); echo "ok $n - # SKIP no kernel in /boot for a whole appliance build"
else
out=$("$root/image/build" --appliance "$app" --out "$tmp/out" --cache-dir "$tmp/cache" \
        --vigil-build "$build" 2>&1)
rc=$?
[ $rc = 1 ] && echo "$out" | grep -q "^$app/units/bad.service:6: error: .*PrivateTmp=" &&
        echo "$out" | grep -q "^$app/units/bad.service.d/extra.conf:2: error: .*NoSuchDirective=" &&
        ! echo "$out" | grep -q "$tmp/cache"
ok $? "a bad unit file is an error at the appliance's units/NAME.service:LINE" ||
        echo "$out" | sed 's/^/#   /'
rm -rf "$app/units/bad.service" "$app/units/bad.service.d"

# The whole appliance: built, then up to date without redoing any step, then built again
# by a changed builder.
out=$("$root/image/build" --appliance "$app" --out "$tmp/out" --cache-dir "$tmp/cache" \
        --vigil-build "$build" 2>&1)
rc=$?
first_id=$(stat -c %i.%Y "$tmp/out/initrd.img" 2> /dev/null)
[ $rc = 0 ] && echo "$out" | grep -q '^\[7/7\]' && echo "$out" | grep -q ": built in "
ok $? "an appliance is built, every step shown" || echo "$out" | sed 's/^/#   /'
fstab=$(zcat "$tmp/out/initrd.img" | (cd "$tmp" && cpio -i --quiet --to-stdout etc/fstab))
echo "$fstab" | grep -q '^LABEL=unittest-data[[:space:]]/var[[:space:]]ext4' &&
        [ "$(e2label "$tmp/out/data.img")" = unittest-data ]
ok $? "/etc/fstab mounts the data disk on /var by its label, which data.img carries" ||
        echo "$fstab" | sed 's/^/#   /'
out=$("$root/image/build" --appliance "$app" --out "$tmp/out" --cache-dir "$tmp/cache" \
        --vigil-build "$build" 2>&1)
rc=$?
[ $rc = 0 ] && [ "$out" = "$tmp/out: up to date" ] &&
        [ "$(stat -c %i.%Y "$tmp/out/initrd.img")" = "$first_id" ]
ok $? "unchanged inputs: up to date, no step run, the initrd not rewritten" ||
        echo "$out" | sed 's/^/#   /'
out=$("$tmp/changed/image/build" --appliance "$app" --out "$tmp/out" --cache-dir "$tmp/cache" \
        --vigil-build "$build" 2>&1)
rc=$?
[ $rc = 0 ] && echo "$out" | grep -q '^\[6/7\] initrd.img' && ! echo "$out" | grep -q 'up to date'
ok $? "a change in image/build itself builds the appliance again" ||
        echo "$out" | sed 's/^/#   /'
tune2fs -L old-label "$tmp/out/data.img" > /dev/null 2>&1
data_id=$(stat -c %i "$tmp/out/data.img")
out=$("$root/image/build" --appliance "$app" --out "$tmp/out" --cache-dir "$tmp/cache" \
        --vigil-build "$build" 2>&1)
rc=$?
[ $rc = 0 ] && [ "$(e2label "$tmp/out/data.img")" = unittest-data ] &&
        [ "$(stat -c %i "$tmp/out/data.img")" = "$data_id" ] &&
        echo "$out" | grep -q 'label "old-label" changed to "unittest-data"'
ok $? "a kept data.img with another label is relabelled, not remade" ||
        echo "$out" | sed 's/^/#   /'
fi

echo "1..$n"
exit $failed
