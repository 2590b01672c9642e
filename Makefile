# Two commands on a fresh machine: `make study` and `make test`. Each sets up .venv first
# when it is missing (torch and torchvision come from the machine's local disk).
PY := .venv/bin/python
export HF_HUB_OFFLINE := 1

.PHONY: setup test study lint cluster-local cluster-local-stop

# constraints.txt holds torch's CUDA libraries at the releases on the machine's disk; a download
# cut off mid-way is resumed, and the whole install tried up to three times.
.venv/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3.11 -m venv .venv || python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	for try in 1 2 3; do \
	  $(PY) -m pip install --quiet --resume-retries 20 -c constraints.txt -e ".[dev]" && break; \
	  test $$try -lt 3 || exit 1; sleep 10; \
	done
	touch .venv/.installed

setup: .venv/.installed

test: .venv/.installed
	$(PY) -m pytest

# The batch-size study on the embedded mnist5k: runs/batch_size/ and mlflow.db. Run again, it
# resumes (or just re-tabulates) the study already there instead of refusing to overwrite it.
study: .venv/.installed
	$(PY) studies/batch_size.py $(if $(wildcard runs/batch_size/tuner.pkl),--resume,)

# ruff, and the import layers (pyproject.toml, [tool.importlinter]).
lint: .venv/.installed
	$(PY) -m ruff check imbtrain tests studies benchmarks
	.venv/bin/lint-imports --no-cache

# A local autoscaling Ray cluster to rehearse a study on (cluster-local.yaml, Ray's fake
# multi-node provider, 127.0.0.1 only); it prints the `ray job submit` line of a study.
# cluster-local-stop stops the processes it started, nothing else (docs/cluster.md).
cluster-local: .venv/.installed
	.venv/bin/imbtrain cluster-local start

cluster-local-stop: .venv/.installed
	.venv/bin/imbtrain cluster-local stop
