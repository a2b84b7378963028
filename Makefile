# referrald - referral coordination daemon.
#
#   make            build build/referrald
#   make check      install missing Debian packages, build, run every test
#   make demo       install, build, private PostgreSQL + certificates + seed, run the daemon
#   make asan       the test suite under AddressSanitizer (+ LeakSanitizer)
#   make ubsan      the test suite under UndefinedBehaviorSanitizer
#   make bench      benchmarks (print figures; never part of check)
#   make fuzz       build and briefly run the parser fuzzers (clang libFuzzer)
#   make install    PREFIX=/usr/local DESTDIR=
#   make deb        the Debian package: build/deb/referrald_<version>_<arch>.deb
#   make check-ha   the PostgreSQL failover test (about 2 minutes; CI runs it after check)

PREFIX   ?= /usr/local
DESTDIR  ?=
BUILD    ?= build
CC       ?= cc
SANITIZE ?=

PKGS     := libevent_core libevent_extra libevent_openssl openssl libpq jansson
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# referralctl: libcurl for HTTPS (README says why), jansson, OpenSSL.
CTL_PKGS   := libcurl jansson openssl
CTL_CFLAGS := $(shell pkg-config --cflags $(CTL_PKGS) 2>/dev/null)
CTL_LIBS   := $(shell pkg-config --libs $(CTL_PKGS) 2>/dev/null)
VERSION    := $(shell sed -n 's/^\#define REFD_VERSION "\(.*\)"/\1/p' daemon/app.h)

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wformat=2 -Wno-format-nonliteral
CFLAGS   ?= -O2 -g
override CFLAGS += -std=c11 -D_GNU_SOURCE $(WARN) $(PKG_CFLAGS) -Idaemon -I$(BUILD)
LDLIBS   += $(PKG_LIBS) -lm

ifneq ($(SANITIZE),)
override CFLAGS += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
override LDFLAGS += -fsanitize=$(SANITIZE)
endif

DAEMON_SRC := $(filter-out daemon/main.c,$(wildcard daemon/*.c))
DAEMON_OBJ := $(patsubst daemon/%.c,$(BUILD)/%.o,$(DAEMON_SRC)) $(BUILD)/migrations.o \
              $(BUILD)/ui_files.o
MIGRATIONS := $(sort $(wildcard sql/migrations/*.sql))
SQL_FUNCTIONS := $(sort $(wildcard sql/functions/*.sql))
UI_FILES   := $(sort $(shell find ui -type f ! -name '.*' 2>/dev/null))

UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BIN   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))

CTL_SRC    := $(wildcard ctl/*.c)
CTL_OBJ    := $(patsubst ctl/%.c,$(BUILD)/ctl/%.o,$(CTL_SRC))
MANPAGES   := $(BUILD)/man/referrald.8 $(BUILD)/man/referrald.conf.5 $(BUILD)/man/referralctl.1

.PHONY: all deps check check-ha unit integration lint demo asan ubsan bench fuzz install clean \
	man deb

all: $(BUILD)/referrald $(BUILD)/referralctl

$(BUILD):
	@mkdir -p $(BUILD)/tests

$(BUILD)/%.o: daemon/%.c $(wildcard daemon/*.h) | $(BUILD)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/ctl/%.o: ctl/%.c ctl/ctl.h | $(BUILD)
	@mkdir -p $(BUILD)/ctl
	$(CC) $(CPPFLAGS) $(CFLAGS) $(CTL_CFLAGS) -Ictl -c -o $@ $<

$(BUILD)/referralctl: $(CTL_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(CTL_LIBS)

# Manual pages; referrald.conf(5) is written from the daemon's key table.
man: $(MANPAGES)

$(BUILD)/man/referrald.conf.5: $(BUILD)/referrald man/gen-conf-man.sh
	@mkdir -p $(BUILD)/man
	sh man/gen-conf-man.sh $(BUILD)/referrald $(VERSION) >$@.tmp && mv $@.tmp $@

$(BUILD)/man/%: man/%
	@mkdir -p $(BUILD)/man
	cp $< $@

# The Debian package, built by debhelper in a copy of the tree so that
# dpkg-buildpackage's outputs (written beside the source) stay under build/.
deb: deps
	@sh deploy/build-deb.sh $(BUILD)/deb

$(BUILD)/migrations.c: $(MIGRATIONS) $(SQL_FUNCTIONS) daemon/gen_migrations.sh | $(BUILD)
	sh daemon/gen_migrations.sh $@ $(MIGRATIONS) -- $(SQL_FUNCTIONS)

$(BUILD)/migrations.o: $(BUILD)/migrations.c daemon/migrate.h
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-overlength-strings -c -o $@ $<

$(BUILD)/ui_files.c: $(UI_FILES) daemon/gen_ui.sh | $(BUILD)
	sh daemon/gen_ui.sh $@ ui $(UI_FILES)

$(BUILD)/ui_files.o: $(BUILD)/ui_files.c daemon/ui_files.h
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/referrald: $(BUILD)/main.o $(DAEMON_OBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/test_%: tests/unit/test_%.c $(DAEMON_OBJ) | $(BUILD)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(DAEMON_OBJ) $(LDLIBS) $(shell pkg-config --libs cmocka)

# test_ui inflates the embedded gzip files to check them.
$(BUILD)/tests/test_ui: LDLIBS += -lz

deps:
	@sh deploy/install-deps.sh

# The one test command (README and .ci/run call exactly this).
check: deps
	@$(MAKE) --no-print-directory all $(UNIT_BIN)
	@sh tests/run.sh $(BUILD)

# Primary + synchronous standby, two daemons behind HAProxy, SIGKILL and
# promotion under load (tests/ha/failover.bats). .ci/run runs it after check.
check-ha: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(abspath $(BUILD)) bats tests/ha/failover.bats

unit: all $(UNIT_BIN)
	@sh tests/run.sh $(BUILD) unit

integration: all
	@sh tests/run.sh $(BUILD) integration

lint:
	@sh tests/run.sh $(BUILD) lint

asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan SANITIZE=address CFLAGS="-O1 -g" all \
		$(patsubst $(BUILD)/%,build-asan/%,$(UNIT_BIN))
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 sh tests/run.sh build-asan unit integration

ubsan: deps
	@$(MAKE) --no-print-directory BUILD=build-ubsan SANITIZE=undefined CFLAGS="-O1 -g" all \
		$(patsubst $(BUILD)/%,build-ubsan/%,$(UNIT_BIN))
	@UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 sh tests/run.sh build-ubsan unit integration

demo: deps all
	@sh deploy/demo.sh $(BUILD)/referrald

bench: deps all
	@sh tests/bench/run.sh $(BUILD)

fuzz: deps
	@sh tests/fuzz/run.sh

install: all man
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/referrald
	install -d $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)$(PREFIX)/share/man/man5 \
		$(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0755 $(BUILD)/referrald $(DESTDIR)$(PREFIX)/sbin/referrald
	install -m 0755 $(BUILD)/referralctl $(DESTDIR)$(PREFIX)/bin/referralctl
	install -m 0644 $(BUILD)/man/referrald.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	install -m 0644 $(BUILD)/man/referrald.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 0644 $(BUILD)/man/referralctl.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 0644 deploy/referrald.conf.example $(DESTDIR)$(PREFIX)/share/referrald/referrald.conf.example
	install -m 0644 deploy/referralctl.conf.example $(DESTDIR)$(PREFIX)/share/referrald/referralctl.conf.example
	sed 's|/usr/sbin/referrald|$(PREFIX)/sbin/referrald|g' deploy/referrald.service \
		>$(DESTDIR)$(PREFIX)/share/referrald/referrald.service
	install -m 0644 README.md SECURITY.md $(DESTDIR)$(PREFIX)/share/referrald/
	install -m 0644 deploy/README.md $(DESTDIR)$(PREFIX)/share/referrald/DEPLOY.md

clean:
	rm -rf build build-asan build-ubsan build-fuzz
