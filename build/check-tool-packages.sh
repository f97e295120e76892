#!/usr/bin/env bash
# Checks the pip-prune tool packages that build/pack.sh --tool put into a local feed, and the tool they install:
#  * Pip.Cli (the pointer package) and Pip.Cli.<rid> for every platform of ToolPackageRuntimeIdentifiers are there,
#    each at most 250 MB (the public NuGet gallery's limit), each platform's package with that platform's libtorch (and its licence)
#    and no other's, and with the demo model;
#  * the linux-x64 package's libLibTorchSharp.so no longer asks for GLIBCXX_3.4.32 (readelf, when it is installed);
#  * dotnet tool install takes Pip.Cli from the feed into a temporary tool path (this machine's platform package),
#    and the installed pip-prune answers --help and prunes the bundled demo model; the tool path is removed after.
#
#   build/check-tool-packages.sh [--feed DIR] [--version-suffix SUFFIX] [-p:NAME=VALUE ...]
#
#   --feed DIR                the local feed (default artifacts/packages)
#   --version-suffix SUFFIX   the prerelease label the packages were packed with (as for build/pack.sh)
#   -p:NAME=VALUE             more MSBuild properties, as given to build/pack.sh
set -euo pipefail
cd "$(dirname "$0")/.."

feed=artifacts/packages
properties=()
while [ $# -gt 0 ]; do
    case "$1" in
        --feed) feed="$2"; shift 2 ;;
        --version-suffix) properties+=("-p:VersionSuffix=$2"); shift 2 ;;
        -p:*|/p:*|--property:*) properties+=("$1"); shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "check-tool-packages.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

limit=$((250 * 1000 * 1000))   # the public NuGet gallery refuses packages above 250 MB
feed=$(cd "$feed" && pwd)
version=$(dotnet msbuild src/Pip.Core/Pip.Core.csproj -getProperty:PipPackageVersion "${properties[@]}")
rids=$(dotnet msbuild src/Pip.Cli/Pip.Cli.csproj -getProperty:ToolPackageRuntimeIdentifiers "${properties[@]}")
failures=0
fail() { echo "FAILED: $*" >&2; failures=$((failures + 1)); }

# The entries of a .nupkg (a zip file), one a line.
entries() {
    if command -v unzip >/dev/null; then
        unzip -Z1 "$1"
    else
        python3 -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$1"
    fi
}

# libtorch's main library on each platform, and the native library suffixes of the others.
torch_library() {
    case "$1" in
        linux-*) echo libtorch_cpu.so ;;
        win-*) echo torch_cpu.dll ;;
        osx-*) echo libtorch_cpu.dylib ;;
    esac
}

for id in Pip.Cli $(for rid in ${rids//;/ }; do echo "Pip.Cli.$rid"; done); do
    package="$feed/$id.$version.nupkg"
    if [ ! -f "$package" ]; then
        fail "$package is missing (build/pack.sh --tool)"
        continue
    fi
    size=$(wc -c <"$package" | tr -d ' ')
    awk -v id="$id" -v size="$size" 'BEGIN { printf "%-22s %7.1f MB (%d bytes)\n", id, size / 1000000, size }'
    [ "$size" -le "$limit" ] || fail "$id is $size bytes, above the public NuGet gallery's 250 MB"
done

# Each platform's package carries its own libtorch and no other platform's native libraries.
for rid in ${rids//;/ }; do
    package="$feed/Pip.Cli.$rid.$version.nupkg"
    [ -f "$package" ] || continue
    list=$(entries "$package")
    echo "$list" | grep -qx "tools/net10.0/$rid/$(torch_library "$rid")" || fail "Pip.Cli.$rid lacks $(torch_library "$rid")"
    echo "$list" | grep -qx "tools/net10.0/$rid/models/pip-demo/model.safetensors" || fail "Pip.Cli.$rid lacks the demo model"
    echo "$list" | grep -qx "tools/net10.0/$rid/LICENSE-LIBTORCH.txt" || fail "Pip.Cli.$rid lacks libtorch's licence"
    for other in ${rids//;/ }; do
        [ "$other" = "$rid" ] && continue
        library=$(torch_library "$other")
        [ "$library" = "$(torch_library "$rid")" ] && continue
        if echo "$list" | grep -q "/$library\$"; then fail "Pip.Cli.$rid carries $library of $other"; fi
    done
    if echo "$list" | grep -v "^tools/net10.0/$rid/" | grep -q '^tools/'; then
        fail "Pip.Cli.$rid has tool files outside tools/net10.0/$rid/"
    fi
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The linux-x64 package's TorchSharp library is patched whatever machine packed it (README, TorchSharp on Debian 12).
linux="$feed/Pip.Cli.linux-x64.$version.nupkg"
if [ -f "$linux" ] && command -v readelf >/dev/null && command -v unzip >/dev/null; then
    unzip -q -o "$linux" tools/net10.0/linux-x64/libLibTorchSharp.so -d "$work/linux"
    if readelf -V "$work/linux/tools/net10.0/linux-x64/libLibTorchSharp.so" | grep -q 'Name: GLIBCXX_3.4.32'; then
        fail "Pip.Cli.linux-x64's libLibTorchSharp.so still asks for GLIBCXX_3.4.32 (it will not load on GCC 12 systems)"
    else
        echo "Pip.Cli.linux-x64: libLibTorchSharp.so does not ask for GLIBCXX_3.4.32"
    fi
elif [ -f "$linux" ]; then
    echo "Pip.Cli.linux-x64: libLibTorchSharp.so not checked (needs readelf and unzip)"
fi

# Install from the feed into a temporary tool path (the machine's own tools are not touched) and run it. The
# temporary folder is the working directory, so that no nuget.config of this repository takes part.
if [ "$failures" -eq 0 ]; then
    start=$(date +%s)
    if (cd "$work" && dotnet tool install Pip.Cli --tool-path "$work/tools" --add-source "$feed" --version "$version"); then
        tool="$work/tools/pip-prune"
        if ! "$tool" --help >"$work/help.txt"; then
            fail "the installed pip-prune --help exited with an error"
        elif ! grep -q 'prune' "$work/help.txt"; then
            fail "the installed pip-prune --help does not list its commands"
        fi
        # The demo prune with the bundled model and calibration text (the defaults), one layer, kept short.
        if OMP_WAIT_POLICY=PASSIVE "$tool" prune --out "$work/pruned" --layers 1 --samples 2 --max-tokens 32; then
            for file in config.json model.safetensors pruning-report.json; do
                [ -f "$work/pruned/$file" ] || fail "the installed pip-prune's prune wrote no $file"
            done
        else
            fail "the installed pip-prune could not prune the bundled demo model"
        fi
        echo "installed and ran pip-prune from the feed in $(( $(date +%s) - start )) s"
    else
        fail "dotnet tool install of Pip.Cli $version from $feed"
    fi
fi

if [ "$failures" -ne 0 ]; then
    echo "tool packages: $failures check(s) failed" >&2
    exit 1
fi
echo "tool packages: all checks passed"
