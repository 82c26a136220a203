# imgclassd — build, test and run.
#   make            build the engine library, the imgclass tool and the tests
#   make run        install missing packages, build, serve models/ on port 8080
#   make test       install missing packages, build, run every test (tests/run.sh)
#   make asan       the same tests under AddressSanitizer + UBSan
#   make deps       install every missing Debian package (build, tests, deploy-check)
#   make deploy-check   container build, runtime libraries, systemd unit (booted too)
#   make include-graph  src/'s modules: include and link dependencies, cycles

CC       ?= gcc
BUILD    ?= build
OPT      ?= -O2
SAN      ?=
CFLAGS   += -std=c11 $(OPT) -g -Wall -Wextra -Werror -D_GNU_SOURCE \
            -fno-math-errno $(SAN) -Iinclude -Isrc -I$(BUILD)/gen
LDFLAGS  += $(SAN)
LIBS     := -lprotobuf-c -lopenblas -lpthread -lm
CLASSIFY_LIBS := -ljansson -lturbojpeg -lspng
SERVER_LIBS := -lmicrohttpd -luv -lsystemd $(CLASSIFY_LIBS)
TEST_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck) -lcurl -lz
PYTHON   ?= /usr/bin/python3
SHARED   ?= ../shared

ONNX_PROTO := /usr/include/onnx/onnx.proto
GEN        := $(BUILD)/gen/onnx.pb-c.c
# The layers, bottom up (see README "How it works"): the engine, the
# classification library (decode, preprocess, a model folder: imgclass
# links only these), the daemon (serve, obs, http and the loop).
NN_SRC     := $(wildcard src/nn/*.c src/nn/ops/*.c src/util/*.c)
NN_OBJ     := $(patsubst %.c,$(BUILD)/%.o,$(NN_SRC)) $(BUILD)/gen/onnx.pb-c.o
CLASSIFY_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard src/classify/*.c))
TOOL_SRC   := $(wildcard src/tools/*.c)
SERVER_SRC := $(filter-out src/main.c,$(wildcard src/*.c src/serve/*.c src/obs/*.c src/http/*.c))
SERVER_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(SERVER_SRC))
LIBS_CLASSIFY := $(BUILD)/libclassify.a $(BUILD)/libnn.a
# Suites: tests/**/test_*.c, each built as $(BUILD)/tests/**/test_* (tests/run.sh
# finds them, and the script tests tests/**/test_*.sh, the same way).
TEST_SRC   := $(sort $(shell find tests -name 'test_*.c' -not -path 'tests/util/*' 2>/dev/null))
TESTS      := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
TEST_UTIL  := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/util/*.c))
$(BUILD)/tests/%.o: CFLAGS += -Itests

.PHONY: all test unit conformance asan clean models run bench lint deploy-check include-graph
.SECONDARY:
all: $(BUILD)/imgclassd $(BUILD)/imgclass $(BUILD)/conformance $(TESTS)

# ---- Debian packages: `make run` installs what DEB_RUN lacks, `make test` DEB_RUN and
# DEB_TEST, `make deploy-check` DEB_RUN and DEB_DEPLOY, `make deps` all of them
# (tools/deps.sh: silent when nothing is missing; not root: says what to run).
DEB_RUN    := build-essential pkg-config libopenblas-dev libprotobuf-c-dev protobuf-c-compiler \
    libonnx-dev libmicrohttpd-dev libuv1-dev libjansson-dev libturbojpeg0-dev libspng-dev \
    libsystemd-dev
DEB_TEST   := clang libclang-rt-14-dev libonnx-testdata check python3 python3-numpy \
    python3-torch python3-torchvision python3-onnx python3-pil libcurl4-openssl-dev \
    dataset-fashion-mnist prometheus zlib1g-dev python3-yaml python3-jsonschema haproxy wrk \
    curl systemd
DEB_DEPLOY := python3 systemd systemd-container mmdebstrap
DEB_PACKAGES := $(sort $(DEB_RUN) $(DEB_TEST) $(DEB_DEPLOY))
DEPS_GOAL  ?= $(or $(MAKECMDGOALS),all)

.PHONY: deps deps-run deps-test deps-deploy
deps:
	@tools/deps.sh "make deps" $(DEB_PACKAGES) && echo "all build, test and deploy-check packages are installed"
deps-run:
	@tools/deps.sh "make $(DEPS_GOAL)" $(DEB_RUN)
deps-test:
	@tools/deps.sh "make $(DEPS_GOAL)" $(DEB_RUN) $(DEB_TEST)
deps-deploy:
	@tools/deps.sh "make $(DEPS_GOAL)" $(DEB_RUN) $(DEB_DEPLOY)
# ---- end of Debian packages

$(GEN): $(ONNX_PROTO)
	@mkdir -p $(dir $@)
	protoc-c --c_out=$(BUILD)/gen -I$(dir $(ONNX_PROTO)) $(ONNX_PROTO)
$(ONNX_PROTO):
	@echo "no $@: it comes with Debian's libonnx-dev (make deps, or make run / make test, install it)" >&2; exit 1

$(BUILD)/gen/onnx.pb-c.o: $(GEN)
	$(CC) $(filter-out -Werror,$(CFLAGS)) -w -c $< -o $@

$(BUILD)/%.o: %.c $(GEN)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libnn.a: $(NN_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libclassify.a: $(CLASSIFY_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libserver.a: $(SERVER_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/imgclassd: $(BUILD)/src/main.o $(BUILD)/libserver.a $(LIBS_CLASSIFY)
	$(CC) $(LDFLAGS) -o $@ $^ $(SERVER_LIBS) $(LIBS)

# The offline tool: the classification library and the engine, no daemon.
$(BUILD)/imgclass: $(patsubst %.c,$(BUILD)/%.o,$(TOOL_SRC)) $(LIBS_CLASSIFY)
	$(CC) $(LDFLAGS) -o $@ $^ $(CLASSIFY_LIBS) $(LIBS)

$(BUILD)/conformance: $(BUILD)/tests/conformance.o $(TEST_UTIL) $(BUILD)/libnn.a
	$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LIBS) $(LIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_UTIL) $(BUILD)/libserver.a $(LIBS_CLASSIFY)
	$(CC) $(LDFLAGS) -o $@ $^ $(TEST_LIBS) $(SERVER_LIBS) $(LIBS)

# Real torchvision architectures with PyTorch's own outputs (ignored folder).
MODELS_DIR := build-models
models: $(MODELS_DIR)/.done
$(MODELS_DIR)/.done: tools/export_torchvision.py
	$(PYTHON) tools/export_torchvision.py --out $(MODELS_DIR)
	touch $@

conformance: $(BUILD)/conformance
	$(BUILD)/conformance --skips tests/conformance_skips.txt

# ---- set-up, build, run: each goal installs what is missing first, then builds in
# a sub-make, which reads the rules (onnx.proto's) once the packages are there.
# tests/run.sh runs every suite and script test one after the other (readable
# reports; -j is for building), each under a time limit, keeps going after a
# failure and ends with "N passed, N failed, N skipped". SHARED: ../shared's
# place; the tests that need it are skipped (and counted) where it is not.
TEST_TIMEOUT ?= 900
RUN_TESTS   = tests/run.sh --build $(BUILD) --shared $(SHARED) --models $(MODELS_DIR) \
              --timeout $(TEST_TIMEOUT)
test: deps-test
	@$(MAKE) --no-print-directory all models
	@$(RUN_TESTS)
unit: deps-test
	@$(MAKE) --no-print-directory $(TESTS) $(BUILD)/imgclass $(BUILD)/imgclassd
	@$(RUN_TESTS) --no-conformance

# A failed allocation must come back as NULL (and an error), as in production.
asan:
	ASAN_OPTIONS=allocator_may_return_null=1 $(MAKE) BUILD=build-asan CC=clang OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
	  DEPS_GOAL=asan test

# The daemon on the embedded default model (models/fashion-mnist), port 8080.
run: deps-run
	@$(MAKE) --no-print-directory $(BUILD)/imgclassd
	$(BUILD)/imgclassd -c conf/imgclassd.json

# The container build script and its runtime libraries, the systemd unit
# (systemd-analyze verify, security exposure <= 2.5), then as root: the unit
# booted under systemd-nspawn in a minimal Debian 12 (its life cycle, about
# 1 min) and the Dockerfile's image built and run without Docker (about
# 1 min); the first run makes a minbase tarball with mmdebstrap (about 1 min).
# A check that cannot run here (not root; no SHARED) says why and exits 77,
# or 78 when it ran in part: neither fails deploy-check.
SKIP_OK = || { rc=$$?; [ $$rc = 77 ] || [ $$rc = 78 ] || exit $$rc; }
deploy-check: deps-deploy
	@$(MAKE) --no-print-directory $(BUILD)/imgclassd
	bash docker/build.sh --stage $(BUILD)/stage --build-dir $(BUILD)
	BUILD=$(BUILD) bash tests/tools/check_runtime_deps.sh
	bash tests/tools/check_systemd_unit.sh $(BUILD)/imgclassd
	IMGCLASS_SHARED=$(SHARED) bash tests/tools/check_systemd_boot.sh $(BUILD)/imgclassd $(SKIP_OK)
	IMGCLASS_SHARED=$(SHARED) $(PYTHON) tests/tools/check_container_rootfs.py $(SKIP_OK)
# ---- end of set-up, build, run

# ---- the module graph of src/ (tools/depgraph.py): includes, and links from the
# objects; tests/test_layering.sh fails on a cycle.
include-graph: $(BUILD)/imgclassd $(BUILD)/imgclass
	@$(PYTHON) tools/depgraph.py --build $(BUILD) src

# openapi.yaml through Redocly's linter (npm; tools/openapi pins it).
lint:
	bash tools/openapi/lint.sh

# Side by side with ONNX Runtime (onnxruntime-node from npm); not a test.
bench: $(BUILD)/imgclass models
	[ -d bench/node_modules/onnxruntime-node ] || (cd bench && npm ci --ignore-scripts)
	IMGCLASS=$(abspath $(BUILD)/imgclass) bench/compare_ort.sh

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
