#!/bin/sh
# SPDX-License-Identifier: MIT
#
# Run by docker/Dockerfile in the build stage, from the source root after
# `make lib programs`: copies what the runtime stage needs into DEST.
#   - the programs (build/apps/NAME/NAME, build/bench/...), linked with
#     the static library, so no libpatinox.so;
#   - the Makefile, mk/ fragments, .config and build/auto.conf, so that
#     `make bench` runs the same benchmark list as on the host;
#   - bench/ scripts and data, but no C sources: without them make has no
#     rule to rebuild a program and runs the ones that are there;
#   - the entry point, and bin/ links to the programs.
set -eu
DEST=${1:?usage: stage.sh DEST}
OUT=${OUT:-build}

mkdir -p "$DEST/bin" "$DEST/docker"
cp -p Makefile .config "$DEST/"
cp -pr mk "$DEST/"
cp -p --parents "$OUT/auto.conf" "$DEST/"
find "$OUT/apps" "$OUT/bench" -type f -perm -u+x \
	! -name '*.o' ! -name '*.d' -exec cp -p --parents {} "$DEST/" \;
find bench -type f ! -name '*.[ch]' -exec cp -p --parents {} "$DEST/" \;
cp -p docker/entrypoint.sh "$DEST/docker/"
for p in "$DEST/$OUT"/apps/*/*; do
	[ -x "$p" ] && ln -sf "../$OUT/apps/$(basename "$p")/$(basename "$p")" \
		"$DEST/bin/$(basename "$p")"
done
echo "stage: $(find "$DEST/$OUT" -type f -perm -u+x | wc -l) programs in $DEST"
