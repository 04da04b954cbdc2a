# SPDX-License-Identifier: MIT
#
# patinox build.  `make` builds build/libpatinox.{a,so}, every program under
# apps/ and bench/, and the tests; `make check` runs them.  Configuration
# comes from .config (Kconfig); a fresh clone gets configs/defconfig.
# `make help` lists the targets.

.DEFAULT_GOAL := all
.DELETE_ON_ERROR:
.SECONDARY:
.SUFFIXES:

comma := ,
PYTHON ?= /usr/bin/python3
KCONFIG_CONFIG ?= .config
export KCONFIG_CONFIG
DEFCONFIG ?= configs/defconfig
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
DESTDIR ?=

VERSION_MAJOR := 0
VERSION_MINOR := 1
VERSION_PATCH := 0
VERSION := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-6s %s\n' $(1) $(2)
endif

# Configuration: .config -> build/auto.conf (make) and autoconf.h (C).
GENDIR := build/include/generated
AUTOCONF := $(GENDIR)/autoconf.h
AUTOCONF_MK := build/auto.conf
KCONFIG_FILES := Kconfig $(shell find src uring apps -name 'Kconfig*' 2>/dev/null)

NOCONFIG_GOALS := clean distclean help check-style format menuconfig deps \
	defconfig savedefconfig olddefconfig %_defconfig
ifeq ($(filter-out $(NOCONFIG_GOALS),$(or $(MAKECMDGOALS),all)),)
else
-include $(AUTOCONF_MK)
endif

# Sanitizers: SANITIZE=address,undefined on the command line, or the
# CONFIG_PX_SANITIZE_* symbols.  A sanitized build lives in its own folder.
ifeq ($(SANITIZE),)
SANITIZE := $(strip $(if $(CONFIG_PX_SANITIZE_ADDRESS),address) \
	$(if $(CONFIG_PX_SANITIZE_UNDEFINED),undefined) \
	$(if $(CONFIG_PX_SANITIZE_THREAD),thread))
SANITIZE := $(subst $() $(),$(comma),$(SANITIZE))
endif
ifeq ($(SANITIZE),)
OUT ?= build
SANFLAGS :=
else
OUT ?= build/san-$(subst $(comma),-,$(SANITIZE))
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
ifneq ($(findstring undefined,$(SANITIZE)),)
SANFLAGS += -fno-sanitize-recover=undefined
endif
endif

CFLAGS ?= -O2 -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -Wshadow \
	-Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
	-Wformat=2 -Wvla -Wno-unused-parameter \
	-fvisibility=hidden -fPIC -pthread $(SANFLAGS)
override CPPFLAGS += -D_GNU_SOURCE -Iinclude -Ibuild/include \
	-include $(AUTOCONF) -MMD -MP
LDFLAGS ?=
override LDFLAGS += -pthread $(SANFLAGS)

LIB_LDLIBS := -luring -lxxhash -lurcu -lurcu-common -lm
ifeq ($(CONFIG_PX_REGION_NUMA),y)
LIB_LDLIBS += -lnuma
endif

# Sources.  Library: src/, src/<part>/, uring/.  Programs: one folder per
# program under apps/ and bench/, or one file per program in bench/.
LIB_SRCS := $(sort $(wildcard src/*.c src/*/*.c uring/*.c))
LIB_OBJS := $(LIB_SRCS:%.c=$(OUT)/%.o)
STATIC_LIB := $(OUT)/libpatinox.a
SONAME := libpatinox.so.$(VERSION_MAJOR)
SHARED_LIB := $(OUT)/libpatinox.so
SHARED_REAL := $(OUT)/libpatinox.so.$(VERSION)

APP_DIRS := $(patsubst %/,%,$(sort $(dir $(wildcard apps/*/*.c))))
BENCH_DIRS := $(patsubst %/,%,$(sort $(dir $(wildcard bench/*/*.c))))
BENCH_FILES := $(wildcard bench/*.c)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
SELF_SRCS := $(wildcard tests/selftests/*.c)
HARNESS_SRCS := $(wildcard tests/harness/*.c)

# Program helpers shared by apps and benchmarks (logging, option parsing).
PROG_SRCS := $(wildcard apps/common/*.c)
APP_DIRS := $(filter-out apps/common,$(APP_DIRS))
PROG_OBJS := $(PROG_SRCS:%.c=$(OUT)/%.o)

dir_prog = $(OUT)/$(1)/$(notdir $(1))
APPS := $(foreach d,$(APP_DIRS),$(call dir_prog,$(d)))
BENCHES := $(foreach d,$(BENCH_DIRS),$(call dir_prog,$(d))) \
	$(BENCH_FILES:%.c=$(OUT)/%)
UNIT_TESTS := $(UNIT_SRCS:%.c=$(OUT)/%)
SELF_TESTS := $(SELF_SRCS:%.c=$(OUT)/%)
HARNESS_BINS := $(HARNESS_SRCS:%.c=$(OUT)/%)
PROGRAMS := $(APPS) $(BENCHES)

# Per-part fragments: mk/<part>.mk may add libraries (LIB_LDLIBS,
# EXTRA_LDLIBS_<program>), benchmark runs (BENCH_RUNS) and targets.
BENCH_RUNS :=
-include $(sort $(wildcard mk/*.mk))
TESTS := $(UNIT_TESTS) $(SELF_TESTS) $(HARNESS_BINS)

.PHONY: all lib programs tests
all: lib programs tests
lib: $(STATIC_LIB) $(SHARED_LIB)
programs: $(PROGRAMS)
tests: $(TESTS)

# Configuration rules.
$(KCONFIG_CONFIG):
	$(call msg,CONFIG,$(DEFCONFIG))
	$(Q)$(PYTHON) -m defconfig --kconfig Kconfig $(DEFCONFIG) >/dev/null

$(AUTOCONF_MK) $(AUTOCONF) &: $(KCONFIG_CONFIG) $(KCONFIG_FILES)
	$(call msg,GEN,$(AUTOCONF))
	$(Q)mkdir -p $(GENDIR)
	$(Q)$(PYTHON) -m olddefconfig Kconfig >/dev/null
	$(Q)$(PYTHON) -m genconfig --header-path $(AUTOCONF).tmp \
		--config-out $(AUTOCONF_MK).tmp Kconfig
	$(Q)cmp -s $(AUTOCONF).tmp $(AUTOCONF) || mv $(AUTOCONF).tmp $(AUTOCONF)
	$(Q)mv $(AUTOCONF_MK).tmp $(AUTOCONF_MK)
	$(Q)rm -f $(AUTOCONF).tmp

.PHONY: defconfig olddefconfig savedefconfig menuconfig
defconfig:
	$(Q)$(PYTHON) -m defconfig --kconfig Kconfig $(DEFCONFIG)
%_defconfig:
	$(Q)$(PYTHON) -m defconfig --kconfig Kconfig configs/$@
olddefconfig:
	$(Q)$(PYTHON) -m olddefconfig Kconfig
savedefconfig:
	$(Q)$(PYTHON) -m savedefconfig --kconfig Kconfig --out defconfig
	@echo "wrote ./defconfig (copy it to configs/ to keep it)"
menuconfig:
	$(Q)$(PYTHON) -m menuconfig Kconfig

# Compilation.
$(OUT)/%.o: %.c $(AUTOCONF)
	$(call msg,CC,$<)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(STATIC_LIB): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@
	$(Q)$(AR) rcs $@ $^

$(SHARED_REAL): $(LIB_OBJS) src/libpatinox.map
	$(call msg,LD,$@)
	$(Q)$(CC) -shared $(LDFLAGS) -Wl,-soname,$(SONAME) \
		-Wl,--version-script,src/libpatinox.map -o $@ $(LIB_OBJS) \
		$(LIB_LDLIBS)

$(SHARED_LIB): $(SHARED_REAL)
	$(Q)ln -sf $(notdir $<) $(OUT)/$(SONAME)
	$(Q)ln -sf $(notdir $<) $@

PROG_LDLIBS = $(STATIC_LIB) $(LIB_LDLIBS)

define dir_program
$(call dir_prog,$(1)): $(patsubst %.c,$(OUT)/%.o,$(wildcard $(1)/*.c)) \
		$(PROG_OBJS) $(STATIC_LIB)
	$$(call msg,LD,$$@)
	$$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$(filter %.o,$$^) $$(PROG_LDLIBS) \
		$$(EXTRA_LDLIBS_$(notdir $(1)))
endef
$(foreach d,$(APP_DIRS) $(BENCH_DIRS),$(eval $(call dir_program,$(d))))

$(OUT)/bench/%: $(OUT)/bench/%.o $(PROG_OBJS) $(STATIC_LIB)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(PROG_LDLIBS) \
		$(EXTRA_LDLIBS_$*)

$(OUT)/tests/unit/%: $(OUT)/tests/unit/%.o $(STATIC_LIB)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(PROG_LDLIBS) -lcmocka

$(OUT)/tests/selftests/%: $(OUT)/tests/selftests/%.o $(STATIC_LIB)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(PROG_LDLIBS)

$(OUT)/tests/harness/%: $(OUT)/tests/harness/%.o
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $<

# Tests.  The runner prints one TAP stream per program and ends with the
# summary line `N passed, N failed, N skipped`.
.PHONY: check check-unit check-self check-style format
check: all
	$(Q)OUT=$(OUT) tests/run.sh

check-unit: all
	$(Q)OUT=$(OUT) tests/run.sh unit

check-self: all
	$(Q)OUT=$(OUT) tests/run.sh selftests

STYLE_FILES = $(shell git ls-files -co --exclude-standard '*.c' '*.h' 2>/dev/null || \
	find src include uring apps bench tests -name '*.[ch]')
check-style:
	$(Q)clang-format --dry-run -Werror $(STYLE_FILES)
	@echo "check-style: $(words $(STYLE_FILES)) files clean"

format:
	$(Q)clang-format -i $(STYLE_FILES)

# Running the main program in the foreground.
.PHONY: run
run: all
	$(Q)if [ -x $(OUT)/apps/pxcached/pxcached ]; then \
		exec $(OUT)/apps/pxcached/pxcached $(RUN_ARGS); \
	else \
		exec $(OUT)/apps/pxprobe/pxprobe --features; \
	fi

# Installation.
.PHONY: install uninstall
install: lib $(APPS)
	$(Q)install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR)/patinox \
		$(DESTDIR)$(BINDIR)
	$(Q)install -m 644 $(STATIC_LIB) $(DESTDIR)$(LIBDIR)/
	$(Q)install -m 755 $(SHARED_REAL) $(DESTDIR)$(LIBDIR)/
	$(Q)ln -sf libpatinox.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	$(Q)ln -sf libpatinox.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libpatinox.so
	$(Q)install -m 644 include/patinox/*.h $(DESTDIR)$(INCDIR)/patinox/
	$(Q)install -m 755 $(APPS) $(DESTDIR)$(BINDIR)/
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
		-e 's|@INCDIR@|$(INCDIR)|' -e 's|@VERSION@|$(VERSION)|' \
		-e 's|@LIBS_PRIVATE@|$(LIB_LDLIBS) -pthread|' \
		src/patinox.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/patinox.pc
	@echo "installed patinox $(VERSION) under $(DESTDIR)$(PREFIX)"

uninstall:
	$(Q)rm -rf $(DESTDIR)$(INCDIR)/patinox
	$(Q)rm -f $(DESTDIR)$(LIBDIR)/libpatinox.* \
		$(DESTDIR)$(LIBDIR)/pkgconfig/patinox.pc
	$(Q)rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(APPS)))

# Dependencies (Debian packages), installed with apt-get.
.PHONY: deps
deps:
	$(Q).ci/deps

.PHONY: clean distclean help
clean:
	$(Q)rm -rf build

distclean: clean
	$(Q)rm -f .config .config.old defconfig

help:
	@echo 'make                 build library, programs and tests'
	@echo 'make deps            install Debian packages (apt-get, needs root)'
	@echo 'make check           build and run every test'
	@echo 'make check SANITIZE=address,undefined   the same under ASan+UBSan'
	@echo 'make check SANITIZE=thread              the same under TSan'
	@echo 'make check-style     clang-format check of every source'
	@echo 'make run             run pxcached in the foreground'
	@echo 'make bench           run every benchmark ($(BENCH_RUNS))'
	@echo 'make install         PREFIX=/usr/local DESTDIR='
	@echo 'make defconfig | menuconfig | olddefconfig | savedefconfig'
	@echo 'make <name>_defconfig  apply configs/<name>_defconfig'
	@echo 'V=1                  show full commands'

-include $(shell find $(OUT) -name '*.d' 2>/dev/null)
# Benchmarks: each fragment adds its run targets to BENCH_RUNS.
.PHONY: bench
bench: $(BENCH_RUNS)
