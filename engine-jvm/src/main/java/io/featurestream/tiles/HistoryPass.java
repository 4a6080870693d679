package io.featurestream.tiles;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.api.java.function.CoGroupFunction;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.api.java.UDF0;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.DataTypes;

/**
 * The backfill's batch pass over one chunk of event time, the engine state explicit (no streaming
 * query): the chunk's events, grouped by entity, meet the entity's state after the previous chunk
 * (a cogroup on the key), and each entity goes through the same history-mode steps as the
 * streaming query's state function ({@link TileFunction#historyStep}):
 *
 * <ol>
 *   <li>the chunk's events at watermark W (what the stream's micro-batch of the chunk sees: the
 *       newest event of earlier chunks - lateness);
 *   <li>the chunk's timer batch at W' (the newest event up to this chunk - lateness): the decay
 *       records up to stream time W' + lateness, then expiry;
 *   <li>the state kept or dropped by the stream's own rule ({@link TileFunction#nextTimer}).
 * </ol>
 *
 * <p>The output is the engine's output ({@link Output#schema}) plus {@code _state}: one STATE row
 * per entity that keeps state, for the next chunk. An entity with no event in the chunk is visited
 * too (its decay records are due when W' passes them, as the stream's timers would fire).
 */
public final class HistoryPass {
  private HistoryPass() {}

  /**
   * @param events the chunk's events in the engine's input layout (featurestream.aggregation)
   * @param state {@code _key} string, {@code _state} binary: the previous chunk's STATE rows
   * @param configJson the engine config, with {@code "history": true}
   * @param watermark W of the chunk's events
   * @param watermarkAfter W' after the chunk (at least W)
   */
  public static Dataset<Row> apply(Dataset<Row> events, Dataset<Row> state, String configJson, long watermark,
                                   long watermarkAfter) {
    boolean java8Time = Boolean.parseBoolean(
        events.sparkSession().conf().get("spark.sql.datetime.java8API.enabled", "false"));
    // Only a late event needs its whole `_event` (packed, see PackedRow) for the late sink.
    events = events.withColumn("_event", functions.when(functions.col("_ts").lt(chunkValue(watermark)),
        functions.col("_event")));
    EngineConfig cfg = EngineConfig.parse(configJson, events.schema(), java8Time);
    if (!cfg.history) {
      throw new IllegalArgumentException("the batch pass runs the engine in history mode only");
    }
    Dataset<Row> keyed = state.select("_key", "_state");
    return TileEngine.byKeyColumn(events, cfg.keyIdx)
        .cogroup(TileEngine.byKeyColumn(keyed, 0), new Chunk(cfg, watermark, watermarkAfter),
            Encoders.row(Output.batchSchema(cfg)));
  }

  /**
   * A chunk's own value (its watermark, its write time) as a column that leaves the code Spark
   * generates the same for every chunk. Spark writes a literal's value into a stage's generated
   * class, so a literal that changes per chunk makes every chunk compile new classes, which the JVM
   * then JIT-compiles again: 3-4 CPU s a chunk in a profile, most of a daily chunk's fixed cost. A
   * function of no argument is not folded into a literal; its result is read from the stage's
   * references, and the cached classes serve every chunk.
   */
  public static Column chunkValue(long value) {
    return functions.udf((UDF0<Long>) () -> value, DataTypes.LongType).asNonNullable().apply();
  }

  /** One entity's chunk: its events and its state (at most one row). */
  static final class Chunk implements CoGroupFunction<String, Row, Row, Row> {
    private static final long serialVersionUID = 1L;

    private final EngineConfig cfg;
    private final TileFunction function;
    private final long watermark;
    private final long watermarkAfter;

    Chunk(EngineConfig cfg, long watermark, long watermarkAfter) {
      this.cfg = cfg;
      this.function = new TileFunction(cfg);
      this.watermark = watermark;
      this.watermarkAfter = Math.max(watermark, watermarkAfter);
    }

    @Override
    public Iterator<Row> call(String key, Iterator<Row> events, Iterator<Row> states) {
      EntityState s = new EntityState(cfg);
      if (states.hasNext()) {
        s = EntityState.decode((byte[]) states.next().get(1), cfg);
      }
      List<Row> records = new ArrayList<>();
      function.historyStep(key, events, s, watermark, records);
      function.historyStep(key, Collections.emptyIterator(), s, watermarkAfter, records);
      List<Row> out = new ArrayList<>(records.size() + 1);
      for (Row record : records) {
        out.add(Output.withoutState(record));
      }
      long timer = TileFunction.nextTimer(s, cfg, watermarkAfter, watermarkAfter + cfg.latenessMs);
      if (timer != TileFunction.DROP) {
        out.add(Output.state(cfg, key, s.encode(cfg)));
      }
      return out.iterator();
    }
  }
}
