#!/bin/sh
# Lines of code of the measuring kit: loadgen/src without blank lines, `//` comment lines
# (`//!` and `///` included) and `#[cfg(test)]` items (counted by their braces).
# Usage: sh bench/loc.sh [DIR]   (default loadgen/src)
dir=${1:-loadgen/src}
for f in "$dir"/*.rs; do
    awk -v name="$(basename "$f")" '
        skip == 0 && /^[ \t]*#\[cfg\(test\)\]/ { skip = 1; depth = 0; opened = 0; next }
        skip == 1 {
            line = $0
            opens = gsub(/\{/, "{", line); closes = gsub(/\}/, "}", line)
            depth += opens - closes
            if (opens > 0) opened = 1
            if ((opened && depth <= 0) || (!opened && $0 ~ /;[ \t]*$/)) skip = 0
            next
        }
        /^[ \t]*$/ || /^[ \t]*\/\// { next }
        { n++ }
        END { printf "%6d %s\n", n, name; total += n }
    ' "$f"
done | sort -rn | awk '{ print; t += $1 } END { printf "%6d total\n", t }'
