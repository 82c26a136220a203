# imgclassd — build, test and run.
#   make            build the engine library, the imgclass tool and the tests
#   make test       every test: unit suites, ONNX conformance, real models
#   make asan       the same tests under AddressSanitizer + UBSan
#   make deps       install missing Debian packages (no-op when all present)
#   make run        serve models/ on port 8080 (conf/imgclassd.json)

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
TEST_SRC   := $(wildcard tests/test_*.c)
TESTS      := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
TEST_UTIL  := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/util/*.c))
# Tests that drive real outside programs (Prometheus, HAProxy) are scripts.
TEST_SCRIPTS := $(wildcard tests/test_*.sh)

DEB_PACKAGES := build-essential pkg-config clang libclang-rt-14-dev libopenblas-dev libprotobuf-c-dev \
    protobuf-c-compiler libonnx-dev libonnx-testdata check python3-numpy \
    python3-torch python3-torchvision python3-onnx python3-pil \
    libmicrohttpd-dev libuv1-dev libjansson-dev libturbojpeg0-dev libspng-dev \
    libsystemd-dev libcurl4-openssl-dev dataset-fashion-mnist prometheus zlib1g-dev \
    python3-yaml python3-jsonschema haproxy wrk curl systemd

.PHONY: all test unit conformance asan deps clean models run bench lint deploy-check
.SECONDARY:
all: $(BUILD)/imgclassd $(BUILD)/imgclass $(BUILD)/conformance $(TESTS)

$(GEN): $(ONNX_PROTO)
	@mkdir -p $(dir $@)
	protoc-c --c_out=$(BUILD)/gen -I$(dir $(ONNX_PROTO)) $(ONNX_PROTO)

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

unit: $(TESTS) $(BUILD)/imgclass $(BUILD)/imgclassd
	@set -e; for t in $(TESTS) $(TEST_SCRIPTS); do \
	  echo "== $$t"; IMGCLASS_MODELS=$(MODELS_DIR) IMGCLASS_SHARED=$(SHARED) \
	  IMGCLASS_TOOL=$(BUILD)/imgclass IMGCLASSD=$(BUILD)/imgclassd \
	  $$(case $$t in *.sh) echo bash;; esac) $$t; done

conformance: $(BUILD)/conformance
	$(BUILD)/conformance --skips tests/conformance_skips.txt

# Suites run one after the other so their reports stay readable.
test: all models
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory conformance

# A failed allocation must come back as NULL (and an error), as in production.
asan:
	ASAN_OPTIONS=allocator_may_return_null=1 $(MAKE) BUILD=build-asan CC=clang OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" test

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	else echo "all build and test packages are installed"; fi

# The daemon on the embedded default model (models/fashion-mnist), port 8080.
run: $(BUILD)/imgclassd
	$(BUILD)/imgclassd -c conf/imgclassd.json

# The container build script and its runtime libraries, and the systemd
# unit (systemd-analyze verify, security exposure <= 2.5).
deploy-check: $(BUILD)/imgclassd
	bash docker/build.sh --stage $(BUILD)/stage --build-dir $(BUILD)
	BUILD=$(BUILD) bash tests/tools/check_runtime_deps.sh
	bash tests/tools/check_systemd_unit.sh $(BUILD)/imgclassd

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
