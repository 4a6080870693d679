package io.featurestream.tiles;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import java.util.Random;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;

/** The map side: folded partials merge to exactly the state of the same events added one by one. */
class PreAggregateTest {
  private static final long TILE = 60_000;

  private static StructType mapped() {
    return TileEngine.mappedSchema(EngineFixtures.input());
  }

  private static EngineConfig config(long dedupeMs) {
    return EngineFixtures.config(mapped(), dedupeMs);
  }

  private static Row event(String key, long t, Double amount, long hash, String merchant) {
    Object[] v = new Object[mapped().size() - 2];
    v[0] = key;
    v[1] = t;
    v[3] = 7L;
    v[4] = amount;
    v[5] = hash;
    v[6] = merchant;
    v[7] = RowFactory.create("payload-" + t);
    return RowFactory.create(v);
  }

  private static List<Row> events() {
    List<Row> rows = new ArrayList<>();
    String[] merchants = {"m-1", null, "m-3", "m-2"};
    for (int i = 0; i < 60; i++) {
      long t = 100_000L + (i * 37_000L) % 400_000L;    // out of order, across several tiles
      rows.add(event(i % 2 == 0 ? "a" : "b", t, i % 5 == 0 ? null : 0.1 * i, i % 7, merchants[i % 4]));
    }
    return rows;
  }

  private static List<Row> drain(Iterator<Row> it) {
    List<Row> out = new ArrayList<>();
    it.forEachRemaining(out::add);
    return out;
  }

  @Test
  void partialsMergeToTheStateOfOneByOneAdds() {
    EngineConfig cfg = config(-1);
    PreAggregate map = new PreAggregate(cfg);
    List<Row> in = events();
    long watermark = 150_000L;
    // Two "tasks", each folding its half.
    List<Row> out = new ArrayList<>(drain(map.process(in.subList(0, 25).iterator(), watermark)));
    out.addAll(drain(map.process(in.subList(25, in.size()).iterator(), watermark)));

    for (String key : new String[] {"a", "b"}) {
      EntityState oneByOne = new EntityState(cfg);
      EntityState merged = new EntityState(cfg);
      long late = 0;
      long folded = 0;
      for (Row r : in) {
        if (r.getString(0).equals(key)) {
          if (r.getLong(1) < watermark) {
            late++;
          } else {
            TileFunction.add(cfg, oneByOne, r, r.getLong(1));
          }
        }
      }
      long lateOut = 0;
      for (Row r : out) {
        if (!r.getString(cfg.keyIdx).equals(key)) {
          continue;
        }
        assertEquals(watermark, r.getLong(cfg.pwmIdx));
        if (r.isNullAt(cfg.partialIdx)) {
          lateOut++;
          assertNotNull(r.get(cfg.eventIdx));       // a late event keeps its struct
          assertEquals(true, r.getLong(cfg.tsIdx) < watermark);
        } else {
          folded += PreAggregate.mergeInto(merged, (byte[]) r.get(cfg.partialIdx), cfg);
        }
      }
      assertEquals(late, lateOut);
      assertEquals(in.stream().filter(r -> r.getString(0).equals(key)).count() - late, folded);
      assertEquals(oneByOne.maxEvent, merged.maxEvent);
      assertEquals(oneByOne.tiles.keySet(), merged.tiles.keySet());
      for (long asOf = 0; asOf < 10 * TILE; asOf += TILE / 2) {
        Object[] want = Windows.valuesAsOf(oneByOne, asOf, cfg);
        Object[] got = Windows.valuesAsOf(merged, asOf, cfg);
        for (int i = 0; i < want.length; i++) {
          if (want[i] instanceof Double w) {
            assertEquals(w, (Double) got[i], 1e-9 * Math.max(1, Math.abs(w)), cfg.features[i].name);
          } else {
            assertEquals(want[i], got[i], cfg.features[i].name);
          }
        }
      }
    }
  }

  @Test
  void withDedupeEventsTravelAloneAndOnlyLateOnesKeepTheirStruct() {
    EngineConfig cfg = config(300_000);
    List<Row> out = drain(new PreAggregate(cfg).process(events().iterator(), 150_000L));
    assertEquals(events().size(), out.size());
    for (Row r : out) {
      assertNull(r.get(cfg.partialIdx));
      assertEquals(r.getLong(cfg.tsIdx) < 150_000L, r.get(cfg.eventIdx) != null);
    }
  }

  @Test
  void withoutAWatermarkEveryEventTravelsWhole() {
    EngineConfig cfg = config(-1);
    List<Row> out = drain(new PreAggregate(cfg).process(events().iterator(), null));
    assertEquals(events().size(), out.size());
    for (int i = 0; i < out.size(); i++) {
      Row r = out.get(i);
      assertNull(r.get(cfg.partialIdx));
      assertNull(r.get(cfg.pwmIdx));
      assertEquals(Arrays.asList(events().get(i).get(7)), Arrays.asList(r.get(cfg.eventIdx)));
    }
  }

  /** Two numeric inputs, no distinct or last inputs: the map side folds into CompactFold. */
  private static EngineConfig numericOnly() {
    StructType input = new StructType()
        .add("_key", DataTypes.StringType)
        .add("_ts", DataTypes.LongType)
        .add("_wm", DataTypes.TimestampType)
        .add("_dk", DataTypes.LongType)
        .add("_n0", DataTypes.DoubleType)
        .add("_n1", DataTypes.DoubleType)
        .add("_event", new StructType().add("x", DataTypes.StringType));
    String json = "{\"tile_ms\": 60000, \"lateness_ms\": 120000, \"ttl_ms\": 0, \"dedupe_within_ms\": -1, "
        + "\"numeric_slots\": 2, \"hash_slots\": 0, \"last_slots\": 0, \"features\": ["
        + "{\"name\": \"n_2m\", \"agg\": \"count\", \"tiles\": 2, \"slot\": -1},"
        + "{\"name\": \"sum_5m\", \"agg\": \"sum\", \"tiles\": 5, \"slot\": 0},"
        + "{\"name\": \"sd_5m\", \"agg\": \"stddev_samp\", \"tiles\": 5, \"slot\": 1},"
        + "{\"name\": \"max_5m\", \"agg\": \"max\", \"tiles\": 5, \"slot\": 1}]}";
    return EngineConfig.parse(json, TileEngine.mappedSchema(input), false);
  }

  @Test
  void compactFoldWritesTheBytesOfTheTileFold() {
    EngineConfig cfg = numericOnly();
    assertTrue(PreAggregate.CompactFold.applies(cfg));
    assertEquals(false, PreAggregate.CompactFold.applies(config(-1)));
    Random random = new Random(42);
    for (int round = 0; round < 200; round++) {
      PreAggregate.CompactFold compact = new PreAggregate.CompactFold(cfg);
      EntityState state = new EntityState(cfg);
      int events = 1 + random.nextInt(300);
      long base = 1_000_000L * random.nextInt(1000);
      for (int i = 0; i < events; i++) {
        // Mostly in time order, some out of order, across up to ~50 tiles; some nulls, some ties.
        long t = base + (random.nextInt(10) == 0 ? random.nextInt(3_000_000) : i * 10_000L);
        Double a = random.nextInt(6) == 0 ? null : random.nextGaussian() * 1e3;
        Double b = random.nextInt(6) == 0 ? null : (double) random.nextInt(5);
        Row row = RowFactory.create("k", t, null, null, a, b, null, null, null);
        compact.add(row, t);
        TileFunction.add(cfg, state, row, t);
      }
      assertEquals(state.maxEvent, compact.maxEvent());
      assertArrayEquals(PreAggregate.encode(state, events, cfg), compact.encode(cfg), "round " + round);
    }
  }

  @Test
  void numericOnlyPartialsMergeToTheStateOfOneByOneAdds() {
    EngineConfig cfg = numericOnly();
    List<Row> in = new ArrayList<>();
    for (int i = 0; i < 80; i++) {
      long t = 100_000L + (i * 37_000L) % 400_000L;
      in.add(RowFactory.create(i % 3 == 0 ? "a" : "b", t, null, null, i % 5 == 0 ? null : 0.1 * i,
          i % 4 == 0 ? null : (double) (i % 7), RowFactory.create("e" + i), null, null));
    }
    long watermark = 150_000L;
    List<Row> out = drain(new PreAggregate(cfg).process(in.iterator(), watermark));
    for (String key : new String[] {"a", "b"}) {
      EntityState oneByOne = new EntityState(cfg);
      EntityState merged = new EntityState(cfg);
      for (Row r : in) {
        if (r.getString(0).equals(key) && r.getLong(1) >= watermark) {
          TileFunction.add(cfg, oneByOne, r, r.getLong(1));
        }
      }
      for (Row r : out) {
        if (r.getString(cfg.keyIdx).equals(key) && !r.isNullAt(cfg.partialIdx)) {
          PreAggregate.mergeInto(merged, (byte[]) r.get(cfg.partialIdx), cfg);
        }
      }
      oneByOne.asOf = 1;
      merged.asOf = 1;
      assertArrayEquals(oneByOne.encode(cfg), merged.encode(cfg), key);
    }
  }

  /**
   * The sketch group's map side holds each entity's sketch inputs and folds them a run at a time
   * (SketchBuffer), and their tiles too (no numeric or last inputs: SketchBuffer.deferring): its
   * partials are byte for byte those of adding the events one by one, with more events per entity
   * than the buffer holds, interleaved entities, nulls and events out of order across tiles and
   * buckets.
   */
  @Test
  void sketchPartialsAreTheBytesOfOneByOneAdds() {
    EngineConfig cfg = SketchGroupCost.config();
    assertTrue(SketchBuffer.applies(cfg));
    assertTrue(SketchBuffer.deferring(cfg));
    Random random = new Random(7);
    List<Row> in = new ArrayList<>();
    long base = 1_800_000_000_000L;
    for (int i = 0; i < 3 * 150; i++) {
      long t = base + (random.nextInt(8) == 0 ? random.nextInt(7_200_000) : i * 15_000L);
      String merchant = random.nextInt(9) == 0 ? null : "m-" + random.nextInt(70);
      Long hash = merchant == null ? null : (long) merchant.hashCode() * 0x9E3779B97F4A7C15L;
      Double q0 = random.nextInt(9) == 0 ? null : random.nextGaussian();
      Double q1 = random.nextInt(9) == 0 ? null : random.nextInt(9) == 0 ? Double.NaN : (double) random.nextInt(50);
      in.add(RowFactory.create("card-" + i % 3, t, null, null, hash, q0, q1, merchant, RowFactory.create("e"), null,
          null));
    }
    List<Row> out = drain(new PreAggregate(cfg).process(in.iterator(), base));
    assertEquals(3, out.size());
    for (Row r : out) {
      String key = r.getString(cfg.keyIdx);
      EntityState oneByOne = new EntityState(cfg);
      long events = 0;
      for (Row e : in) {
        if (e.getString(0).equals(key)) {
          TileFunction.add(cfg, oneByOne, e, e.getLong(1));
          events++;
        }
      }
      assertTrue(events > SketchBuffer.DEFERRED_CAPACITY);
      assertArrayEquals(PreAggregate.encode(oneByOne, events, cfg), (byte[]) r.get(cfg.partialIdx), key);
    }
  }
}
