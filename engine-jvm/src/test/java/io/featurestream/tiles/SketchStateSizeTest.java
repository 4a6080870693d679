package io.featurestream.tiles;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;

/**
 * The state bound the README documents: one entity receives 1,000,000 distinct values within a
 * 24-hour window, spread evenly over its tiles, through the engine's own path (TileFunction.add);
 * the state is the bytes the state store keeps for the entity (the encoded EntityState). A sketch
 * feature's share is that minus the state of the same events in a group with only a count over
 * the window (the tiles themselves). With 1-hour tiles (24) and 1-minute tiles (1,440): sketch
 * buckets of ceil(tiles / buckets) tiles keep it to at most {@code BUCKETS} sketches either way.
 */
class SketchStateSizeTest {
  private static final int VALUES = 1_000_000;
  private static final long DAY = 86_400_000L;
  /** featurestream.config.feature_group.DEFAULT_SKETCH_BUCKETS. */
  static final int BUCKETS = 24;

  private static final StructType INPUT = new StructType()
      .add("_key", DataTypes.StringType).add("_ts", DataTypes.LongType).add("_dk", DataTypes.LongType)
      .add("_h0", DataTypes.LongType).add("_q0", DataTypes.DoubleType).add("_t0", DataTypes.StringType)
      .add("_event", new StructType().add("x", DataTypes.StringType));

  private static EngineConfig config(long tileMs, String feature, String params, int buckets) {
    long tiles = DAY / tileMs;
    boolean sketch = !feature.equals("count");
    long grain = sketch ? (tiles + buckets - 1) / buckets : 1;
    String json = "{\"tile_ms\": " + tileMs + ", \"lateness_ms\": 0, \"numeric_slots\": 0, \"last_slots\": 0, "
        + params + ", \"features\": [{\"name\": \"f\", \"agg\": \"" + feature + "\", \"tiles\": " + tiles
        + ", \"slot\": " + (sketch ? 0 : -1) + ", \"percentile\": 0.5, \"rank\": 1, \"grain\": " + grain + "}]}";
    return EngineConfig.parse(json, INPUT, false);
  }

  private static final String COUNT = "\"hash_slots\": 0";
  private static final String DISTINCT = "\"hash_slots\": 1, \"distinct\": [{\"exact_up_to\": 256, \"lg_k\": 12}]";
  private static final String PERCENTILE = "\"hash_slots\": 0, \"quantile_slots\": 1, \"quantile\": [{\"k\": 200}]";
  private static final String TOP_K = "\"hash_slots\": 0, \"top_k_slots\": 1, \"top_k\": [{\"sketch_size\": 64}]";

  /** Encoded state of one entity after VALUES distinct values over a day of tiles of {@code tileMs}. */
  static int stateBytes(long tileMs, String feature, String params, int buckets) {
    EngineConfig cfg = config(tileMs, feature, params, buckets);
    EntityState s = new EntityState(cfg);
    long step = DAY / VALUES;
    for (int i = 0; i < VALUES; i++) {
      long t = i * step;
      Row row = RowFactory.create("card", t, null, i * 0x9E3779B97F4A7C15L, i * 0.37, "merchant-" + i, null);
      TileFunction.add(cfg, s, row, t);
    }
    Windows.valuesAsOf(s, DAY - 1, cfg);   // the window's value is computable from what is kept
    return s.encode(cfg).length;
  }

  @Test
  void oneMillionDistinctValuesInADayKeepABoundedState() {
    String[][] cases = {
        {"approx_count_distinct", DISTINCT}, {"approx_percentile", PERCENTILE}, {"top_k", TOP_K}};
    // Documented bounds (README, "State per entity"), in KB per sketch feature, whatever the tile.
    int[] boundsKb = {55, 110, 15};
    for (long tileMs : new long[] {3_600_000L, 60_000L}) {
      int tiles = stateBytes(tileMs, "count", COUNT, BUCKETS);
      for (int c = 0; c < cases.length; c++) {
        int total = stateBytes(tileMs, cases[c][0], cases[c][1], BUCKETS);
        int sketch = total - tiles;
        System.out.printf("state for 1M distinct values in 24h, %s, %d-minute tiles, %d buckets: %.1f KB for "
            + "the feature (%.1f KB with the tiles)%n", cases[c][0], tileMs / 60_000, BUCKETS, sketch / 1024.0,
            total / 1024.0);
        assertTrue(sketch <= boundsKb[c] * 1024, cases[c][0] + " " + tileMs + " ms tiles: " + sketch + " bytes");
      }
    }
  }
}
