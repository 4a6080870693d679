# featurestream: every target does its own set-up, idempotently, with caches outside the clone
# (~/.cache/pip, ~/.m2, ~/.npm) so a fresh clone on a machine that ran it once is fast.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
JARS := build/jars
export SPARK_LOCAL_IP := 127.0.0.1
export PYSPARK_PYTHON := $(CURDIR)/$(BIN)/python
export PYSPARK_DRIVER_PYTHON := $(CURDIR)/$(BIN)/python
# Runs that start Spark keep its scratch space in build/scratch/<pid>, removed when they end, even
# for jobs they kill with -9 (which never clean their /tmp folders); see the script.
SCRATCH := scripts/with-spark-scratch
# Maven's own JVM (dependency copies, javac, shade; not the JUnit JVMs it forks) lives seconds: C1
# alone and the serial collector take 6 of the 14 CPU seconds of the defaults for `package` of
# engine-jvm. The bytecode and jars are the same.
export MAVEN_OPTS ?= -XX:TieredStopAtLevel=1 -XX:+UseSerialGC

.PHONY: setup venv jars npm modules test-jvm bench-kinesis test lint unit demo stack-up stack-down clean bench-feature-store

setup: venv jars npm modules

# The venv gets the exact versions of requirements/dev.lock, then the project itself without its
# dependencies; it is rebuilt only when pyproject.toml or the lock change (the stamp records it).
venv: $(VENV)/.stamp
$(VENV)/.stamp: pyproject.toml requirements/dev.lock
	@command -v $(PY) >/dev/null || { echo "need $(PY)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade 'pip>=24'
	$(BIN)/pip install -q -r requirements/dev.lock
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $@

# AWS's Spark connector (sagemaker-feature-store-pyspark, 395 MB) only for the targets that run it:
# the suite and the writer benchmark. Under those targets its tests fail rather than skip without it.
.PHONY: aws-connector
aws-connector: $(VENV)/.aws-connector-stamp
$(VENV)/.aws-connector-stamp: requirements/aws-connector.lock $(VENV)/.stamp
	$(BIN)/pip install -q -r requirements/aws-connector.lock
	touch $@
test test-moved-clock bench-writer: export FEATURESTREAM_AWS_CONNECTOR := required

# Debian's Chromium, for the headless-browser test of the consistency report (tests/consistency):
# installed with apt-get (its ~100 library dependencies rule out unpacking one .deb) only when absent.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
.PHONY: chromium
chromium:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends chromium; }
test: export FEATURESTREAM_CHROMIUM := required

# requirements/*.lock: every package (transitive) at one version, resolved from pyproject.toml's
# ranges and requirements/dev.in by uv (pinned, in its own venv). Versions already locked stay where
# the ranges allow; `make lock UPGRADE=1` moves everything to the newest the ranges allow.
UV_VERSION := 0.13.8
UV := build/tools/uv/bin/uv
DEV_LOCK := pip compile pyproject.toml requirements/dev.in --extra spark --extra iceberg --extra dev --universal --python-version 3.11 -o requirements/dev.lock
CONNECTOR_LOCK := pip compile pyproject.toml requirements/dev.in --extra spark --extra iceberg --extra dev --extra aws-connector -c requirements/dev.lock --universal --python-version 3.11 -o requirements/aws-connector.lock
.PHONY: lock
lock: $(UV)
	$(UV) $(DEV_LOCK) -q $(if $(UPGRADE),--upgrade) --custom-compile-command "make lock  # uv $(UV_VERSION): uv $(DEV_LOCK)"
	$(UV) $(CONNECTOR_LOCK) -q --custom-compile-command "make lock  # uv $(UV_VERSION): uv $(CONNECTOR_LOCK)"
$(UV):
	$(PY) -m venv build/tools/uv
	build/tools/uv/bin/pip install -q 'uv==$(UV_VERSION)'

# JVM jars from Maven Central through the committed poms; ~/.m2 is the cache.
jars: $(JARS)/spark/.stamp $(JARS)/kafka/.stamp
$(JARS)/spark/.stamp: conf/jars/pom.xml
	rm -rf $(JARS)/spark
	mvn -q -B -Dstyle.color=never -f conf/jars/pom.xml dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$(CURDIR)/$(JARS)/spark
	touch $@
$(JARS)/kafka/.stamp: conf/jars/kafka/pom.xml
	rm -rf $(JARS)/kafka
	mvn -q -B -Dstyle.color=never -f conf/jars/kafka/pom.xml dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory=$(CURDIR)/$(JARS)/kafka
	touch $@

# Our JVM modules (the tile engine, the Kinesis source), built from source by Maven; rebuilt only
# when a source file or pom changes.
TILES_JAR := engine-jvm/target/featurestream-tiles.jar
KINESIS_JAR := connectors/kinesis-source/target/featurestream-kinesis-source.jar
modules: $(TILES_JAR) $(KINESIS_JAR)
$(TILES_JAR): engine-jvm/pom.xml $(shell find engine-jvm/src -type f 2>/dev/null)
	mvn -q -B -Dstyle.color=never -f engine-jvm/pom.xml package -DskipTests
	test -f $@
$(KINESIS_JAR): connectors/kinesis-source/pom.xml $(shell find connectors/kinesis-source/src -type f 2>/dev/null)
	mvn -q -B -Dstyle.color=never -f connectors/kinesis-source/pom.xml package -DskipTests
	test -f $@

# kinesis-local from the npm registry, pinned by package-lock.json; ~/.npm is the cache.
npm: featurestream/dev/stack/kinesis/node_modules/.package-lock.json
featurestream/dev/stack/kinesis/node_modules/.package-lock.json: featurestream/dev/stack/kinesis/package.json featurestream/dev/stack/kinesis/package-lock.json
	cd featurestream/dev/stack/kinesis && npm ci --no-audit --no-fund --prefer-offline
	touch $@

# JUnit suites of the JVM modules (fast; no services).
test-jvm: modules
	mvn -q -B -Dstyle.color=never -f engine-jvm/pom.xml test
	mvn -q -B -Dstyle.color=never -f connectors/kinesis-source/pom.xml test

lint: venv
	$(BIN)/ruff check featurestream jobs tests bench dags
	$(BIN)/mypy featurestream jobs
	$(BIN)/lint-imports --config .importlinter
	$(BIN)/shellcheck scripts/with-spark-scratch scripts/with-moved-clock docker/entrypoint.sh .ci/run

# The suite starts the real services itself (session fixtures) and stops what it started.
test: setup lint test-jvm aws-connector chromium
	$(SCRATCH) $(BIN)/python -m pytest -q -p no:cacheprovider --durations=25 tests

# The unit tier: every test that needs no service (tests/conftest.py marks the others `integration`
# from their fixtures), on one bare local Spark; no service starts. No kinesis-local (npm) needed.
unit: venv jars modules
	$(SCRATCH) $(BIN)/python -m pytest -q -p no:cacheprovider -m "not integration" tests

# `make demo SOURCE=kinesis` runs the same demo from a Kinesis stream.
SOURCE ?= kafka
demo: setup
	$(SCRATCH) $(BIN)/python -m featurestream.dev.demo --source $(SOURCE)

stack-up: setup
	$(BIN)/featurestream stack up
stack-down: venv
	$(BIN)/featurestream stack down

bench-kinesis: setup
	$(SCRATCH) $(BIN)/python bench/kinesis_bench.py

bench-feature-store: venv
	$(BIN)/python bench/feature_store_bench.py

bench-writer: venv aws-connector
	$(SCRATCH) $(BIN)/python bench/writer_bench.py

bench-compaction: venv
	$(SCRATCH) $(BIN)/python bench/compaction_bench.py

bench-stream: setup
	$(SCRATCH) $(BIN)/python bench/stream_bench.py $(BENCH_ARGS)

# The shipped job under a steady load at half its measured maximum, a GetRecord probe every 250 ms.
bench-freshness: setup
	$(SCRATCH) $(BIN)/python bench/freshness_bench.py $(BENCH_ARGS)

# 10M events, 100k cards, 30 days (~15 min, the machine alone, a 12 GB heap; BENCH_ARGS="--events 4000000"
# for a shorter run). A small trial: BENCH_ARGS="--events 200000
# --entities 2000 --days 3 --results-dir /tmp/bench-backfill".
bench-backfill: setup
	$(SCRATCH) $(BIN)/python bench/backfill_bench.py $(BENCH_ARGS)

bench-training-set: setup
	$(SCRATCH) $(BIN)/python bench/training_set_bench.py

clean:
	rm -rf build .state $(VENV)

# The date-sensitive suites (stream job, metrics, the emulator's TTL rules) with the clock a year
# ahead, every service started on the moved clock: a fixed calendar date paired with a rule that
# compares it with now fails there, including in a test nobody has marked yet (the calendar only
# moves forward, so the whole suites run ahead). A year back runs the tests marked `clock` (their
# data meet a rule that compares a date with now: TTL, the job's future-event bound, freshness).
# The writer suite (fixed dates, groups without a TTL, relative deadlines only) and the cluster
# test (the same stream job on a standalone master) run once, on the real clock, for CI's time.
# No test selected is pytest's exit 5: the target fails.
MOVED_CLOCK_SUITES := tests/ops/test_stream_job.py tests/ops/test_metrics.py tests/dev/feature_store/test_runtime.py
.PHONY: test-moved-clock
test-moved-clock: setup aws-connector
	scripts/with-moved-clock +400d $(SCRATCH) $(BIN)/python -m pytest -q -p no:cacheprovider $(MOVED_CLOCK_SUITES)
	scripts/with-moved-clock -400d $(SCRATCH) $(BIN)/python -m pytest -q -p no:cacheprovider -m clock $(MOVED_CLOCK_SUITES)

# Operations (issue 9): cluster artefacts, the standalone-cluster test, the reliability suite.
.PHONY: dist test-cluster reliability
# build/dist/: the wheel, the --py-files zip, our JVM jars, packages.txt, requirements.txt, jobs/.
# setuptools packs whatever is left in build/lib (a deleted module, a pre-namespace package): start clean.
dist: venv modules
	rm -rf build/dist build/lib build/bdist.*
	$(BIN)/pip wheel -q --no-deps --no-build-isolation --wheel-dir build/dist .
	$(BIN)/python -m featurestream.ops.package build/dist

# The streaming and compaction jobs on a Spark standalone cluster (master + 2 workers, loopback).
test-cluster: setup
	FEATURESTREAM_TEST_CLUSTER=1 $(SCRATCH) $(BIN)/python -m pytest -q -p no:cacheprovider tests/ops/test_cluster.py

# Kill -9, broker and emulator restarts, faults, malformed input, compaction crash → bench/results/reliability.json
reliability: setup
	$(SCRATCH) $(BIN)/python bench/reliability.py

# Scheduling (issue 22): the DAGs in dags/ run for real by Apache Airflow 3 (with the Amazon, Spark
# and OpenLineage providers) from its own virtualenv: Airflow's dependencies are not the library's,
# and the DAGs start featurestream from .venv as a subprocess. The venv holds exactly
# requirements/airflow.lock and lives in the user's cache, keyed by the lock's digest, like pip's and
# Maven's caches: a fresh clone reuses it instead of spending ~3 minutes installing 600 packages, and
# a changed lock gets a new one (the others are removed). flock keeps two builds from racing.
AIRFLOW_DIGEST := $(shell sha256sum requirements/airflow.lock 2>/dev/null | cut -c1-12)
AIRFLOW_CACHE := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/featurestream/airflow-$(AIRFLOW_DIGEST)
AIRFLOW_VENV := $(AIRFLOW_CACHE)/venv
AIRFLOW_LOCK := pip compile requirements/airflow.in --universal --python-version 3.11 -o requirements/airflow.lock
.PHONY: airflow-venv airflow-lock test-airflow
airflow-venv:
	@command -v $(PY) >/dev/null || { echo "need $(PY)"; exit 1; }
	mkdir -p $(dir $(AIRFLOW_CACHE))
	flock $(dir $(AIRFLOW_CACHE)).airflow.lock bash -c 'set -e; test -f $(AIRFLOW_VENV)/.stamp && exit 0; \
	  find $(dir $(AIRFLOW_CACHE)) -maxdepth 1 -name "airflow-*" ! -path "$(AIRFLOW_CACHE)" -exec rm -rf {} +; \
	  rm -rf $(AIRFLOW_VENV); $(PY) -m venv $(AIRFLOW_VENV); \
	  $(AIRFLOW_VENV)/bin/pip install -q --upgrade "pip>=24"; \
	  $(AIRFLOW_VENV)/bin/pip install -q -r requirements/airflow.lock; touch $(AIRFLOW_VENV)/.stamp'
airflow-lock: $(UV)
	$(UV) $(AIRFLOW_LOCK) -q $(if $(UPGRADE),--upgrade) --custom-compile-command "make airflow-lock  # uv $(UV_VERSION): uv $(AIRFLOW_LOCK)"

# `airflow dags test` of the local DAGs against real services (PostgreSQL and Debian's Pushgateway
# from the stack, an emulator-written offline store), outputs checked; the AWS DAGs parsed and
# rendered; the batch alert rules through `promtool check rules` and `promtool test rules`
# (promtool unpacked from Debian's `prometheus` package into build/tools when absent).
test-airflow: setup airflow-venv
	FEATURESTREAM_TEST_AIRFLOW=1 FEATURESTREAM_AIRFLOW_VENV=$(AIRFLOW_VENV) $(SCRATCH) $(BIN)/python -m pytest -q -p no:cacheprovider tests/scheduling
