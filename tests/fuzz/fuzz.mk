# tests/fuzz/fuzz.mk - libFuzzer harnesses (included from the root Makefile).
#
#   make fuzz                 build every harness, run each FUZZ_SECONDS (60), one
#                             after the other
#   make fuzz FUZZ_SECONDS=600 FUZZ_ONLY="ws http"
#   make fuzz-smoke           replay the seeds and saved findings, then run all
#                             harnesses side by side for FUZZ_SMOKE_SECONDS (10)
#                             (part of make test: ~15 s plus the first build)
#   make fuzz-regress         replay the seeds + tests/fuzz/crashes-found only
#   make fuzz-build           just build build/fuzz/fuzz_*
#
# Every source but master/main.c is compiled again with clang (never the gcc
# objects of build/obj) into build/fuzz/obj and archived into
# build/fuzz/libech3.a; a harness links only the members it needs.
# Corpora: the seeds in tests/fuzz/corpus/<name>/ are copied into
# build/fuzz/corpus/<name>/, which the runs grow (the seeds stay as they are).
# Per-harness libFuzzer flags: tests/fuzz/options/<name>. A crash leaves its
# input as build/fuzz/artifacts/<name>/crash-*; keep the ones worth keeping
# under tests/fuzz/crashes-found/<name>/ (replayed by fuzz-regress).

FUZZ_CC       ?= clang
FUZZ_DIR      ?= build/fuzz
FUZZ_SECONDS  ?= 60
FUZZ_SMOKE_SECONDS ?= 10
FUZZ_NAMES    := http connect config auth ws
FUZZ_ONLY     ?= $(FUZZ_NAMES)

FUZZ_SAN      = -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
FUZZ_CFLAGS   = -std=c11 -D_GNU_SOURCE -g -O1 $(FUZZ_SAN) -pthread \
                -DECH3_VERSION='"$(VERSION)-fuzz"' -Wall -Wextra \
                -Wno-unused-parameter
FUZZ_LIBS     = -lwslay -lconfig -ljwt -lssl -lcrypto

FUZZ_LIB_SRC  = $(filter-out master/main.c,$(wildcard shared/*.c worker/*.c master/*.c))
FUZZ_LIB_OBJ  = $(FUZZ_LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_BINS     = $(FUZZ_NAMES:%=$(FUZZ_DIR)/fuzz_%)

.PHONY: fuzz fuzz-build fuzz-smoke fuzz-regress

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  FUZZCC $<"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<

$(FUZZ_DIR)/libech3.a: $(FUZZ_LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libech3.a
	@echo "  FUZZLD $@"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< \
		$(FUZZ_DIR)/libech3.a $(FUZZ_LIBS)

-include $(FUZZ_LIB_OBJ:.o=.d)

fuzz-build: $(FUZZ_BINS)

fuzz: $(FUZZ_ONLY:%=$(FUZZ_DIR)/fuzz_%)
	tests/fuzz/run.sh -d $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_ONLY)

# every seed and saved finding, once each (libFuzzer runs file arguments once)
fuzz-regress: $(FUZZ_BINS)
	@set -e; for n in $(FUZZ_NAMES); do \
	  files="$$(ls -d tests/fuzz/corpus/$$n/* tests/fuzz/crashes-found/$$n/* 2>/dev/null || true)"; \
	  echo "== fuzz_$$n: replay $$(echo $$files | wc -w) seeds and saved findings"; \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  LSAN_OPTIONS=suppressions=tests/fuzz/lsan.supp:print_suppressions=0 \
	  $(FUZZ_DIR)/fuzz_$$n -timeout=20 $$files >$(FUZZ_DIR)/replay_$$n.log 2>&1 || { \
	    grep -m1 -E -A14 '(==[0-9]+==ERROR|runtime error:|ERROR: libFuzzer)' \
	      $(FUZZ_DIR)/replay_$$n.log; \
	    echo "fuzz_$$n: $$(grep '^Running: ' $(FUZZ_DIR)/replay_$$n.log | tail -1) fails (log $(FUZZ_DIR)/replay_$$n.log)"; \
	    exit 1; }; \
	done

fuzz-smoke: fuzz-regress
	tests/fuzz/run.sh -j -d $(FUZZ_DIR) $(FUZZ_SMOKE_SECONDS) $(FUZZ_NAMES)
