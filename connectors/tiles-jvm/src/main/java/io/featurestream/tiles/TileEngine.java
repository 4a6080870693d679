package io.featurestream.tiles;

import org.apache.spark.api.java.function.MapFunction;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.streaming.GroupStateTimeout;
import org.apache.spark.sql.streaming.OutputMode;

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
    int keyIdx = cfg.keyIdx;
    return input
        .groupByKey((MapFunction<Row, String>) row -> row.getString(keyIdx), Encoders.STRING())
        .flatMapGroupsWithState(new TileFunction(cfg), OutputMode.Update(), Encoders.BINARY(),
            Encoders.row(Output.schema(cfg)), GroupStateTimeout.EventTimeTimeout());
  }

  /** The output schema as JSON, so Python can check its expectations without running a query. */
  public static String outputSchemaJson(Dataset<Row> input, String configJson) {
    return Output.schema(EngineConfig.parse(configJson, input.schema(), false)).json();
  }
}
