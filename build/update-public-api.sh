#!/usr/bin/env bash
# Lists every public symbol of the libraries that is not yet declared in PublicAPI.Shipped.txt / PublicAPI.Unshipped.txt
# (RS0016) in the project's PublicAPI.Unshipped.txt, with the analyzer's own code fix. Review the diff: it IS the API change.
# At a release, move the Unshipped lines to PublicAPI.Shipped.txt.
#   build/update-public-api.sh [PROJECT...]   (default: the three libraries)
set -euo pipefail
cd "$(dirname "$0")/.."
projects=("$@")
[ ${#projects[@]} -gt 0 ] || projects=(src/Pip.Abstractions src/Pip.Core src/Pip.Torch)
for p in "${projects[@]}"; do
  echo "== $p"
  dotnet format analyzers "$p" --diagnostics RS0016 RS0017 --severity warn --verbosity quiet
done
