# SPDX-License-Identifier: MIT
#
# Cache fragment.  The cache links only what the library already links
# (liburcu memb flavour, xxhash).  `make check-cache-san` builds and runs
# the cache's unit test and stress selftest under AddressSanitizer +
# UndefinedBehaviorSanitizer and under ThreadSanitizer, each in its own
# build folder.

CACHE_TESTS := tests/unit/test_cache tests/selftests/cache_stress
CACHE_SANS := address,undefined thread

.PHONY: check-cache-san
check-cache-san:
	$(Q)set -e; for san in $(CACHE_SANS); do \
		out=build/san-$$(echo $$san | tr , -); \
		$(MAKE) --no-print-directory SANITIZE=$$san \
			$(addprefix $$out/,$(CACHE_TESTS)); \
		for t in $(CACHE_TESTS); do \
			echo "== $$san $$t"; $$out/$$t >/dev/null; \
		done; \
	done; echo "check-cache-san: all passed"
