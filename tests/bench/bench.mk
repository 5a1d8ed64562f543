# tests/bench/bench.mk — make fragment included by the root Makefile.
# Builds build/ech3-bench (the load generator, tests/bench/*.c) and runs the
# side-by-side benchmark against the Node and Go reference servers:
#   make bench         full run (3 repetitions, ~6 min)
#   make bench-quick   1 repetition, no 9k-tunnel memory run
# Only BENCH_* variables are defined here; CC/CFLAGS of the root Makefile are
# left alone (BENCH_CC defaults to $(CC)).
BENCH_DIR     := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
BENCH_CC      ?= $(CC)
BENCH_CFLAGS  ?= -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -pthread
BENCH_LDFLAGS ?= -pthread
BENCH_LDLIBS  ?= -lssl -lcrypto
BENCH_SRCS    := $(wildcard $(BENCH_DIR)/*.c)
BENCH_HDRS    := $(wildcard $(BENCH_DIR)/*.h)

build/ech3-bench: $(BENCH_SRCS) $(BENCH_HDRS) $(BENCH_DIR)/bench.mk
	@mkdir -p $(@D)
	$(BENCH_CC) $(BENCH_CFLAGS) -o $@ $(BENCH_SRCS) $(BENCH_LDFLAGS) $(BENCH_LDLIBS)

.PHONY: bench bench-quick
bench: build/ech3 build/ech3-bench
	$(BENCH_DIR)/run.sh

bench-quick: build/ech3 build/ech3-bench
	$(BENCH_DIR)/run.sh --quick
