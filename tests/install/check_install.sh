#!/bin/sh
# Installs the build into a temporary prefix, then builds a consumer through pkg-config and
# through the CMake package, and runs them and the installed exo-probe with no environment help.
set -eu
BUILD=$1
CFLAGS_EXTRA=${2:-}   # -fsanitize=... when the build under test is sanitized
SRC=$(cd "$(dirname "$0")" && pwd)
PREFIX=$(mktemp -d /tmp/exo-install.XXXXXX)
trap 'rm -rf "$PREFIX"' EXIT
cmake --install "$BUILD" --prefix "$PREFIX" >/dev/null
unset EXO_PLUGIN_PATH
export LD_LIBRARY_PATH="$PREFIX/lib"
PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" cc $CFLAGS_EXTRA "$SRC/consumer/main.c" -o "$PREFIX/consumer-pc" \
  $(PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig" pkg-config --cflags --libs exo-ipex)
"$PREFIX/consumer-pc"
cmake -S "$SRC/consumer" -B "$PREFIX/consumer-build" -DCMAKE_PREFIX_PATH="$PREFIX" \
  -DCMAKE_C_FLAGS="$CFLAGS_EXTRA" -DCMAKE_EXE_LINKER_FLAGS="$CFLAGS_EXTRA" >/dev/null
cmake --build "$PREFIX/consumer-build" >/dev/null
"$PREFIX/consumer-build/consumer"
"$PREFIX/bin/exo-probe" --json >/dev/null
"$PREFIX/bin/exo-run" -n 4 --temperature 0 | grep -q "^stats:"
echo "install: OK"
