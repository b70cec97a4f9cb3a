demo:
	scripts/bootstrap.sh --demo
	.venv/bin/aither demo

test:
	scripts/test.sh

.PHONY: demo test
