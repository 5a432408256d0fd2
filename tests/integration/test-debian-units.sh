#!/bin/bash
# Every *.service this machine ships either loads or is rejected with clean
# PATH:LINE: messages: never a crash, a hang or a garbled line. Prints the
# tally and the most common reasons as TAP comments.
set -u
vigilctl=$1
dirs=(/lib/systemd/system /usr/lib/systemd/system /etc/systemd/system)

echo "1..4"
# /lib is /usr/lib on a merged-/usr system: count each real file once.
mapfile -t files < <(for d in "${dirs[@]}"; do
        [ -d "$d" ] && find -L "$d" -maxdepth 1 -name '*.service' -type f 2>/dev/null
done | while read -r f; do echo "$(readlink -f "$(dirname "$f")")/$(basename "$f")"; done | sort -u)
if [ "${#files[@]}" -eq 0 ]; then
        echo "ok 1 # SKIP no systemd units on this machine"
        echo "ok 2 # SKIP"; echo "ok 3 # SKIP"; echo "ok 4 # SKIP"
        exit 0
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
loaded=0 rejected=0 crashed=0 garbled=0
for f in "${files[@]}"; do
        timeout 10 "$vigilctl" verify --policy-dir /nonexistent "$f" >/dev/null 2>"$out/err"
        rc=$?
        case $rc in
        0) loaded=$((loaded + 1)) ;;
        1) rejected=$((rejected + 1)) ;;
        *) crashed=$((crashed + 1)); echo "# exit $rc: $f" ;;
        esac
        # Each line: PATH:LINE: error|warning: printable text.
        if LC_ALL=C grep -qvE '^[^:]+:[0-9]+: (error|warning): [[:print:]]+$' "$out/err"; then
                garbled=$((garbled + 1))
                echo "# garbled output for $f:"
                sed 's/^/#   /' "$out/err"
        fi
        if [ $rc -eq 1 ] && ! grep -q ': error: ' "$out/err"; then
                garbled=$((garbled + 1)); echo "# rejected without an error line: $f"
        fi
        cat "$out/err" >>"$out/all"
done

total=${#files[@]}
[ $crashed -eq 0 ] && echo "ok 1 - no crash or hang over $total units" || echo "not ok 1 - $crashed crashed or hung"
[ $garbled -eq 0 ] && echo "ok 2 - every message is one clean PATH:LINE line" || echo "not ok 2 - $garbled files with bad output"
[ $((loaded + rejected)) -eq "$total" ] && echo "ok 3 - $loaded loaded, $rejected rejected" || echo "not ok 3 - tally mismatch"
# The loader must accept plain units at all: at least one real unit loads.
[ $loaded -gt 0 ] && echo "ok 4 - some real units load" || echo "not ok 4 - no real unit loads"

echo "# most common reasons (errors per directive or kind):"
touch "$out/all"
sed -nE 's/^[^:]+:[0-9]+: error: //p' "$out/all" |
        sed -E 's/"[^"]*"/"…"/g; s/^(\[[A-Za-z]+\] [A-Za-z]+=) is a systemd directive.*/\1 (systemd only)/' |
        sort | uniq -c | sort -rn | head -15 | sed 's/^/#   /'
