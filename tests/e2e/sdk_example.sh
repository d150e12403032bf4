#!/usr/bin/env bash
# The plugin SDK from outside the tree: install melforge into a scratch prefix, build the
# example plugin and the example C program against it with pkg-config, load the plugin,
# show it, and train it for a few steps.
# usage: sdk_example.sh BUILD_DIR SOURCE_DIR [extra CFLAGS, e.g. -fsanitize=address,undefined]
set -euo pipefail
build=$1 src=$2 extra=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(ls -d "$tmp"/prefix/lib*/pkgconfig | head -n1)
export PKG_CONFIG_PATH=$libdir
cp -r "$src/examples" "$tmp/examples"
make -s -C "$tmp/examples/plugin" CFLAGS="-O2 -Wall -Wextra -Werror $extra"
cc -O2 -Wall -Wextra -Werror $extra "$tmp/examples/train_step.c" $(pkg-config --cflags --libs melforge) \
   -Wl,-rpath,"$(pkg-config --variable=libdir melforge)" -o "$tmp/train_step"
so=$tmp/examples/plugin/residual_mlp.so
"$tmp/prefix/bin/melforge" plugins --plugin-path "$so" | grep -q "residual_mlp"
"$tmp/prefix/bin/melforge" plugins --plugin-path "$so" show residual_mlp | grep -q "width"
# The installed plugins are found relative to the installed library.
ls "$(pkg-config --variable=plugindir melforge)"/cnn.so >/dev/null
out=$("$tmp/train_step" residual_mlp --plugin-path "$so" --set width=32 --steps 3)
echo "$out"
echo "$out" | grep -q "residual_mlp: "
[ "$(echo "$out" | grep -c '^step')" -eq 3 ]
# A misspelt parameter is refused with a hint.
if "$tmp/train_step" residual_mlp --plugin-path "$so" --set widht=32 2>"$tmp/err"; then
  echo "a misspelt parameter was accepted" >&2; exit 1
fi
grep -q "did you mean 'width'" "$tmp/err"
echo "sdk example: ok"
