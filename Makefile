# Thin driver around CMake. The two set-up commands of the README:
#   make quickstart   install deps, build, run the main job on the built-in demo data
#   make test         install deps, build, run every test suite (normal + ASan/UBSan builds)
# Both install missing Debian packages first (scripts/install-deps.sh, quiet when present).

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all deps build build-asan quickstart test check check-asan install clean format

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS) >/dev/null

build: deps $(BUILD)/CMakeCache.txt
	@cmake --build $(BUILD) -j $(JOBS)

$(ASAN_BUILD)/CMakeCache.txt:
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMELFORGE_SANITIZE=ON $(CMAKE_ARGS) >/dev/null

build-asan: deps $(ASAN_BUILD)/CMakeCache.txt
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

# The main job on the demo data (grows with the issues: synth -> extract -> train -> report).
quickstart: build
	@bash scripts/quickstart.sh $(BUILD)

# Every suite, in the optimised build and under AddressSanitizer + UBSan.
test: build build-asan
	@bash scripts/run-tests.sh $(BUILD) $(ASAN_BUILD)

# Faster loop while developing: the optimised build only.
check: build
	@cd $(BUILD) && ctest --output-on-failure -j 2

check-asan: build-asan
	@bash scripts/run-tests.sh "" $(ASAN_BUILD)

install: build
	@cmake --install $(BUILD)

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
