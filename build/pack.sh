#!/usr/bin/env bash
# Packs the Pip libraries (Pip.Abstractions, Pip.Core, Pip.Torch: .nupkg + .snupkg) into a local feed,
# artifacts/packages by default, which nuget.config lists as a package source.
#
#   build/pack.sh [--output DIR] [--version-suffix SUFFIX] [--tool] [-p:NAME=VALUE ...]
#
#   --output DIR              the feed folder (default artifacts/packages)
#   --version-suffix SUFFIX   the prerelease label (default: VersionSuffix of Directory.Build.props); '' for a stable version
#   --tool                    also pack the pip-prune tool: Pip.Cli.linux-x64, Pip.Cli.win-x64 and Pip.Cli.osx-arm64
#                             (75 to 145 MB each: one platform's libtorch) and Pip.Cli, the small package that
#                             dotnet tool install starts from and that points to them (it takes a few minutes)
#   -p:NAME=VALUE             more MSBuild properties for dotnet pack
set -euo pipefail
cd "$(dirname "$0")/.."

output=artifacts/packages
tool=false
properties=()
while [ $# -gt 0 ]; do
    case "$1" in
        --output) output="$2"; shift 2 ;;
        --version-suffix) properties+=("-p:VersionSuffix=$2"); shift 2 ;;
        --tool) tool=true; shift ;;
        -p:*|/p:*|--property:*) properties+=("$1"); shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "pack.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

mkdir -p "$output"
version=$(dotnet msbuild src/Pip.Core/Pip.Core.csproj -getProperty:PipPackageVersion "${properties[@]}")
echo "Packing Pip $version into $output"

dotnet pack build/Pip.Libraries.slnf -c Release -o "$output" "${properties[@]}"
packages=(Pip.Abstractions Pip.Core Pip.Torch)
# The tool's per-platform packages have symbols (.snupkg); its pointer package Pip.Cli holds no binaries and has none.
tool_packages=()
if [ "$tool" = true ]; then
    rids=$(dotnet msbuild src/Pip.Cli/Pip.Cli.csproj -getProperty:ToolPackageRuntimeIdentifiers "${properties[@]}")
    # An earlier all-platform Pip.Cli of this version had a symbol package; the pointer package has none.
    rm -f "$output/Pip.Cli.$version.snupkg"
    dotnet pack src/Pip.Cli/Pip.Cli.csproj -c Release -o "$output" "${properties[@]}"
    for rid in ${rids//;/ }; do
        packages+=("Pip.Cli.$rid")
    done
    tool_packages+=(Pip.Cli)
fi

# A restore takes a package version from the global packages folder when it is there already, so an app would keep
# getting an earlier build of this same version: drop this version of Pip's own packages (and only those) from it.
global=$(dotnet nuget locals global-packages --list | sed -n 's/^global-packages: *//p')
if [ -n "$global" ]; then
    for id in "${packages[@]}" "${tool_packages[@]}"; do
        lower=$(echo "$id/$version" | tr '[:upper:]' '[:lower:]')
        rm -rf "${global%/}/$lower"
    done
fi

for id in "${packages[@]}"; do
    ls -l "$output/$id.$version.nupkg" "$output/$id.$version.snupkg"
done
for id in "${tool_packages[@]}"; do
    ls -l "$output/$id.$version.nupkg"
done
