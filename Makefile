# ech3 - build, run, test.
#   make          build build/ech3
#   make run      install missing build dependencies, build, run in the foreground
#   make test     install test dependencies, run every test (unit, e2e, sanitizers)
#   make bench    side-by-side benchmark against the reference servers

SHELL    := /bin/bash
VERSION  ?= 0.1.0
CC       ?= cc
BUILD    ?= build

WARN     = -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
           -Wmissing-prototypes -Wno-format-nonliteral
HARDEN   = -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(HARDEN) $(CFLAGS) \
             -DECH3_VERSION='"$(VERSION)"' -pthread
LDFLAGS ?=
ALL_LDFLAGS = -pie -Wl,-z,relro,-z,now -pthread $(LDFLAGS)
LIBS     = -lwslay -lconfig -ljwt -lssl -lcrypto

SHARED_SRC = $(wildcard shared/*.c)
WORKER_SRC = $(wildcard worker/*.c)
MASTER_SRC = $(wildcard master/*.c)
SRC        = $(SHARED_SRC) $(WORKER_SRC) $(MASTER_SRC)
OBJ        = $(SRC:%.c=$(BUILD)/obj/%.o)
DEP        = $(OBJ:.o=.d)
# everything but main(), for unit tests and fuzzers
LIB_OBJ    = $(filter-out $(BUILD)/obj/master/main.o,$(OBJ))

.PHONY: all run test deps test-deps unit e2e python asan clean bench fuzz check-docs test-netns test-interop valgrind

all: $(BUILD)/ech3

# `make V=1` shows the full commands.
Q = $(if $(V),,@)

$(BUILD)/ech3: $(OBJ)
	@echo "  LD    $@"
	$(Q)$(CC) $(ALL_LDFLAGS) -o $@ $(OBJ) $(LIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	$(Q)$(CC) $(ALL_CFLAGS) -MMD -MP -c -o $@ $<

-include $(DEP)

deps:
	packaging/install-deps.sh build

test-deps:
	packaging/install-deps.sh test

run: deps
	$(MAKE) all
	$(BUILD)/ech3

# ---- tests ----

UNIT_SRC = $(wildcard tests/unit/test_*.c)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/unit/%)

$(BUILD)/unit/%: tests/unit/%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	$(Q)$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes $(ALL_LDFLAGS) -o $@ $< \
		$(LIB_OBJ) $(LIBS) -lcmocka

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

e2e: $(BUILD)/ech3
	tests/e2e/run.sh
	node tests/check-logs.mjs

python: $(BUILD)/ech3
	tests/python/run.sh

# The Go client library the real clients use (gorilla/websocket).
test-interop: $(BUILD)/ech3
	tests/interop/run.sh

# Egress policy against internal addresses inside a network namespace.
test-netns: $(BUILD)/ech3
	bash tests/netns/run.sh

# The same suites against a build with AddressSanitizer and UBSan.
asan:
	$(MAKE) BUILD=build/asan CFLAGS="-O1 -g -fsanitize=address,undefined \
		-fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
		LDFLAGS="-fsanitize=address,undefined" build/asan/ech3 unit-asan
	ECH3_BIN=$(CURDIR)/build/asan/ech3 \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=66 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 tests/e2e/run.sh
	node tests/check-logs.mjs

unit-asan: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

test: test-deps
	$(MAKE) all
	$(MAKE) check-docs
	$(MAKE) unit
	$(MAKE) e2e
	$(MAKE) python
	$(MAKE) test-netns
	$(MAKE) test-interop
	$(MAKE) asan
	$(MAKE) fuzz-smoke
	$(MAKE) valgrind
	$(MAKE) test-packaging

# docs/configuration.md carries the settings table generated from the code.
check-docs: $(BUILD)/ech3
	@$(BUILD)/ech3 --print-config-doc | diff -u - \
		<(sed -n '/BEGIN SETTINGS/,/END SETTINGS/p' docs/configuration.md | sed '1d;$$d') \
		&& echo "docs/configuration.md: settings table up to date"

clean:
	rm -rf $(BUILD)

-include tests/bench/bench.mk
include packaging/packaging.mk
include tests/fuzz/fuzz.mk

# The end-to-end suite once under valgrind memcheck (see the script's head).
valgrind: $(BUILD)/ech3
	tests/valgrind/run.sh
