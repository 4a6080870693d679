package io.featurestream.tiles;

import static org.junit.jupiter.api.Assertions.assertTrue;

import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;

/**
 * The state bound the README documents: one entity receives 1,000,000 distinct values within a
 * 24-hour window, spread evenly over its tiles; the state is measured as the bytes the state
 * store keeps (the encoded EntityState) for a group with that one feature, default sketch sizes.
 * Twice: 1-hour tiles (24 tiles) and 1-minute tiles (1,440 tiles: each tile keeps its own sketch,
 * so the state grows with the number of tiles in the window, not with the values).
 */
class SketchStateSizeTest {
  private static final int VALUES = 1_000_000;
  private static final long DAY = 86_400_000L;

  private static EngineConfig config(long tileMs, String feature, String params) {
    StructType input = new StructType()
        .add("_key", DataTypes.StringType).add("_ts", DataTypes.LongType).add("_dk", DataTypes.LongType)
        .add("_h0", DataTypes.LongType).add("_q0", DataTypes.DoubleType).add("_t0", DataTypes.StringType)
        .add("_event", new StructType().add("x", DataTypes.StringType));
    long tiles = DAY / tileMs;
    String json = "{\"tile_ms\": " + tileMs + ", \"lateness_ms\": 0, \"numeric_slots\": 0, \"last_slots\": 0, "
        + params + ", \"features\": [{\"name\": \"f\", \"agg\": \"" + feature + "\", \"tiles\": " + tiles
        + ", \"slot\": 0, \"percentile\": 0.5, \"rank\": 1}]}";
    return EngineConfig.parse(json, input, false);
  }

  private static final String DISTINCT = "\"hash_slots\": 1, \"distinct\": [{\"exact_up_to\": 256, \"lg_k\": 12}]";
  private static final String PERCENTILE = "\"hash_slots\": 0, \"quantile_slots\": 1, \"quantile\": [{\"k\": 200}]";
  private static final String TOP_K = "\"hash_slots\": 0, \"top_k_slots\": 1, \"top_k\": [{\"sketch_size\": 64}]";

  /** Encoded state of one entity after VALUES distinct values over a day of tiles of {@code tileMs}. */
  private static int stateBytes(long tileMs, String feature, String params) {
    EngineConfig cfg = config(tileMs, feature, params);
    EntityState s = new EntityState(cfg);
    long step = DAY / VALUES;
    for (int i = 0; i < VALUES; i++) {
      long t = i * step;
      Tile tile = s.tile(Math.floorDiv(t, tileMs), cfg);
      tile.count++;
      switch (feature) {
        case "approx_count_distinct":
          tile.hashes[0].add(i * 0x9E3779B97F4A7C15L);   // distinct 64-bit hashes
          break;
        case "approx_percentile":
          tile.quantiles[0].add(i * 0.37);
          break;
        default:
          tile.topK[0].add("merchant-" + i);
      }
      s.maxEvent = t;
    }
    // The window's value is computable from what is kept.
    Windows.valuesAsOf(s, DAY - 1, cfg);
    return s.encode(cfg).length;
  }

  @Test
  void oneMillionDistinctValuesInADayKeepABoundedState() {
    String[][] cases = {
        {"approx_count_distinct", DISTINCT}, {"approx_percentile", PERCENTILE}, {"top_k", TOP_K}};
    // Documented bounds (README, "State per entity"), in KB, for 24 and 1,440 tiles.
    int[][] boundsKb = {{55, 3_000}, {110, 4_400}, {15, 600}};
    for (int c = 0; c < cases.length; c++) {
      int hourly = stateBytes(3_600_000L, cases[c][0], cases[c][1]);
      int minutely = stateBytes(60_000L, cases[c][0], cases[c][1]);
      System.out.printf("state for 1M distinct values in 24h, %s: %.1f KB with 1h tiles, %.1f KB with 1m tiles "
          + "(exact hashes would be %d KB)%n", cases[c][0], hourly / 1024.0, minutely / 1024.0, VALUES * 8 / 1024);
      assertTrue(hourly <= boundsKb[c][0] * 1024, cases[c][0] + " 1h tiles: " + hourly + " bytes");
      assertTrue(minutely <= boundsKb[c][1] * 1024, cases[c][0] + " 1m tiles: " + minutely + " bytes");
    }
  }
}
