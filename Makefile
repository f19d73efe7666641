# Thin wrapper around CMake. `make test` and `make demo` install missing
# build dependencies first (scripts/install-deps.sh).
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all deps configure build test demo fuzz clean

all: build

deps:
	@bash scripts/install-deps.sh

configure:
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) > $(BUILD).configure.log 2>&1 || (cat $(BUILD).configure.log; exit 1)
	@grep "mamba-s6:" $(BUILD).configure.log || true

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: deps build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: deps build
	@bash scripts/demo.sh $(BUILD)

fuzz:
	@MS6_DEV_DEPS=1 bash scripts/install-deps.sh
	@cmake -S . -B build-fuzz -DMS6_FUZZ=ON -DMS6_CUDA=OFF -DCMAKE_C_COMPILER=clang > /dev/null
	@cmake --build build-fuzz -j $(JOBS)
	@bash scripts/fuzz.sh build-fuzz

clean:
	rm -rf $(BUILD) $(BUILD).configure.log build-fuzz
