package io.featurestream.tiles;

import java.util.List;
import org.apache.hadoop.fs.Path;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.KeyValueGroupedDataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.api.java.UDF0;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.catalyst.plans.logical.EventTimeWatermark;
import org.apache.spark.sql.execution.streaming.OffsetSeq;
import org.apache.spark.sql.execution.streaming.OffsetSeqLog;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.streaming.GroupStateTimeout;
import org.apache.spark.sql.streaming.OutputMode;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.MetadataBuilder;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import scala.Option;
import scala.collection.JavaConverters;
import scala.collection.Seq;

/** Entry point for Python (py4j): events in the engine's input layout → records and late events. */
public final class TileEngine {
  private TileEngine() {}

  /**
   * @param input events with the columns EngineConfig describes, on a query with a watermark
   * @param configJson tile, lateness, ttl, dedupe bound, slot counts and features
   */
  public static Dataset<Row> apply(Dataset<Row> input, String configJson) {
    return apply(input, configJson, false);
  }

  /**
   * @param append the state operator in append mode (its output is never revised, which holds):
   *     Spark 3.5 takes several flatMapGroupsWithState in one query only when all are in append
   *     mode, as a job with several feature groups on one source has
   */
  public static Dataset<Row> apply(Dataset<Row> input, String configJson, boolean append) {
    boolean java8Time = Boolean.parseBoolean(
        input.sparkSession().conf().get("spark.sql.datetime.java8API.enabled", "false"));
    EngineConfig inputCfg = EngineConfig.parse(configJson, input.schema(), java8Time);
    // Only a late event needs its whole `_event` (packed, see PackedRow) for the late sink: when
    // the map side knows the batch's watermark, it is packed for events below it only.
    Column watermark = batchWatermarkColumn();
    input = input.withColumn("_event", functions.when(
        watermark.isNull().or(functions.col("_ts").lt(watermark)), functions.col("_event")));
    StructType mappedSchema = mappedSchema(input.schema());
    EngineConfig cfg = EngineConfig.parse(configJson, mappedSchema, java8Time);
    // The map side folds events per entity before the shuffle (see PreAggregate). Its output
    // attributes are new, so the watermark mark goes back on the always-null guard column.
    Dataset<Row> mapped = input
        .mapPartitions(new PreAggregate(cfg), Encoders.row(mappedSchema))
        .withColumn("_wm", functions.lit(null).cast(DataTypes.TimestampType).as("_wm",
            new MetadataBuilder().putLong(EventTimeWatermark.delayKey(), inputCfg.latenessMs).build()));
    return byKeyColumn(mapped, cfg.keyIdx)
        .flatMapGroupsWithState(new TileFunction(cfg), append ? OutputMode.Append() : OutputMode.Update(),
            Encoders.BINARY(),
            Encoders.row(Output.schema(cfg)), GroupStateTimeout.EventTimeTimeout());
  }

  /**
   * Several feature groups on one source in one state operator ({@link GroupsTileFunction}):
   * each group's events go through its own map side (PreAggregate), then all of them through one
   * shuffle keyed by (group, entity) and one flatMapGroupsWithState (append mode). The groups of
   * one query share Spark's watermark, so their allowed lateness is the same.
   *
   * @param inputs each group's events in the engine's input layout (as {@link #apply} takes them)
   * @param configJsons each group's config, in the same order
   * @return rows of {@code _group} (the group's index) and {@code _o0 .. _o<n-1>}, the group's
   *     output ({@link Output#schema}) in its own field, the others null
   */
  public static Dataset<Row> applyGroups(List<Dataset<Row>> inputs, List<String> configJsons) {
    int n = inputs.size();
    boolean java8Time = Boolean.parseBoolean(
        inputs.get(0).sparkSession().conf().get("spark.sql.datetime.java8API.enabled", "false"));
    Column watermark = batchWatermarkColumn();
    EngineConfig[] cfgs = new EngineConfig[n];
    Dataset<Row>[] mapped = newArray(n);
    long latenessMs = 0;
    for (int g = 0; g < n; g++) {
      Dataset<Row> input = inputs.get(g);
      latenessMs = EngineConfig.parse(configJsons.get(g), input.schema(), java8Time).latenessMs;
      input = input.withColumn("_event", functions.when(
          watermark.isNull().or(functions.col("_ts").lt(watermark)), functions.col("_event")));
      StructType mappedSchema = mappedSchema(input.schema());
      cfgs[g] = EngineConfig.parse(configJsons.get(g), mappedSchema, java8Time);
      mapped[g] = input.mapPartitions(new PreAggregate(cfgs[g]), Encoders.row(mappedSchema));
    }
    Dataset<Row> shared = null;
    for (int g = 0; g < n; g++) {
      Column[] columns = new Column[n + 1];
      columns[0] = functions.concat(functions.lit(GroupsTileFunction.key(g, "")), functions.col("_key")).as("_key");
      for (int h = 0; h < n; h++) {
        Column own = h == g ? functions.struct(allColumns(mapped[h])) : functions.lit(null).cast(mapped[h].schema());
        columns[1 + h] = own.as("_r" + h);
      }
      Dataset<Row> shaped = mapped[g].select(columns);
      shared = shared == null ? shaped : shared.union(shaped);
    }
    StructType output = new StructType().add("_group", DataTypes.IntegerType, false);
    for (int g = 0; g < n; g++) {
      output = output.add("_o" + g, Output.schema(cfgs[g]), true);
    }
    Dataset<Row> guarded = shared.withColumn("_wm", functions.lit(null).cast(DataTypes.TimestampType).as("_wm",
        new MetadataBuilder().putLong(EventTimeWatermark.delayKey(), latenessMs).build()));
    return byKeyColumn(guarded, 0)
        .flatMapGroupsWithState(new GroupsTileFunction(cfgs), OutputMode.Append(), Encoders.BINARY(),
            Encoders.row(output), GroupStateTimeout.EventTimeTimeout());
  }

  @SuppressWarnings("unchecked")
  private static Dataset<Row>[] newArray(int n) {
    return (Dataset<Row>[]) new Dataset<?>[n];
  }

  private static Column[] allColumns(Dataset<Row> frame) {
    String[] names = frame.columns();
    Column[] columns = new Column[names.length];
    for (int i = 0; i < names.length; i++) {
      columns[i] = frame.col("`" + names[i] + "`");
    }
    return columns;
  }

  /** The micro-batch's watermark as the map side's tasks know it (see PreAggregate), else null. */
  static Column batchWatermarkColumn() {
    return functions.udf((UDF0<Long>) PreAggregate::currentWatermark, DataTypes.LongType)
        .asNondeterministic().apply();
  }

  /** The input's columns, all nullable but the key, plus the map side's partial and its watermark. */
  static StructType mappedSchema(StructType input) {
    StructType schema = new StructType();
    for (StructField f : input.fields()) {
      schema = schema.add(new StructField(f.name(), f.dataType(), !f.name().equals("_key"), f.metadata()));
    }
    return schema.add("_partial", DataTypes.BinaryType, true).add("_pwm", DataTypes.LongType, true);
  }

  /**
   * Called by the engine's consumer (the foreachBatch body) before it runs the jobs of micro-batch
   * {@code batchId}: reads the batch's watermark from the query's offset log and hands it to the
   * map side's tasks as a local property of this thread (the query's own thread inside
   * foreachBatch), and the batch's timestamp likewise to the parse step ({@link BatchTime}).
   * Returns the watermark, or -1 when the log has no such batch (then nothing is set and the map
   * side sends every event on as it is).
   */
  public static long useBatchWatermark(SparkSession spark, String checkpointLocation, long batchId) {
    OffsetSeqLog log = new OffsetSeqLog(spark, new Path(checkpointLocation, "offsets").toString());
    Option<OffsetSeq> batch = log.get(batchId);
    if (batch.isEmpty() || batch.get().metadata().isEmpty()) {
      clearBatchWatermark(spark);
      return -1;
    }
    long watermark = batch.get().metadata().get().batchWatermarkMs();
    spark.sparkContext().setLocalProperty(PreAggregate.WATERMARK_PROPERTY, batchId + ":" + watermark);
    spark.sparkContext().setLocalProperty(BatchTime.PROPERTY,
        batchId + ":" + batch.get().metadata().get().batchTimestampMs());
    return watermark;
  }

  /** Removes what {@link #useBatchWatermark} set on this thread. */
  public static void clearBatchWatermark(SparkSession spark) {
    spark.sparkContext().setLocalProperty(PreAggregate.WATERMARK_PROPERTY, null);
    spark.sparkContext().setLocalProperty(BatchTime.PROPERTY, null);
  }

  /**
   * Grouped by the existing {@code _key} column. {@code groupByKey(function)} would deserialize
   * every row once to compute the key and again for the state function; this is what it builds
   * internally, minus the first pass (the constructor is Spark-internal, public in bytecode).
   */
  static KeyValueGroupedDataset<String, Row> byKeyColumn(Dataset<Row> input, int keyIdx) {
    List<Attribute> output = JavaConverters.seqAsJavaList(input.queryExecution().analyzed().output());
    Seq<Attribute> data = JavaConverters.asScalaBuffer(output).toSeq();
    Seq<Attribute> key = JavaConverters.asScalaBuffer(List.of(output.get(keyIdx))).toSeq();
    return new KeyValueGroupedDataset<>(Encoders.STRING(), Encoders.row(input.schema()),
        input.queryExecution(), data, key);
  }

  /** The output schema as JSON, so Python can check its expectations without running a query. */
  public static String outputSchemaJson(Dataset<Row> input, String configJson) {
    return Output.schema(EngineConfig.parse(configJson, input.schema(), false)).json();
  }
}
