demo:
	scripts/bootstrap.sh
	.venv/bin/aither demo

test:
	scripts/test.sh

.PHONY: demo test
