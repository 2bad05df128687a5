# One chat room, four server designs. `make help` lists the targets.
#
# Everything builds in release mode into ./target/release, so the binary a student runs,
# the one the grader tests and the one the benchmark measures are the same file.

CARGO ?= cargo
BENCH ?= full

STEPS := step1_naive step2_threads step3_pool step4_poll

.PHONY: all help step1 step2 step3 step4 client loadgen \
        test test-step1 test-step2 test-step3 test-step4 test-client test-tools \
        bench clean

all: ## Build every server, the client and the tools (release)
	$(CARGO) build --release --workspace

help: ## List the targets
	@grep -E '^[a-z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# A part that is still the empty skeleton says so instead of failing obscurely.
define need
	@grep -q 'fn main() {}' $(1)/src/main.rs 2>/dev/null && { echo "$(1) is not written yet: its src/main.rs is still the empty skeleton"; exit 1; } || true
endef

step1: ## Build step 1: one thread, a busy loop over non-blocking sockets
	$(call need,step1_naive)
	$(CARGO) build --release -p step1_naive

step2: ## Build step 2: a thread per connection, fan-out through mpsc channels
	$(call need,step2_threads)
	$(CARGO) build --release -p step2_threads

step3: ## Build step 3: step 2 with a hand-written pool of pre-created threads
	$(call need,step3_pool)
	$(CARGO) build --release -p step3_pool

step4: ## Build step 4: one thread, poll(2) through a hand-written FFI
	$(call need,step4_poll)
	$(CARGO) build --release -p step4_poll

client: ## Build the terminal client
	$(call need,client)
	$(CARGO) build --release -p client

loadgen: ## Build the load generator
	$(call need,loadgen)
	$(CARGO) build --release -p loadgen

# The extension scenarios (grader/EXTENSIONS.md) fail on the untouched steps by design, so the
# test targets leave them out (`--skip`) and say in one line per extension how to run them.
EXTENSIONS := join-leave who priv nick rate-limit idle-cpu pool-grows
SKIP_EXTENSIONS := $(foreach ex,$(EXTENSIONS),--skip ext_$(subst -,_,$(ex))_)
define extensions_note
	@echo "Not run here: the extension scenarios of the graded tasks (exercises.md), one command each:"
	@for ex in $(EXTENSIONS); do echo "  make grade EX=$$ex STEP=$(1)"; done
endef

test: ## Run the whole suite: the grader against every step, the client, the tools
	@command -v tmux >/dev/null || echo "NOTE: tmux is not installed, the client's terminal test will be skipped (apt-get install tmux)"
	$(CARGO) test --release --workspace -- $(SKIP_EXTENSIONS)
	$(call extensions_note,<step1|step2|step3|step4>)

test-step1: ## Grade step 1 only
	$(CARGO) test --release -p step1_naive -- $(SKIP_EXTENSIONS)
	$(call extensions_note,step1)

test-step2: ## Grade step 2 only
	$(CARGO) test --release -p step2_threads -- $(SKIP_EXTENSIONS)
	$(call extensions_note,step2)

test-step3: ## Grade step 3 only
	$(CARGO) test --release -p step3_pool -- $(SKIP_EXTENSIONS)
	$(call extensions_note,step3)

test-step4: ## Grade step 4 only
	$(CARGO) test --release -p step4_poll -- $(SKIP_EXTENSIONS)
	$(call extensions_note,step4)

test-client: ## Test the client (plain mode through pipes, terminal mode in tmux)
	$(CARGO) test --release -p client

test-tools: ## Test the grader, the load generator and their kit themselves
	$(CARGO) test --release -p grader -p loadgen -p kit

# Runs one extension's scenarios (grader/EXTENSIONS.md) against one step: its tests named
# ext_<extension>_*, which are `#[ignore]`d everywhere else.
.PHONY: grade
grade: ## Grade an exercise: make grade EX=who STEP=step4 (EX: see exercises.md)
	@if [ -z "$(EX)" ] || [ -z "$(STEP)" ]; then \
		echo "usage: make grade EX=<extension> STEP=<step1|step2|step3|step4>"; \
		echo "extensions: $(EXTENSIONS)   (grader/EXTENSIONS.md defines each)"; exit 2; fi
	@case " $(EXTENSIONS) " in *" $(EX) "*) ;; *) \
		echo "unknown extension '$(EX)'; extensions: $(EXTENSIONS)"; exit 2;; esac
	@case " $(STEPS) " in *" $(STEP)_"*) ;; *) \
		echo "unknown step '$(STEP)'; steps: step1 step2 step3 step4"; exit 2;; esac
	$(CARGO) test --release -p $(filter $(STEP)_%,$(STEPS)) --test extensions -- --ignored ext_$(subst -,_,$(EX))_

# Runs go to bench/runs/ (ignored by git); bench/reference/ holds the committed report, which
# this target never writes.
bench: ## Measure all four steps into bench/runs/ (about 12 minutes; BENCH=quick: about 2)
	$(call need,loadgen)
	$(CARGO) build --release --workspace
	./target/release/loadgen bench $(if $(filter quick,$(BENCH)),--quick) --out bench/runs

clean: ## Remove build output (keeps bench/reference/, the committed report)
	$(CARGO) clean
