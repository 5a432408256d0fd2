#!/bin/bash
# Checks that every C file follows .clang-format; prints the files that do not.
# usage: test-format.sh [SOURCE_ROOT]   (exit 77: skipped, clang-format missing)
set -euo pipefail

root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root"

clang_format=${CLANG_FORMAT:-clang-format}
if ! command -v "$clang_format" >/dev/null 2>&1; then
        echo "SKIP: $clang_format not found"
        exit 77
fi
if [[ ! -f .clang-format ]]; then
        echo "error: no .clang-format in $root" >&2
        exit 1
fi

dirs=(init units policies image tests)
files=()
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        # tracked files plus new ones not yet added, without ignored build trees
        while IFS= read -r -d '' f; do
                [[ -f $f ]] && files+=("$f")
        done < <(git ls-files -z --cached --others --exclude-standard -- \
                         "${dirs[@]/%//*.c}" "${dirs[@]/%//*.h}" | sort -zu)
else
        existing=()
        for d in "${dirs[@]}"; do
                [[ -d $d ]] && existing+=("$d")
        done
        if ((${#existing[@]})); then
                while IFS= read -r -d '' f; do
                        files+=("$f")
                done < <(find "${existing[@]}" -type f \( -name '*.c' -o -name '*.h' \) -print0 |
                                 sort -z)
        fi
fi

if ((${#files[@]} == 0)); then
        echo "SKIP: no C files found"
        exit 77
fi

bad=()
for f in "${files[@]}"; do
        if ! "$clang_format" --dry-run --Werror "$f" >/dev/null 2>&1; then
                bad+=("$f")
        fi
done

if ((${#bad[@]})); then
        for f in "${bad[@]}"; do
                # the first differences, so the log shows what is wrong
                echo "--- $f: clang-format would change:"
                "$clang_format" "$f" | diff -u "$f" - | tail -n +3 | head -n 24 || true
        done
fi
# the verdict last: meson shows only the end of a long log
echo "checked ${#files[@]} files with $("$clang_format" --version | head -n1)"
if ((${#bad[@]})); then
        echo "${#bad[@]} files not formatted (fix with: clang-format -i FILE...):"
        printf '  %s\n' "${bad[@]}"
        exit 1
fi
echo "all files formatted"
