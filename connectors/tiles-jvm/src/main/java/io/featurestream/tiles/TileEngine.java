package io.featurestream.tiles;

import java.util.List;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.KeyValueGroupedDataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.catalyst.expressions.Attribute;
import org.apache.spark.sql.streaming.GroupStateTimeout;
import org.apache.spark.sql.streaming.OutputMode;
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
    boolean java8Time = Boolean.parseBoolean(
        input.sparkSession().conf().get("spark.sql.datetime.java8API.enabled", "false"));
    EngineConfig cfg = EngineConfig.parse(configJson, input.schema(), java8Time);
    return byKeyColumn(input, cfg.keyIdx)
        .flatMapGroupsWithState(new TileFunction(cfg), OutputMode.Update(), Encoders.BINARY(),
            Encoders.row(Output.schema(cfg)), GroupStateTimeout.EventTimeTimeout());
  }

  /**
   * Grouped by the existing {@code _key} column. {@code groupByKey(function)} would deserialize
   * every row once to compute the key and again for the state function; this is what it builds
   * internally, minus the first pass (the constructor is Spark-internal, public in bytecode).
   */
  private static KeyValueGroupedDataset<String, Row> byKeyColumn(Dataset<Row> input, int keyIdx) {
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
