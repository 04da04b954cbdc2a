// SPDX-License-Identifier: MIT
/*
 * pxprobe: prints what this kernel and machine offer to patinox (io_uring
 * setup flags and opcodes, hugepages, THP, NUMA), one "key: value" a line.
 */
#include <stdio.h>
#include <string.h>

#include <patinox/probe.h>

int
main(int argc, char **argv)
{
	struct px_features f;
	char buf[4096];

	if (argc > 1 && strcmp(argv[1], "--features") != 0) {
		fprintf(stderr, "usage: %s [--features]\n", argv[0]);
		return 2;
	}
	px_probe_features(&f);
	px_probe_format(&f, buf, sizeof(buf));
	fputs(buf, stdout);
	return 0;
}
