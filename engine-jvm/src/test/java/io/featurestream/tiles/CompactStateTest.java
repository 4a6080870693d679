package io.featurestream.tiles;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.Test;

/**
 * State format 4's compact forms (raw percentile values as decimals, top-k sketches that never
 * purged as values and counts): the same doubles bit for bit, the same window values as format 3,
 * format 3 still read, and the bytes stable across a round trip.
 */
class CompactStateTest {
  private static final long TILE = 60_000;

  @Test
  void decimalsRoundTripBitForBitOrAreLeftPlain() {
    double[] decimals = {12.34, 0.5, 100, -3.25, 1e-6, 123456.789, 0};
    int scale = Compact.decimalScale(decimals, decimals.length);
    assertEquals(6, scale);
    double[] back = Compact.fromDecimals(Compact.decimals(decimals, decimals.length, scale), decimals.length);
    for (int i = 0; i < decimals.length; i++) {
      assertEquals(Double.doubleToRawLongBits(decimals[i]), Double.doubleToRawLongBits(back[i]), "value " + i);
    }
    assertEquals(0, Compact.decimalScale(new double[] {1, 2, 9_007_199_254_740_990.0}, 3));
    for (double plain : new double[] {0.1 + 0.2, 1.0 / 3, -0.0, Double.POSITIVE_INFINITY, Double.NaN, 1e300, 1e-7}) {
      assertEquals(-1, Compact.decimalScale(new double[] {1.5, plain}, 2), "value " + plain);
    }
  }

  /** Windows 5 tiles (grain 1) and 20 (buckets of 3); sketch sizes that keep every value exact. */
  private static EngineConfig config() {
    StringBuilder features = new StringBuilder();
    for (int[] w : new int[][] {{5, 1}, {20, 3}}) {
      features.append(String.format(
          "{\"name\": \"d_%1$d\", \"agg\": \"approx_count_distinct\", \"tiles\": %1$d, \"slot\": 0, \"grain\": %2$d},"
              + "{\"name\": \"p90_%1$d\", \"agg\": \"approx_percentile\", \"tiles\": %1$d, \"slot\": 0,"
              + " \"percentile\": 0.9, \"grain\": %2$d},"
              + "{\"name\": \"top2_%1$d\", \"agg\": \"top_k\", \"tiles\": %1$d, \"slot\": 0, \"rank\": 2,"
              + " \"grain\": %2$d},", w[0], w[1]));
    }
    features.setLength(features.length() - 1);
    String json = "{\"tile_ms\": 60000, \"lateness_ms\": 0, \"ttl_ms\": 0, \"dedupe_within_ms\": -1, "
        + "\"numeric_slots\": 0, \"hash_slots\": 1, \"last_slots\": 0, \"quantile_slots\": 1, \"top_k_slots\": 1, "
        + "\"distinct\": [{\"exact_up_to\": 256, \"lg_k\": 12}], \"quantile\": [{\"k\": 65535}], "
        + "\"top_k\": [{\"sketch_size\": 4096}], \"features\": [" + features + "]}";
    return EngineConfig.parse(json, TileEngine.mappedSchema(SketchTileTest.input()), false);
  }

  @Test
  void format4IsSmallerReadsAsFormat3AndRoundTripsByteForByte() {
    EngineConfig cfg = config();
    Random random = new Random(7);
    EntityState s = new EntityState(cfg);
    List<Row> events = new ArrayList<>();
    for (int i = 0; i < 600; i++) {
      long t = 100 * TILE + random.nextInt((int) (30 * TILE));
      // Amounts in cents, and one tile whose values are binary fractions (left 8 bytes each).
      double amount = t / TILE == 110 ? random.nextInt(1000) / 7.0 : random.nextInt(100_000) / 100.0;
      events.add(SketchTileTest.event("a", t, random.nextInt(50), amount, "m-" + random.nextInt(12)));
    }
    for (Row r : events) {
      TileFunction.add(cfg, s, r, r.getLong(1));
    }
    s.asOf = s.maxEvent;
    byte[] v3 = s.encode(cfg, (byte) 3);
    byte[] v4 = s.encode(cfg);
    assertEquals(3, v3[0]);
    assertEquals(4, v4[0]);
    assertTrue(v4.length < v3.length * 0.7, v4.length + " vs " + v3.length);
    EntityState from3 = EntityState.decode(v3, cfg);
    EntityState from4 = EntityState.decode(v4, cfg);
    for (long asOf = 115 * TILE; asOf <= 131 * TILE; asOf += 4 * TILE) {
      Object[] expected = Windows.valuesAsOf(s, asOf, cfg);
      assertArrayEquals(expected, Windows.valuesAsOf(from3, asOf, cfg));
      assertArrayEquals(expected, Windows.valuesAsOf(from4, asOf, cfg));
    }
    assertArrayEquals(v4, from4.encode(cfg));
    assertArrayEquals(v3, from3.encode(cfg, (byte) 3));
    // Slots changed after reading: written in the compact form again, the same values.
    TileFunction.add(cfg, from4, events.get(0), events.get(0).getLong(1));
    TileFunction.add(cfg, s, events.get(0), events.get(0).getLong(1));
    byte[] again = from4.encode(cfg);
    assertEquals(s.encode(cfg).length, again.length);
    assertArrayEquals(Windows.valuesAsOf(s, 131 * TILE, cfg), Windows.valuesAsOf(EntityState.decode(again, cfg), 131 * TILE, cfg));
  }

  @Test
  void topKThatPurgedKeepsTheSketchForm() throws IOException {
    TopKSlot slot = new TopKSlot(8);
    for (int i = 0; i < 200; i++) {
      slot.add("v" + (i % 3 == 0 ? 0 : i));
    }
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    slot.writeTo(new DataOutputStream(bytes));
    byte[] written = bytes.toByteArray();
    assertTrue(new DataInputStream(new ByteArrayInputStream(written)).readInt() > 0);
    TopKSlot read = new TopKSlot(8);
    read.readFrom(new DataInputStream(new ByteArrayInputStream(written)));
    TopKSlot.Window before = new TopKSlot.Window(8);
    before.add(slot);
    TopKSlot.Window after = new TopKSlot.Window(8);
    after.add(read);
    assertEquals("v0", after.value(1));
    assertEquals(before.share(1), after.share(1));
  }
}
