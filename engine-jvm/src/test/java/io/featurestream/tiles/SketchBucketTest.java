package io.featurestream.tiles;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.apache.spark.sql.Row;
import org.junit.jupiter.api.Test;

/**
 * Sketch features of a grain above 1 (buckets of several tiles): a window of n tiles at grain c
 * is exactly its last floor(n / c) buckets, across map-side partials, restarts and expiry; a
 * bucket leaving a window is a decay boundary; state of format 2 (every sketch in the tiles)
 * moves into the buckets. Sketch sizes here keep every value exact, so the values compare
 * exactly with a computation from the events.
 */
class SketchBucketTest {
  private static final long TILE = 60_000;
  /** (tiles, grain) of the windows: 5 tiles in the tiles, 20 in buckets of 3, 60 in buckets of 7. */
  private static final int[][] WINDOWS = {{5, 1}, {20, 3}, {60, 7}};

  private static EngineConfig config(boolean bucketed) {
    StringBuilder features = new StringBuilder();
    for (int[] w : WINDOWS) {
      int grain = bucketed ? w[1] : 1;
      features.append(String.format(
          "{\"name\": \"d_%1$d\", \"agg\": \"approx_count_distinct\", \"tiles\": %1$d, \"slot\": 0, \"grain\": %2$d},"
              + "{\"name\": \"p50_%1$d\", \"agg\": \"approx_percentile\", \"tiles\": %1$d, \"slot\": 0,"
              + " \"percentile\": 0.5, \"grain\": %2$d},"
              + "{\"name\": \"top1_%1$d\", \"agg\": \"top_k\", \"tiles\": %1$d, \"slot\": 0, \"rank\": 1,"
              + " \"grain\": %2$d},", w[0], grain));
    }
    features.append("{\"name\": \"n_60\", \"agg\": \"count\", \"tiles\": 60, \"slot\": -1}");
    String json = "{\"tile_ms\": 60000, \"lateness_ms\": 0, \"ttl_ms\": 0, \"dedupe_within_ms\": -1, "
        + "\"numeric_slots\": 0, \"hash_slots\": 1, \"last_slots\": 0, \"quantile_slots\": 1, \"top_k_slots\": 1, "
        + "\"distinct\": [{\"exact_up_to\": 100000, \"lg_k\": 12}], \"quantile\": [{\"k\": 65535}], "
        + "\"top_k\": [{\"sketch_size\": 4096}], \"features\": [" + features + "]}";
    return EngineConfig.parse(json, TileEngine.mappedSchema(SketchTileTest.input()), false);
  }

  private static List<Row> events(Random random, int count) {
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      long t = 100 * TILE + random.nextInt((int) (90 * TILE));
      rows.add(SketchTileTest.event("a", t, random.nextInt(300), random.nextInt(10_000) / 7.0,
          "m-" + (int) Math.floor(Math.pow(random.nextDouble(), 2) * 30)));
    }
    return rows;
  }

  /** distinct count, p50 (the value at sorted position floor(n / 2)) and top-1 of the events in tiles [first, last]. */
  private static List<Object> exact(List<Row> events, long first, long last) {
    Set<Long> hashes = new HashSet<>();
    List<Double> numbers = new ArrayList<>();
    Map<String, Long> counts = new HashMap<>();
    for (Row r : events) {
      long tile = Math.floorDiv(r.getLong(1), TILE);
      if (tile >= first && tile <= last) {
        hashes.add(r.getLong(4));
        numbers.add(r.getDouble(5));
        counts.merge(r.getString(6), 1L, Long::sum);
      }
    }
    numbers.sort(null);
    String top = counts.entrySet().stream()
        .min((a, b) -> a.getValue().equals(b.getValue()) ? a.getKey().compareTo(b.getKey())
            : Long.compare(b.getValue(), a.getValue()))
        .map(Map.Entry::getKey).orElse(null);
    return Arrays.asList((long) hashes.size(), numbers.isEmpty() ? null : numbers.get(numbers.size() / 2), top);
  }

  private static List<Object> got(EngineConfig cfg, Object[] values, int tiles) {
    List<Object> out = new ArrayList<>();
    for (String name : new String[] {"d_", "p50_", "top1_"}) {
      for (int i = 0; i < cfg.features.length; i++) {
        if (cfg.features[i].name.equals(name + tiles)) {
          out.add(values[i]);
        }
      }
    }
    return out;
  }

  /**
   * Each window's values as of every half minute from {@code from} (after every event, as records
   * are): its last floor(n / c) buckets, exactly.
   */
  private static void checkWindows(EngineConfig cfg, EntityState s, List<Row> events, long from, long to) {
    for (long asOf = from; asOf < to; asOf += TILE / 2) {
      Object[] values = Windows.valuesAsOf(s, asOf, cfg);
      long current = Math.floorDiv(asOf, TILE);
      for (int[] w : WINDOWS) {
        long bucket = Math.floorDiv(current, w[1]);
        long first = (bucket - w[0] / w[1] + 1) * w[1];
        assertEquals(exact(events, first, current), got(cfg, values, w[0]), w[0] + " tiles as of " + asOf);
      }
    }
  }

  @Test
  void aBucketedWindowIsItsLastBucketsAcrossPartialsRestartsAndExpiry() {
    EngineConfig cfg = config(true);
    Random random = new Random(11);
    for (int round = 0; round < 5; round++) {
      List<Row> events = events(random, 200 + random.nextInt(2_000));
      EntityState s = new EntityState(cfg);
      PreAggregate map = new PreAggregate(cfg);
      int half = events.size() / 2;
      for (List<Row> part : List.of(events.subList(0, half), events.subList(half, events.size()))) {
        s = EntityState.decode(s.encode(cfg), cfg);
        List<Row> out = new ArrayList<>();
        map.process(part.iterator(), 0L).forEachRemaining(out::add);
        for (Row r : out) {
          PreAggregate.mergeInto(s, (byte[]) r.get(cfg.partialIdx), cfg);
        }
      }
      s = EntityState.decode(s.encode(cfg), cfg);
      checkWindows(cfg, s, events, 190 * TILE, 230 * TILE);
      // Expiry at 200 minutes: the tiles stay for the 60-tile count, their sketches only for the
      // 5-tile window; the values from there on are the same.
      int before = s.encode(cfg).length;
      s.expire(200 * TILE, cfg);
      s = EntityState.decode(s.encode(cfg), cfg);
      checkWindows(cfg, s, events, 200 * TILE, 260 * TILE);
      for (Tile t : s.tiles.headMap(200L - 5, true).values()) {
        assertTrue(t.sketchesEmpty(cfg.fine), "tile " + t.index + " kept its sketches");
      }
      assertTrue(s.encode(cfg).length < before);
    }
  }

  @Test
  void aBucketLeavingAWindowIsADecayBoundary() {
    EngineConfig cfg = config(true);
    EntityState s = new EntityState(cfg);
    long t = 10 * TILE + 5;
    TileFunction.add(cfg, s, SketchTileTest.event("a", t, 1, 1.0, "m"), t);
    // Tile 10 leaves its windows at 15, 30, 70; bucket 3 of grain 3 leaves 6 buckets at 27,
    // bucket 1 of grain 7 leaves 8 buckets at 63.
    List<Long> boundaries = new ArrayList<>();
    for (long b = s.nextBoundaryAfter(t, cfg); b != EntityState.NONE; b = s.nextBoundaryAfter(b, cfg)) {
      boundaries.add(b / TILE);
    }
    assertEquals(List.of(15L, 27L, 30L, 63L, 70L), boundaries);
    assertEquals(27 * TILE, s.latestBoundaryAtOrBefore(29 * TILE, cfg));
    assertEquals(0L, Windows.valuesAsOf(s, 27 * TILE, cfg)[0 + 3]);   // d_20 at its boundary
  }

  /** What the engine wrote before buckets (format 2): every sketch slot in every tile. */
  private static byte[] format2(EntityState s, EngineConfig cfg) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeByte(2);
      for (int slots : new int[] {0, 1, 0, 1, 1}) {   // numeric, hash, last, quantile, top-k
        out.writeInt(slots);
      }
      out.writeLong(s.asOf);
      out.writeLong(s.maxEvent);
      out.writeInt(0);                                 // dedupe keys
      out.writeInt(s.tiles.size());
      for (Tile t : s.tiles.values()) {
        out.writeLong(t.index);
        out.writeLong(t.count);
        t.hashes[0].writeTo(out);
        t.quantiles[0].writeTo(out);
        t.topK[0].writeTo(out);
      }
    }
    return bytes.toByteArray();
  }

  @Test
  void stateOfFormat2MovesIntoTheBuckets() throws IOException {
    EngineConfig before = config(false);
    EngineConfig now = config(true);
    List<Row> events = events(new Random(5), 1_500);
    EntityState old = new EntityState(before);
    for (Row r : events) {
      TileFunction.add(before, old, r, r.getLong(1));
    }
    old.asOf = old.maxEvent;
    EntityState s = EntityState.decode(format2(old, before), now);
    assertEquals(old.asOf, s.asOf);
    checkWindows(now, s, events, 190 * TILE, 260 * TILE);
    // Written again in format 3 and read back: the same values.
    checkWindows(now, EntityState.decode(s.encode(now), now), events, 190 * TILE, 260 * TILE);
  }
}
