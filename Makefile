# One entry point for everyday tasks. The scripts do the work; see README.md.
.PHONY: up down test lint fmt

up:    ## bring the local stack up and run the demo
	scripts/up.sh
down:  ## stop the local stack
	scripts/down.sh
test:  ## every test, as CI runs it
	scripts/test.sh
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
fmt:
	cargo fmt --all
