# SPDX-License-Identifier: MIT
#
# libFuzzer targets (tests/fuzz/fuzz_*.c), built with clang under
# ASan + UBSan in their own folder, build/fuzz/, from the library and
# pxcached's protocol sources compiled there with coverage.
#
#   make fuzz-build          build every target
#   make fuzz                run each for FUZZ_SECONDS (default 180)
#   make fuzz FUZZ_SECONDS=30 FUZZ_TARGETS=fuzz_proto
#
# Each run starts from the seed corpus tests/fuzz/corpus/<target>/ (kept
# small, in the tree) and grows a working corpus in build/fuzz/corpus/.
# A crash, leak or sanitizer report stops the run with the input saved as
# build/fuzz/crash-<target>-*; copy it to tests/fuzz/regress/<target>/
# under a name that says what it broke, and tests/scripts/fuzz.sh replays
# it from then on.  tests/scripts/fuzz.sh is the short CI run.

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 180
# Extra compiler flags for an exploration build, e.g.
# FUZZ_EXTRA=-fno-sanitize=pointer-overflow FUZZ_OUT=build/fuzz-x.
FUZZ_EXTRA ?=
FUZZ_OUT ?= build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-fno-omit-frame-pointer
FUZZ_CFLAGS := -std=gnu11 -g -O1 -pthread -Wall -Wno-unused-parameter \
	$(FUZZ_SAN) $(FUZZ_EXTRA)
FUZZ_CPPFLAGS := -D_GNU_SOURCE -Iinclude -Ibuild/include \
	-include $(AUTOCONF) -MMD -MP
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_TARGETS ?= $(notdir $(FUZZ_SRCS:.c=))
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_OUT)/%)
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_OUT)/%.o)
FUZZ_PXC_OBJS := $(addprefix $(FUZZ_OUT)/apps/pxcached/,proto.o cmd.o auth.o live.o \
	stats.o) $(PROG_SRCS:%.c=$(FUZZ_OUT)/%.o)
FUZZ_RUN_FLAGS ?= -rss_limit_mb=2048 -timeout=20 -handle_bus=0

$(FUZZ_OUT)/%.o: %.c $(AUTOCONF)
	$(call msg,FUZZCC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) \
		-fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_OUT)/libpatinox-fuzz.a: $(FUZZ_LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@
	$(Q)$(AR) rcs $@ $^

$(FUZZ_OUT)/fuzz_proto: $(FUZZ_PXC_OBJS)
$(FUZZ_OUT)/fuzz_%: $(FUZZ_OUT)/tests/fuzz/fuzz_%.o \
		$(FUZZ_OUT)/libpatinox-fuzz.a
	$(call msg,FUZZLD,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ \
		$(filter %.o,$^) $(FUZZ_OUT)/libpatinox-fuzz.a $(LIB_LDLIBS)

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	$(Q)set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_OUT)/corpus/$$t; \
		echo "== $$t for $(FUZZ_SECONDS) s"; \
		$(FUZZ_OUT)/$$t $(FUZZ_RUN_FLAGS) \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_OUT)/crash-$$t- \
			$(FUZZ_OUT)/corpus/$$t tests/fuzz/corpus/$$t; \
	done; echo "fuzz: no crash in $(FUZZ_TARGETS)"
