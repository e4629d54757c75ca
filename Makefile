# mqttflow: one non-recursive Makefile (STYLE 18).
#
#   make            build every stage, the CLI, example callbacks, test tools (into $(BUILD))
#   make test       build, then run unit + integration tests (tests/run.sh)
#   make asan       the same build with ASan+UBSan into build-asan
#   make check      clang-format check, the tests under ASan+UBSan, a short fuzz run
#   make bench      ring and pipeline benchmarks (tests/bench/)
#   make mutate     plant each mutant of tests/mutate/mutants.txt, run its unit tests, score
#   make demo       the live demo (scripts/demo.sh); make demo-python: its Python flavour
#   make install    binaries, header, pkg-config file, unit, examples, manual pages, guides
#                   (PREFIX=/usr/local, DESTDIR; see "install" below); make uninstall
#   make deb        a Debian package in $(BUILD)/deb (scripts/mkdeb.sh)
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

LDLIBS  := -Wl,--as-needed -lpaho-mqtt3as -luring -lyaml -lpcre2-8 -ljansson -lmicrohttpd -ldl -lm \
           -lpthread
# the worker exports mf_* so that dlopen'ed callbacks resolve them from the executable
LDEXPORT := -rdynamic

# paho.mqtt.c: scripts/paho.sh builds Debian's paho without heap tracking into PAHO_DIR; it is
# copied to $(BUILD)/lib/mqttflow and every binary looks there first (rpath, RUNPATH: so
# LD_LIBRARY_PATH still wins), then in the system's directories. The same layout holds
# installed: PREFIX/bin and PREFIX/lib/mqttflow ($ORIGIN for binaries beside the library).
# Beside the library: paho.BUILD-INFO (source version and options) and paho.copyright.
# Without the private build it links Debian's paho and says so loudly (README.md "paho.mqtt.c").
PAHO_DIR   ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mqttflow/paho
PAHO_SO    := libpaho-mqtt3as.so.1
PAHO_PRIV  := $(wildcard $(PAHO_DIR)/lib/$(PAHO_SO))
PAHO_STAGE := $(if $(PAHO_PRIV),$(BUILD)/lib/mqttflow/$(PAHO_SO),paho-system-warning)
RPATH_BIN  := -Wl,-rpath,'$$ORIGIN/../lib/mqttflow:$$ORIGIN/../../lib/mqttflow:$$ORIGIN'
RPATH_TEST := -Wl,-rpath,'$$ORIGIN/../../lib/mqttflow'

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

# Python callbacks (common/pyshim.h): embedded CPython lives in its own shared object, beside
# the binaries, which links Debian's libpython3 (pkg-config python3-embed); only a process
# whose config names a Python callback dlopens it. boot.py is compiled in as a C string.
PY_CFLAGS := $(shell pkg-config --cflags python3-embed 2>/dev/null)
PY_LIBS   := $(shell pkg-config --libs python3-embed 2>/dev/null)
PYSHIM    := $(BUILD)/bin/mqttflow-python.so


.PHONY: all test asan check format format-check bench demo fuzz clean install uninstall deb man mutate-check
# keep test objects (make would delete them as intermediates and rebuild them every time)
.SECONDARY:
all: $(PAHO_STAGE) $(BINS) $(TESTS) $(TOOLS) $(BENCHES) $(TESTCB) $(EXAMPLECB) $(PYSHIM) man

$(BUILD)/lib/mqttflow/$(PAHO_SO): $(PAHO_PRIV)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  PAHO    $@ (private build, $(PAHO_DIR))")
	$(Q)cp $< $@.tmp && mv $@.tmp $@
	$(Q)for f in BUILD-INFO copyright; do \
		[ ! -f $(PAHO_DIR)/$$f ] || cp $(PAHO_DIR)/$$f $(dir $@)paho.$$f; done
.PHONY: paho-system-warning
paho-system-warning:
	@rm -f $(BUILD)/lib/mqttflow/$(PAHO_SO) $(BUILD)/lib/mqttflow/paho.*
	@echo "WARNING: no private paho build in $(PAHO_DIR): linking Debian's libpaho-mqtt" >&2
	@echo "WARNING: (heap tracking on every malloc/free, 1.3-1.6x slower). Run scripts/setup.sh." >&2

$(BUILD)/gen/boot_py.h: workers/python/boot.py
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  GEN     $@")
	$(Q){ echo 'static const char boot_py[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' -e 's/$$/\\n"/' $<; echo ';'; } >$@
PYSHIM_SRCS := $(wildcard workers/python/*.c)
$(PYSHIM): $(PYSHIM_SRCS) workers/python/pyshim_int.h $(BUILD)/gen/boot_py.h common/pyshim.h \
		common/mqttflow.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  PYSHIM  $@")
	$(Q)$(CC) $(filter-out -MMD -MP,$(CFLAGS)) $(LDSAN) -shared -I$(BUILD)/gen $(PY_CFLAGS) \
		-o $@ $(PYSHIM_SRCS) $(PY_LIBS)

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

# a group: the CLI (supervisor) uses the router's topic matcher for `mqttflow tap --topic`
define BIN_RULE
$(BIN_$(1)): $(BUILD)/obj/$(1)/main.o $(ALL_LIBS)
	@mkdir -p $$(dir $$@)
	@$(if $(Q),echo "  LD      $$@")
	$(Q)$(CC) $(LDSAN) -pthread $(if $(filter workers supervisor,$(1)),$(LDEXPORT)) $$(RPATH_BIN) -o $$@ $$< \
		-Wl,--start-group $(ALL_LIBS) -Wl,--end-group $(LDLIBS)
endef
$(foreach s,$(STAGES),$(eval $(call BIN_RULE,$(s))))

# the supervisor exports mf_* too (-rdynamic above): `mqttflow try` runs callbacks in-process,
# with the router's and the workers' modules (hence the link group: supervisor/try.c uses
# libraries listed before its own).
VERSION := $(shell cat VERSION)
$(BUILD)/obj/supervisor/version.o: override CFLAGS += -DMF_VERSION='"$(VERSION)"' \
	-DMF_URING_BUILD_VERSION='"$(shell pkg-config --modversion liburing 2>/dev/null)"'
$(BUILD)/obj/supervisor/version.o: VERSION

# tests, tools and benches: one .c each, linked against every library. Tests export mf_*
# too, so the worker tests can dlopen real callback modules.
$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(ALL_LIBS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDSAN) -pthread $(LDEXPORT) $(RPATH_TEST) -o $@ $< $(ALL_LIBS) -lcmocka $(LDLIBS)

# callback modules are built the way users build them: this one header, nothing else
CBFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -O2 -g -shared -fPIC -Icommon
$(BUILD)/tests/callbacks/%.so: tests/callbacks/%.c common/mqttflow.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CB      $@")
	$(Q)$(CC) $(CBFLAGS) $(if $(filter 1,$(WERROR)),-Werror) -o $@ $<
# test modules that share a file of the folder
$(BUILD)/tests/callbacks/abort_on.so $(BUILD)/tests/callbacks/hang_on.so: tests/callbacks/echo_unless.h
$(BUILD)/tests/callbacks/wrong_version.so: tests/callbacks/no_version.c
config/examples/callbacks/%.so: config/examples/callbacks/%.c config/examples/callbacks/example_number.h common/mqttflow.h
	@$(if $(Q),echo "  CB      $@")
	$(Q)$(CC) $(CBFLAGS) $(if $(filter 1,$(WERROR)),-Werror) -o $@ $<

# ---- manual pages: mqttflow(1) from docs/man, mqttflow.yaml(5) from the reference config
MANPAGES := $(BUILD)/man/mqttflow.1 $(BUILD)/man/mqttflow.yaml.5
man: $(MANPAGES)
$(BUILD)/man/mqttflow.yaml.5: config/examples/reference.yaml scripts/ref2man.py VERSION
	@mkdir -p $(dir $@)
	$(Q)python3 scripts/ref2man.py $< $(VERSION) >$@.tmp && mv $@.tmp $@
$(BUILD)/man/mqttflow.1: docs/man/mqttflow.1.in VERSION
	@mkdir -p $(dir $@)
	$(Q)$(SUBST) $< >$@

# ---- install (GNU conventions: PREFIX, DESTDIR; the directory variables below).
# bin/mqttflow is the command (bin/mqttflow-launch the launch script, under a name of its
# own so the two never collide); the stage binaries go to libexec/mqttflow, where the
# supervisor finds them relative to its own path (so LIBEXECDIR is not a variable: it is
# always BINDIR/../libexec/mqttflow). A private build of a library the stages link (e.g.
# paho, $(BUILD)/lib/mqttflow) goes to PREFIX/lib/mqttflow. The examples (configs, callback
# sources, their .so and a Makefile) go to DATADIR/mqttflow/examples, so `mqttflow check`
# passes on the installed example. No file under SYSCONFDIR is installed: the unit runs
# SYSCONFDIR/mqttflow/config.yaml, which the operator writes.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
INCLUDEDIR ?= $(PREFIX)/include
DATADIR    ?= $(PREFIX)/share
MANDIR     ?= $(DATADIR)/man
DOCDIR     ?= $(DATADIR)/doc/mqttflow
PKGCONFIGDIR ?= $(DATADIR)/pkgconfig
SYSCONFDIR ?= $(PREFIX)/etc
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
LIBEXECDIR := $(BINDIR)/../libexec/mqttflow
PRIVLIBDIR := $(PREFIX)/lib/mqttflow
EXAMPLEDIR := $(DATADIR)/mqttflow/examples
API_VERSION := $(shell sed -n 's/^\#define MF_API_VERSION \([0-9]*\).*/\1/p' common/mqttflow.h)
SUBST = sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@API_VERSION@|$(API_VERSION)|g' \
	-e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	-e 's|@DATADIR@|$(DATADIR)|g' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g'
DOCS := README.md $(wildcard docs/*.md)
STAGE_BINS := $(filter-out $(BIN_supervisor),$(BINS))

install: $(BINS) $(EXAMPLECB) $(MANPAGES)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(INCLUDEDIR) \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 \
		$(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(EXAMPLEDIR)/callbacks
	install -m 0755 $(BIN_supervisor) $(DESTDIR)$(BINDIR)/mqttflow
	install -m 0755 scripts/mqttflow-launch $(DESTDIR)$(BINDIR)/mqttflow-launch
	install -m 0755 $(STAGE_BINS) $(DESTDIR)$(LIBEXECDIR)/
	if [ -d $(BUILD)/lib/mqttflow ]; then install -d $(DESTDIR)$(PRIVLIBDIR) && \
		cp -RP $(BUILD)/lib/mqttflow/. $(DESTDIR)$(PRIVLIBDIR)/; fi
	if [ -f $(PYSHIM) ]; then install -d $(DESTDIR)$(PRIVLIBDIR) && \
		install -m 0644 $(PYSHIM) $(DESTDIR)$(PRIVLIBDIR)/; fi
	install -m 0644 common/mqttflow.h $(DESTDIR)$(INCLUDEDIR)/mqttflow.h
	$(SUBST) scripts/mqttflow.pc.in >$(DESTDIR)$(PKGCONFIGDIR)/mqttflow.pc
	$(SUBST) scripts/mqttflow.service >$(DESTDIR)$(SYSTEMDUNITDIR)/mqttflow.service
	chmod 0644 $(DESTDIR)$(PKGCONFIGDIR)/mqttflow.pc $(DESTDIR)$(SYSTEMDUNITDIR)/mqttflow.service
	install -m 0644 $(BUILD)/man/mqttflow.1 $(DESTDIR)$(MANDIR)/man1/mqttflow.1
	install -m 0644 $(BUILD)/man/mqttflow.yaml.5 $(DESTDIR)$(MANDIR)/man5/mqttflow.yaml.5
	install -m 0644 $(DOCS) $(DESTDIR)$(DOCDIR)/
	install -m 0644 config/examples/config.yaml config/examples/reference.yaml \
		$(DESTDIR)$(EXAMPLEDIR)/
	install -m 0644 config/examples/callbacks/*.c config/examples/callbacks/*.h config/examples/callbacks/Makefile \
		$(DESTDIR)$(EXAMPLEDIR)/callbacks/
	install -m 0644 $(EXAMPLECB) $(DESTDIR)$(EXAMPLEDIR)/callbacks/
	install -d $(DESTDIR)$(EXAMPLEDIR)/python
	install -m 0644 config/examples/python/*.yaml config/examples/python/*.py \
		$(DESTDIR)$(EXAMPLEDIR)/python/

# removes what install put there, and the folders that were only ours
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/mqttflow $(DESTDIR)$(BINDIR)/mqttflow-launch \
		$(DESTDIR)$(INCLUDEDIR)/mqttflow.h \
		$(DESTDIR)$(PKGCONFIGDIR)/mqttflow.pc $(DESTDIR)$(SYSTEMDUNITDIR)/mqttflow.service \
		$(DESTDIR)$(MANDIR)/man1/mqttflow.1 $(DESTDIR)$(MANDIR)/man5/mqttflow.yaml.5
	rm -rf $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(PRIVLIBDIR) $(DESTDIR)$(DATADIR)/mqttflow \
		$(DESTDIR)$(DOCDIR)

deb: $(BINS) $(EXAMPLECB) $(MANPAGES)
	$(Q)BUILD=$(BUILD) scripts/mkdeb.sh

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
# no product function longer than 100 lines (issue 9; scripts/funclen.sh)
.PHONY: funclen-check
funclen-check:
	$(Q)scripts/funclen.sh

# the fuzz run first, so the last line of a check is the test runner's summary
check: format-check funclen-check mutate-check
	$(Q)$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$${FUZZ_SECONDS:-5}
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan SAN=1 OPT=-O1 test

# libFuzzer targets: tests/fuzz/fuzz_<name>.c for each name in FUZZ_TARGETS. A new target joins
# with one word here (and its file); seeds, if any, in tests/fuzz/seeds-<name>/ (the config
# loader's are in tests/fuzz/seeds/). clang compiles the target with the sources it may use.
#   make fuzz         each target for FUZZ_SECONDS (make check: a short run of each)
#   make fuzz-soak    each target for FUZZ_RUNS executions (default 1,000,000), the counts at the end
FUZZ_TARGETS ?= cfg rec topic expr spool mqtt_pkt
FUZZ_SECONDS ?= 5
FUZZ_RUNS    ?= 1000000
FUZZ_SRCS := $(call srcs_of,config) $(call srcs_of,common) router/topic.c
FUZZ_BINS := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_TARGETS))
# shell: the seed folder of target $$t, if it has one
FUZZ_SEED_SH = seeds=; [ -d tests/fuzz/seeds-$$t ] && seeds=tests/fuzz/seeds-$$t; \
	[ $$t = cfg ] && seeds=tests/fuzz/seeds;
FUZZ_FLAGS := -max_len=65536 -timeout=10 -rss_limit_mb=2048
.PHONY: fuzz-soak
fuzz: $(FUZZ_BINS)
	$(Q)for t in $(FUZZ_TARGETS); do $(FUZZ_SEED_SH) \
		mkdir -p $(BUILD)/fuzz/corpus-$$t && \
		echo "  FUZZ    $$t ($(FUZZ_SECONDS) s)" && \
		$(BUILD)/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) $(FUZZ_FLAGS) \
			$(BUILD)/fuzz/corpus-$$t $$seeds \
			2>$(BUILD)/fuzz/$$t.log || { tail -n 40 $(BUILD)/fuzz/$$t.log; exit 1; }; \
		grep -E '^Done [0-9]+ runs' $(BUILD)/fuzz/$$t.log | tail -n 1; \
	done
fuzz-soak: $(FUZZ_BINS)
	$(Q)for t in $(FUZZ_TARGETS); do $(FUZZ_SEED_SH) \
		mkdir -p $(BUILD)/fuzz/corpus-$$t && \
		$(BUILD)/fuzz/fuzz_$$t -runs=$(FUZZ_RUNS) $(FUZZ_FLAGS) \
			$(BUILD)/fuzz/corpus-$$t $$seeds \
			2>$(BUILD)/fuzz/$$t-soak.log || { tail -n 40 $(BUILD)/fuzz/$$t-soak.log; exit 1; }; \
		echo "  SOAK    $$t: $$(grep -E '^Done [0-9]+ runs' $(BUILD)/fuzz/$$t-soak.log | tail -n 1)"; \
	done
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_SRCS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)clang $(CSTD) -g -O1 -fsanitize=fuzzer,address,undefined -Icommon -Iconfig -I. \
		-o $@ $^ $(LDLIBS)

bench: all
	$(Q)BUILD=$(BUILD) tests/bench/run.sh

# mutation testing: builds into build-mutate (never $(BUILD)), restores every file it mutates
.PHONY: mutate
mutate:
	$(Q)tests/mutate/mutate.sh

# every mutant of the list still applies to the tree (a refactoring that moves its text makes
# it STALE: mend the entry); no build, a second
mutate-check:
	$(Q)tests/mutate/mutate.sh --check

demo: all
	$(Q)BUILD=$(BUILD) scripts/demo.sh

# the same demo with the example's four callbacks in Python (config/examples/python/)
.PHONY: demo-python
demo-python: all
	$(Q)BUILD=$(BUILD) DEMO_CONFIG=config/examples/python/config.yaml scripts/demo.sh

clean:
	rm -rf $(BUILD) build-asan $(EXAMPLECB)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
