# mqttflow: one non-recursive Makefile (STYLE 18).
#
#   make            build every stage, the CLI, example callbacks, test tools (into $(BUILD))
#   make test       build, then run unit + integration tests (tests/run.sh)
#   make asan       the same build with ASan+UBSan into build-asan
#   make check      clang-format check, the tests under ASan+UBSan, a short fuzz run
#   make bench      ring and pipeline benchmarks (tests/bench/)
#   make demo       the live demo (scripts/demo.sh)
#
# Sources are found by wildcard: every <stage>/*.c except main.c goes into lib<stage>.a, so a
# new module needs no Makefile edit and tests link the same objects the binaries do.
# BUILD selects the output folder so several builds (plain, asan, a helper's own) coexist.

BUILD   ?= build
CC      ?= cc
V       ?= 0
Q       := $(if $(filter 1,$(V)),,@)

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla
CSTD    := -std=c11 -D_GNU_SOURCE
OPT     ?= -O2
CFLAGS  ?=
override CFLAGS += $(CSTD) $(WARN) $(OPT) -g -pthread -fPIC -MMD -MP -Icommon -Iconfig -I.
ifeq ($(CI),true)
WERROR ?= 1
endif
ifeq ($(WERROR),1)
override CFLAGS += -Werror
endif
ifeq ($(SAN),1)
override CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDSAN   := -fsanitize=address,undefined
endif

LDLIBS  := -Wl,--as-needed -lpaho-mqtt3as -luring -lyaml -lpcre2-8 -ljansson -ldl -lm -lpthread
# the worker exports mf_* so that dlopen'ed callbacks resolve them from the executable
LDEXPORT := -rdynamic

STAGES  := ingress router workers relay supervisor
LIBDIRS := $(STAGES) config common

srcs_of  = $(filter-out $(1)/main.c,$(wildcard $(1)/*.c))
objs_of  = $(patsubst %.c,$(BUILD)/obj/%.o,$(call srcs_of,$(1)))
lib_of   = $(BUILD)/lib/lib$(1).a
ALL_LIBS := $(foreach d,$(LIBDIRS),$(call lib_of,$(d)))

# binaries: stage dir -> executable name
BIN_ingress    := $(BUILD)/bin/mqttflow-ingress
BIN_router     := $(BUILD)/bin/mqttflow-router
BIN_workers    := $(BUILD)/bin/mqttflow-worker
BIN_relay      := $(BUILD)/bin/mqttflow-relay
BIN_supervisor := $(BUILD)/bin/mqttflow
BINS := $(foreach s,$(STAGES),$(if $(wildcard $(s)/main.c),$(BIN_$(s))))

TEST_SRCS := $(wildcard tests/*/test_*.c)
TESTS     := $(patsubst %.c,$(BUILD)/%,$(TEST_SRCS))
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOLS     := $(patsubst %.c,$(BUILD)/%,$(TOOL_SRCS))
BENCH_SRCS:= $(wildcard tests/bench/*.c)
BENCHES   := $(patsubst %.c,$(BUILD)/%,$(BENCH_SRCS))
TESTCB    := $(patsubst %.c,$(BUILD)/%.so,$(wildcard tests/callbacks/*.c))
EXAMPLECB := $(patsubst %.c,%.so,$(wildcard config/examples/callbacks/*.c))

.PHONY: all test asan check format format-check bench demo fuzz clean
# keep test objects (make would delete them as intermediates and rebuild them every time)
.SECONDARY:
all: $(BINS) $(TESTS) $(TOOLS) $(BENCHES) $(TESTCB) $(EXAMPLECB)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

define LIB_RULE
$(call lib_of,$(1)): $(call objs_of,$(1))
	@mkdir -p $$(dir $$@)
	@$(if $(Q),echo "  AR      $$@")
	$(Q)rm -f $$@ && ar rcs $$@ $$^
endef
$(foreach d,$(LIBDIRS),$(eval $(call LIB_RULE,$(d))))

define BIN_RULE
$(BIN_$(1)): $(BUILD)/obj/$(1)/main.o $(ALL_LIBS)
	@mkdir -p $$(dir $$@)
	@$(if $(Q),echo "  LD      $$@")
	$(Q)$(CC) $(LDSAN) -pthread $(if $(filter workers,$(1)),$(LDEXPORT)) -o $$@ $$< $(ALL_LIBS) $(LDLIBS)
endef
$(foreach s,$(STAGES),$(eval $(call BIN_RULE,$(s))))

# tests, tools and benches: one .c each, linked against every library. Tests export mf_*
# too, so the worker tests can dlopen real callback modules.
$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(ALL_LIBS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDSAN) -pthread $(LDEXPORT) -o $@ $< $(ALL_LIBS) -lcmocka $(LDLIBS)

# callback modules are built the way users build them: this one header, nothing else
CBFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -O2 -g -shared -fPIC -Icommon
$(BUILD)/tests/callbacks/%.so: tests/callbacks/%.c common/mqttflow.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CB      $@")
	$(Q)$(CC) $(CBFLAGS) $(if $(filter 1,$(WERROR)),-Werror) -o $@ $<
config/examples/callbacks/%.so: config/examples/callbacks/%.c common/mqttflow.h
	@$(if $(Q),echo "  CB      $@")
	$(Q)$(CC) $(CBFLAGS) $(if $(filter 1,$(WERROR)),-Werror) -o $@ $<

test: all
	$(Q)BUILD=$(BUILD) tests/run.sh

# the long fault tests of issue 4 (SOAK=1: about 25 minutes), then their figures table
.PHONY: soak
soak: all
	$(Q)BUILD=$(BUILD) tests/integration/fault_soak.sh

asan:
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan SAN=1 OPT=-O1 all

FMT_SRCS = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	$(Q)clang-format -i $(FMT_SRCS)
format-check:
	$(Q)clang-format --dry-run --Werror $(FMT_SRCS)

# the fuzz run first, so the last line of a check is the test runner's summary
check: format-check
	$(Q)$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$${FUZZ_SECONDS:-20}
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan SAN=1 OPT=-O1 test

# libFuzzer on the config loader: clang compiles the loader and its dependencies directly.
FUZZ_SECONDS ?= 20
FUZZ_SRCS := $(call srcs_of,config) $(call srcs_of,common)
fuzz: $(BUILD)/fuzz/fuzz_cfg $(BUILD)/fuzz/fuzz_mqtt_pkt
	$(Q)mkdir -p $(BUILD)/fuzz/corpus
	$(Q)$(BUILD)/fuzz/fuzz_cfg -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
		-timeout=10 -rss_limit_mb=2048 $(BUILD)/fuzz/corpus tests/fuzz/seeds
	$(Q)mkdir -p $(BUILD)/fuzz/corpus-mqtt
	$(Q)$(BUILD)/fuzz/fuzz_mqtt_pkt -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
		-timeout=10 -rss_limit_mb=2048 $(BUILD)/fuzz/corpus-mqtt tests/fuzz/seeds-mqtt
# the MQTT packet decoder alone for FUZZ_RUNS executions (issue 7 asks for 10 M clean)
FUZZ_RUNS ?= 10000000
.PHONY: fuzz-soak
fuzz-soak: $(BUILD)/fuzz/fuzz_mqtt_pkt
	$(Q)mkdir -p $(BUILD)/fuzz/corpus-mqtt
	$(Q)$(BUILD)/fuzz/fuzz_mqtt_pkt -runs=$(FUZZ_RUNS) -max_len=4096 -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 $(BUILD)/fuzz/corpus-mqtt tests/fuzz/seeds-mqtt
$(BUILD)/fuzz/fuzz_mqtt_pkt: tests/fuzz/fuzz_mqtt_pkt.c common/mqtt_pkt.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)clang $(CSTD) -g -O1 -fsanitize=fuzzer,address,undefined -Icommon -o $@ $^
$(BUILD)/fuzz/fuzz_cfg: tests/fuzz/fuzz_cfg.c $(FUZZ_SRCS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)clang $(CSTD) -g -O1 -fsanitize=fuzzer,address,undefined -Icommon -Iconfig -I. \
		-o $@ $^ $(LDLIBS)

bench: all
	$(Q)BUILD=$(BUILD) tests/bench/run.sh

demo: all
	$(Q)BUILD=$(BUILD) scripts/demo.sh

clean:
	rm -rf $(BUILD) build-asan $(EXAMPLECB)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
