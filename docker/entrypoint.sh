#!/usr/bin/env bash
# Entrypoint of the job image (behind tini), so that one image serves every way of running it:
#
#   driver ...   Spark on Kubernetes, cluster mode: the driver pod Spark creates from
#                spark.kubernetes.container.image gets `driver --properties-file F --class C app args`;
#                the driver runs in client mode inside its pod, bound to the pod's address.
#   executor     an executor pod: Spark's Kubernetes executor backend, configured by the variables
#                the driver sets on the pod (SPARK_DRIVER_URL, SPARK_EXECUTOR_ID, ...).
#   anything else  the featurestream CLI: `stream ...`, `compact ...`, `--help` (docker compose,
#                a Deployment running the driver in client mode).
#
# FEATURESTREAM_ENTRYPOINT_PRINT=1 prints the command, one argument per line, instead of running it.
set -euo pipefail

SPARK_HOME="${SPARK_HOME:-$(python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')}"
export SPARK_HOME

run() {
  if [ "${FEATURESTREAM_ENTRYPOINT_PRINT:-0}" = "1" ]; then
    printf '%s\n' "$@"
    exit 0
  fi
  exec "$@"
}

need() {
  for name in "$@"; do
    if [ -z "${!name:-}" ]; then
      echo "entrypoint: $name is not set (Spark sets it on the driver and executor pods it creates)" >&2
      exit 2
    fi
  done
}

# Spark passes an executor's JVM options as SPARK_JAVA_OPT_0, _1, ... in this order.
executor_java_options() {
  local index=0 name
  while name="SPARK_JAVA_OPT_$index" && [ -n "${!name+set}" ]; do
    java_options+=("${!name}")
    index=$((index + 1))
  done
}

case "${1:-}" in
  driver)
    shift
    need SPARK_DRIVER_BIND_ADDRESS
    run "$SPARK_HOME/bin/spark-submit" \
      --conf "spark.driver.bindAddress=$SPARK_DRIVER_BIND_ADDRESS" \
      --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=$SPARK_DRIVER_BIND_ADDRESS" \
      --deploy-mode client "$@"
    ;;
  executor)
    shift
    need SPARK_DRIVER_URL SPARK_EXECUTOR_ID SPARK_EXECUTOR_CORES SPARK_APPLICATION_ID \
      SPARK_EXECUTOR_POD_IP SPARK_EXECUTOR_MEMORY SPARK_EXECUTOR_POD_NAME
    java_options=()
    executor_java_options
    classpath="$SPARK_HOME/jars/*"
    if [ -n "${SPARK_EXTRA_CLASSPATH:-}" ]; then classpath="$classpath:$SPARK_EXTRA_CLASSPATH"; fi
    if [ -n "${SPARK_CLASSPATH:-}" ]; then classpath="$SPARK_CLASSPATH:$classpath"; fi
    run java "${java_options[@]}" -Xms"$SPARK_EXECUTOR_MEMORY" -Xmx"$SPARK_EXECUTOR_MEMORY" \
      -cp "$classpath" org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "$SPARK_DRIVER_URL" --executor-id "$SPARK_EXECUTOR_ID" \
      --cores "$SPARK_EXECUTOR_CORES" --app-id "$SPARK_APPLICATION_ID" \
      --hostname "$SPARK_EXECUTOR_POD_IP" --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
      --podName "$SPARK_EXECUTOR_POD_NAME" "$@"
    ;;
  *)
    run featurestream "$@"
    ;;
esac
