# SPDX-License-Identifier: MIT
#
# Deployment: `make install` also installs
#   - pxcached(1) from docs/man/pxcached.1;
#   - section-3 pages for the public API, generated from the contract
#     comments of include/patinox/*.h by docs/man/gen-man3.py into
#     $(OUT)/man/man3 (`make man` builds them alone);
#   - the systemd unit deploy/pxcached.service.in, with the paths of
#     this installation, and its option file deploy/pxcached.default as
#     $(SYSCONFDIR)/default/pxcached (only when none is there yet).
# pxcached itself is installed by the top-level rule with the other
# programs.  `make uninstall` removes all of it but the option file.
MANDIR ?= $(PREFIX)/share/man
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)

MAN3_DIR := $(OUT)/man/man3
MAN3_STAMP := $(MAN3_DIR)/patinox.3
API_HEADERS := $(sort $(wildcard include/patinox/*.h))

.PHONY: man install-deploy uninstall-deploy
man: $(MAN3_STAMP)

$(MAN3_STAMP): docs/man/gen-man3.py $(API_HEADERS)
	$(call msg,GEN,$(MAN3_DIR))
	$(Q)rm -rf $(MAN3_DIR)
	$(Q)$(PYTHON) docs/man/gen-man3.py $(MAN3_DIR) $(API_HEADERS)

install: install-deploy
# The unit names this installation's paths, so it is written at install
# time, like patinox.pc.
install-deploy: $(MAN3_STAMP)
	$(Q)install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3 \
		$(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSCONFDIR)/default
	$(Q)install -m 644 docs/man/pxcached.1 $(DESTDIR)$(MANDIR)/man1/
	$(Q)install -m 644 $(MAN3_DIR)/*.3 $(DESTDIR)$(MANDIR)/man3/
	$(Q)sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
		deploy/pxcached.service.in \
		> $(DESTDIR)$(SYSTEMDUNITDIR)/pxcached.service
	$(Q)chmod 644 $(DESTDIR)$(SYSTEMDUNITDIR)/pxcached.service
	$(Q)[ -e $(DESTDIR)$(SYSCONFDIR)/default/pxcached ] || \
		install -m 644 deploy/pxcached.default \
		$(DESTDIR)$(SYSCONFDIR)/default/pxcached

uninstall: uninstall-deploy
uninstall-deploy:
	$(Q)rm -f $(DESTDIR)$(MANDIR)/man1/pxcached.1 \
		$(DESTDIR)$(MANDIR)/man3/patinox.3 \
		$(DESTDIR)$(MANDIR)/man3/patinox_*.3 \
		$(DESTDIR)$(MANDIR)/man3/px_*.3 \
		$(DESTDIR)$(SYSTEMDUNITDIR)/pxcached.service
