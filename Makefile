# One entry point for everyday tasks. The scripts do the work; see README.md.
.PHONY: up down test bench lint fmt

up:    ## bring the local stack up and run the demo
	scripts/up.sh
down:  ## stop the local stack
	scripts/down.sh
test:  ## every test, as CI runs it
	scripts/test.sh
bench: ## the benchmark of docs/BENCHMARKS.md (release build, about 10 minutes)
	scripts/bench.sh
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
fmt:
	cargo fmt --all
