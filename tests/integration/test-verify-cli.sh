#!/bin/bash
# The `vigilctl verify` contract: exit 0/1/2 and one PATH:LINE: line per problem.
set -u
vigilctl=$1
src=$2
n=0 failed=0
check() { # check NAME EXPECTED-EXIT COMMAND...
        local name=$1 want=$2
        shift 2
        "$@" >/dev/null 2>"$tmp/err"
        local rc=$?
        n=$((n + 1))
        if [ "$rc" -eq "$want" ]; then
                echo "ok $n - $name"
        else
                echo "not ok $n - $name (exit $rc, want $want)"
                sed 's/^/#   /' "$tmp/err"
                failed=1
        fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
units=$src/tests/unit/units

check "a good unit" 0 "$vigilctl" verify "$units/good/full.service"
check "several good units and a policy" 0 "$vigilctl" verify --policy-dir "$units/policies" \
        "$units/good/policy-merge.service" "$units/good/dropin.service" "$units/policies/gameserver.policy"
check "a bad unit" 1 "$vigilctl" verify "$units/bad/values.service"
check "one bad among good ones" 1 "$vigilctl" verify "$units/good/full.service" "$units/bad/noexec.service"
check "a missing file" 1 "$vigilctl" verify "$tmp/absent.service"
check "not a unit or policy" 1 "$vigilctl" verify "$units/bad/wrongsuffix.socket"
check "no files" 2 "$vigilctl" verify
check "an unknown option" 2 "$vigilctl" verify --frobnicate "$units/good/full.service"
check "an unknown verb" 2 "$vigilctl" frobnicate
check "no verb" 2 "$vigilctl"
check "--help" 0 "$vigilctl" --help

# Messages go to stderr, one per problem, in the documented shape.
"$vigilctl" verify "$units/bad/values.service" >"$tmp/out" 2>"$tmp/err"
n=$((n + 1))
if [ ! -s "$tmp/out" ] && [ "$(grep -c . "$tmp/err")" -ge 20 ] &&
        ! grep -qvE "^$units/bad/values.service:[0-9]+: (error|warning): " "$tmp/err"; then
        echo "ok $n - each problem is one PATH:LINE: line on stderr"
else
        echo "not ok $n - message shape"; sed 's/^/#   /' "$tmp/err" "$tmp/out"; failed=1
fi
n=$((n + 1))
if grep -qx "$units/bad/values.service:16: error: invalid UMask= value \"0999\": expected an octal mode from 0000 to 0777" "$tmp/err"; then
        echo "ok $n - a bad value names file, line, directive and value"
else
        echo "not ok $n - UMask message"; failed=1
fi
echo "1..$n"
exit $failed
