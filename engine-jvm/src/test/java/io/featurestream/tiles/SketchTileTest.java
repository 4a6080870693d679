package io.featurestream.tiles;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
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
import org.apache.datasketches.kll.KllSketch;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;

/**
 * The sketch features (approx_count_distinct with its exact-then-HLL switch, approx_percentile,
 * top_k) without Spark: merged across tiles, windows and map-side partials, serialised and read
 * back, and the state format of before the sketches; each against an exact computation of the
 * same values.
 */
class SketchTileTest {
  private static final long TILE = 60_000;

  static StructType input() {
    return new StructType()
        .add("_key", DataTypes.StringType)
        .add("_ts", DataTypes.LongType)
        .add("_wm", DataTypes.TimestampType)
        .add("_dk", DataTypes.LongType)
        .add("_h0", DataTypes.LongType)
        .add("_q0", DataTypes.DoubleType)
        .add("_t0", DataTypes.StringType)
        .add("_event", new StructType().add("x", DataTypes.StringType));
  }

  /** Distinct count, three percentiles and a top-2 over 2 and 10 tiles, with the given sketch sizes. */
  static EngineConfig config(StructType schema, int exactUpTo, int lgK, int kllK, int mapSize) {
    StringBuilder features = new StringBuilder();
    for (int tiles : new int[] {2, 10}) {
      features.append(String.format(
          "{\"name\": \"d_%1$d\", \"agg\": \"approx_count_distinct\", \"tiles\": %1$d, \"slot\": 0},"
              + "{\"name\": \"p50_%1$d\", \"agg\": \"approx_percentile\", \"tiles\": %1$d, \"slot\": 0, \"percentile\": 0.5},"
              + "{\"name\": \"p95_%1$d\", \"agg\": \"approx_percentile\", \"tiles\": %1$d, \"slot\": 0, \"percentile\": 0.95},"
              + "{\"name\": \"p99_%1$d\", \"agg\": \"approx_percentile\", \"tiles\": %1$d, \"slot\": 0, \"percentile\": 0.99},"
              + "{\"name\": \"top1_%1$d\", \"agg\": \"top_k\", \"tiles\": %1$d, \"slot\": 0, \"rank\": 1},"
              + "{\"name\": \"top1s_%1$d\", \"agg\": \"top_k_share\", \"tiles\": %1$d, \"slot\": 0, \"rank\": 1},"
              + "{\"name\": \"top2_%1$d\", \"agg\": \"top_k\", \"tiles\": %1$d, \"slot\": 0, \"rank\": 2},"
              + "{\"name\": \"top2s_%1$d\", \"agg\": \"top_k_share\", \"tiles\": %1$d, \"slot\": 0, \"rank\": 2},",
          tiles));
    }
    features.append("{\"name\": \"n_10\", \"agg\": \"count\", \"tiles\": 10, \"slot\": -1}");
    String json = "{\"tile_ms\": 60000, \"lateness_ms\": 120000, \"ttl_ms\": 0, \"dedupe_within_ms\": -1, "
        + "\"numeric_slots\": 0, \"hash_slots\": 1, \"last_slots\": 0, \"quantile_slots\": 1, \"top_k_slots\": 1, "
        + "\"distinct\": [{\"exact_up_to\": " + exactUpTo + ", \"lg_k\": " + lgK + "}], "
        + "\"quantile\": [{\"k\": " + kllK + "}], \"top_k\": [{\"sketch_size\": " + mapSize + "}], "
        + "\"features\": [" + features + "]}";
    return EngineConfig.parse(json, schema, false);
  }

  /** One event of the input layout: time, hash of the value, a number, a category. */
  static Row event(String key, long t, long hash, double number, String category) {
    return RowFactory.create(key, t, null, null, hash, number, category, RowFactory.create("e"));
  }

  private static int feature(EngineConfig cfg, String name) {
    for (int i = 0; i < cfg.features.length; i++) {
      if (cfg.features[i].name.equals(name)) {
        return i;
      }
    }
    throw new IllegalArgumentException(name);
  }

  /** Exact values of the window [first tile, last tile] from the events themselves. */
  private record Exact(Set<Long> hashes, double[] sorted, Map<String, Long> counts) {
    static Exact of(List<Row> events, long firstTile, long lastTile) {
      Set<Long> hashes = new HashSet<>();
      List<Double> numbers = new ArrayList<>();
      Map<String, Long> counts = new HashMap<>();
      for (Row r : events) {
        long tile = Math.floorDiv(r.getLong(1), TILE);
        if (tile >= firstTile && tile <= lastTile) {
          hashes.add(r.getLong(4));
          numbers.add(r.getDouble(5));
          counts.merge(r.getString(6), 1L, Long::sum);
        }
      }
      return new Exact(hashes, numbers.stream().mapToDouble(Double::doubleValue).sorted().toArray(), counts);
    }

    /** Fractions of the values below and at most v: v's rank interval. */
    double[] rank(double v) {
      int below = 0;
      int atMost = 0;
      for (double x : sorted) {
        below += x < v ? 1 : 0;
        atMost += x <= v ? 1 : 0;
      }
      return new double[] {(double) below / sorted.length, (double) atMost / sorted.length};
    }

    List<Map.Entry<String, Long>> ranked() {
      List<Map.Entry<String, Long>> list = new ArrayList<>(counts.entrySet());
      list.sort((a, b) -> a.getValue().equals(b.getValue()) ? a.getKey().compareTo(b.getKey())
          : Long.compare(b.getValue(), a.getValue()));
      return list;
    }
  }

  private static List<Row> stream(Random random, int events, int distinctHashes, int categories, long start) {
    List<Row> rows = new ArrayList<>();
    for (int i = 0; i < events; i++) {
      long t = start + random.nextInt((int) (12 * TILE));
      // Skewed categories (a few frequent ones), numbers from a long-tailed distribution.
      int category = (int) Math.floor(Math.pow(random.nextDouble(), 3) * categories);
      rows.add(event("a", t, random.nextInt(distinctHashes), Math.exp(random.nextGaussian() * 2),
          "c-" + category));
    }
    return rows;
  }

  /** Every sketch value of the record as of {@code asOf} within its bound, against the exact values. */
  private static List<String> problems(EngineConfig cfg, EntityState s, List<Row> events, long asOf,
                                       double rankError, int mapSize) {
    Object[] v = Windows.valuesAsOf(s, asOf, cfg);
    List<String> problems = new ArrayList<>();
    long current = Math.floorDiv(asOf, TILE);
    for (int tiles : new int[] {2, 10}) {
      Exact exact = Exact.of(events, current - tiles + 1, current);
      long distinct = (Long) v[feature(cfg, "d_" + tiles)];
      int exactUpTo = cfg.distinctExactUpTo[0];
      double rse = 1.04 / Math.sqrt(1 << cfg.distinctLgK[0]);
      int want = exact.hashes().size();
      if (want <= exactUpTo ? distinct != want : Math.abs(distinct - want) > 3 * rse * want) {
        problems.add("d_" + tiles + ": " + distinct + " vs " + want);
      }
      for (String q : new String[] {"50", "95", "99"}) {
        Double got = (Double) v[feature(cfg, "p" + q + "_" + tiles)];
        if (exact.sorted().length == 0 || got == null) {
          if ((got == null) != (exact.sorted().length == 0)) {
            problems.add("p" + q + "_" + tiles + ": " + got + " for " + exact.sorted().length + " values");
          }
          continue;
        }
        double[] rank = exact.rank(got);
        double target = Integer.parseInt(q) / 100.0;
        if (rank[1] < target - rankError || rank[0] > target + rankError) {
          problems.add("p" + q + "_" + tiles + ": rank " + Arrays.toString(rank) + " vs " + target);
        }
      }
      long n = exact.sorted().length;
      double epsilon = 3.5 / mapSize;
      List<Map.Entry<String, Long>> ranked = exact.ranked();
      for (int r = 1; r <= 2; r++) {
        String value = (String) v[feature(cfg, "top" + r + "_" + tiles)];
        Double share = (Double) v[feature(cfg, "top" + r + "s_" + tiles)];
        if (ranked.size() < r) {
          if (value != null || share != null) {
            problems.add("top" + r + "_" + tiles + " with fewer values: " + value);
          }
          continue;
        }
        long rthCount = ranked.get(r - 1).getValue();
        if (value == null || share == null) {
          // Past its exact range the sketch may know fewer than r values: then the true r-th is
          // at most epsilon * n frequent.
          if (value != null || share != null || rthCount > epsilon * n) {
            problems.add("top" + r + "_" + tiles + " missing: " + ranked.subList(0, r) + " of " + n);
          }
          continue;
        }
        long trueCount = exact.counts().getOrDefault(value, 0L);
        // Reported counts never undercount and overcount by at most epsilon * n; the r-th value
        // reported is at most epsilon * n less frequent than the true r-th.
        if (share * n < trueCount - 1e-6 || share * n > trueCount + epsilon * n + 1e-6
            || trueCount < rthCount - epsilon * n) {
          problems.add("top" + r + "_" + tiles + ": " + value + " " + share + " vs " + ranked.subList(0, r));
        }
      }
    }
    return problems;
  }

  @Test
  void distinctCountIsExactUpToTheThresholdThenAnHllUnion() {
    EngineConfig cfg = config(input(), 100, 12, 200, 64);
    EntityState s = new EntityState(cfg);
    Tile tile = s.tile(5, cfg);
    for (long h = 1; h <= 100; h++) {
      tile.hashes[0].add(h * 7919);
      tile.hashes[0].add(h * 7919);     // repeats change nothing
    }
    assertTrue(tile.hashes[0].isExact());
    assertEquals(100L, Windows.valuesAsOf(s, 5 * TILE, cfg)[feature(cfg, "d_2")]);
    Tile before = s.tile(4, cfg);
    for (long h = 51; h <= 120; h++) {  // 20 new values across the window: its union is past 100
      before.hashes[0].add(h * 7919);
    }
    assertTrue(before.hashes[0].isExact());
    long union = (Long) Windows.valuesAsOf(s, 5 * TILE, cfg)[feature(cfg, "d_2")];
    assertEquals(120.0, union, 120 * 3 * 1.04 / 64);
    tile.hashes[0].add(-1);             // 101 in one tile: the tile becomes a sketch
    assertTrue(!tile.hashes[0].isExact());
    Random random = new Random(7);
    for (int i = 0; i < 50_000; i++) {
      tile.hashes[0].add(random.nextLong());
    }
    double got = (Long) Windows.valuesAsOf(s, 5 * TILE, cfg)[feature(cfg, "d_2")];
    assertEquals(50_121.0, got, 50_121 * 3 * 1.04 / 64);
  }

  /**
   * A distinct-count window whose exact union has the room of its summed tiles gives what the
   * union with the room of its largest tile gave (the engine before): the same counts, and past
   * the exact range the same HLL estimates, which depend on the order the hashes reach the union.
   */
  @Test
  void distinctWindowsGiveWhatTheLargestTilesRoomGave() {
    Random random = new Random(4242);
    int unions = 0;
    for (int round = 0; round < 600; round++) {
      int exactUpTo = round % 2 == 0 ? 20 : 256;
      int lgK = 4 + random.nextInt(9);
      int universe = 1 + random.nextInt(round % 3 == 0 ? 40 : 600);
      List<DistinctSlot> tiles = new ArrayList<>();
      for (int t = 1 + random.nextInt(20); t > 0; t--) {
        DistinctSlot tile = new DistinctSlot(exactUpTo, lgK);
        for (int v = random.nextInt(exactUpTo + 8); v > 0; v--) {
          tile.add(random.nextInt(universe) * 0x9E3779B97F4A7C15L);
        }
        tiles.add(tile);
      }
      int largest = 0;
      int summed = 0;
      for (DistinctSlot tile : tiles) {
        largest = Math.max(largest, tile.exactSize());
        summed += tile.exactSize();
      }
      DistinctSlot.Window window = new DistinctSlot.Window(exactUpTo, lgK, largest, summed);
      // The window as the engine had it: the exact union with the largest tile's room.
      LongSet exact = new LongSet(Math.min(largest, exactUpTo));
      org.apache.datasketches.hll.Union union = null;
      for (DistinctSlot tile : tiles) {
        window.add(tile);
        if (union == null && tile.isExact()) {
          tile.addExactTo(exact);
          if (exact.size() > exactUpTo) {
            union = new org.apache.datasketches.hll.Union(lgK);
            exact.forEach(union::update);
          }
        } else {
          if (union == null) {
            union = new org.apache.datasketches.hll.Union(lgK);
            exact.forEach(union::update);
          }
          if (tile.isExact()) {
            tile.forEachExact(union::update);
          } else {
            union.update(tile.view());
          }
        }
        long want = union == null ? exact.size() : Math.round(union.getEstimate());
        assertEquals(want, window.value(), "round " + round);
      }
      unions += union != null ? 1 : 0;
    }
    assertTrue(unions > 100, "only " + unions + " windows went past their exact range");
  }

  @Test
  void randomStreamsStayWithinTheDocumentedBoundsAcrossTilesPartialsAndRestarts() {
    // Small sketches, so that tiles and windows switch to them: KLL k=16, HLL lg K 8 after 20
    // exact values, frequent items of 16 (exact up to 12 distinct values).
    int kllK = 16;
    int mapSize = 16;
    EngineConfig cfg = config(TileEngine.mappedSchema(input()), 20, 8, kllK, mapSize);
    double rankError = KllSketch.getNormalizedRankError(kllK, false);
    Random random = new Random(2024);
    int checks = 0;
    List<String> problems = new ArrayList<>();
    for (int round = 0; round < 150; round++) {
      List<Row> events = stream(random, 20 + random.nextInt(600), 5 + random.nextInt(400),
          3 + random.nextInt(40), 100 * TILE);
      // Two map-side partials per half, a restart (encode, decode) between the halves.
      int half = events.size() / 2;
      EntityState s = new EntityState(cfg);
      PreAggregate map = new PreAggregate(cfg);
      for (List<Row> part : List.of(events.subList(0, half), events.subList(half, events.size()))) {
        s = EntityState.decode(s.encode(cfg), cfg);
        for (List<Row> task : List.of(part.subList(0, part.size() / 3), part.subList(part.size() / 3, part.size()))) {
          List<Row> out = new ArrayList<>();
          map.process(task.iterator(), 0L).forEachRemaining(out::add);
          for (Row r : out) {
            PreAggregate.mergeInto(s, (byte[]) r.get(cfg.partialIdx), cfg);
          }
        }
      }
      s = EntityState.decode(s.encode(cfg), cfg);
      for (long asOf = 100 * TILE; asOf < 114 * TILE; asOf += TILE) {
        problems.addAll(problems(cfg, s, events, asOf, rankError, mapSize));
        checks += 2 * 8;
      }
    }
    System.out.printf("sketch accuracy: %d of %d values outside their bound (KLL k=%d: rank error %.4f)%n",
        problems.size(), checks, kllK, rankError);
    // The KLL bound holds at 99% confidence per sketch; HLL at 3 standard errors (99.7%); the
    // frequent-items bound always.
    long hard = problems.stream().filter(p -> p.startsWith("top")).count();
    assertEquals(0, hard, problems.toString());
    assertTrue(problems.size() <= checks / 100, problems.toString());
  }

  /**
   * A window of at most k raw values reads its percentiles off the sorted values instead of a KLL
   * sketch: the same doubles as the sketch gives (ties, signed zeros, ranks 0 and 1, tiles of raw
   * decimals and of raw doubles read from the state), and past k values or with a sketch tile the
   * sketch itself.
   */
  @Test
  void exactWindowsGiveTheSketchsValuesBitForBit() throws IOException {
    Random random = new Random(21);
    double[] ranks = {0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0, 1.0 / 3};
    for (int round = 0; round < 400; round++) {
      int k = round % 3 == 0 ? 8 : 200;
      int tiles = 1 + random.nextInt(12);
      List<QuantileSlot> slots = new ArrayList<>();
      org.apache.datasketches.kll.KllDoublesSketch oracle =
          org.apache.datasketches.kll.KllDoublesSketch.newHeapInstance(k);
      // A shorter window of the same pass read first, as Windows does: its first tiles only.
      int shorter = random.nextInt(tiles + 1);
      org.apache.datasketches.kll.KllDoublesSketch shorterOracle = null;
      for (int t = 0; t < tiles; t++) {
        if (t == shorter) {
          shorterOracle = org.apache.datasketches.kll.KllDoublesSketch.heapify(
              org.apache.datasketches.memory.Memory.wrap(oracle.toByteArray()));
        }
        QuantileSlot slot = new QuantileSlot(k);
        int values = random.nextInt(round % 2 == 0 ? 40 : 4);
        for (int v = 0; v < values; v++) {
          double x = random.nextInt(5) == 0 ? (random.nextBoolean() ? 0.0 : -0.0)
              : random.nextBoolean() ? random.nextInt(20) / 4.0 : random.nextGaussian() * 1e3;
          slot.add(x);
          oracle.update(x);
        }
        if (random.nextBoolean()) {  // read back from the state: raw bytes, decimals or a sketch
          ByteArrayOutputStream bytes = new ByteArrayOutputStream();
          slot.writeTo(new DataOutputStream(bytes), random.nextBoolean());
          slot = new QuantileSlot(k);
          slot.readFrom(new java.io.DataInputStream(new java.io.ByteArrayInputStream(bytes.toByteArray())));
          for (int v = random.nextInt(3) == 0 ? random.nextInt(8) : 0; v > 0; v--) {  // values after those read
            double x = random.nextInt(10) == 0 ? -0.0 : random.nextInt(20) / 4.0;
            slot.add(x);
            oracle.update(x);
          }
        }
        slots.add(slot);
      }
      QuantileSlot.Window window = new QuantileSlot.Window(k);
      for (int t = 0; t < slots.size(); t++) {
        if (t == shorter) {
          Double[] first = window.quantiles(ranks);
          if (!shorterOracle.isEmpty() && !shorterOracle.isEstimationMode()) {
            double[] want = shorterOracle.getQuantiles(ranks);
            for (int i = 0; i < ranks.length; i++) {
              assertEquals(Double.doubleToRawLongBits(want[i]), Double.doubleToRawLongBits(first[i]),
                  "round " + round + " (shorter window) rank " + ranks[i]);
            }
          }
        }
        window.add(slots.get(t));
      }
      Double[] got = window.quantiles(ranks);
      if (oracle.isEmpty()) {
        assertArrayEquals(new Double[ranks.length], got);
        continue;
      }
      double[] want = oracle.getQuantiles(ranks);
      if (oracle.isEstimationMode()) {
        continue;  // compacted at random: the path is the sketch's own, as before
      }
      for (int i = 0; i < ranks.length; i++) {
        assertEquals(Double.doubleToRawLongBits(want[i]), Double.doubleToRawLongBits(got[i]),
            "round " + round + " rank " + ranks[i] + ": " + want[i] + " vs " + got[i]);
      }
    }
  }

  /**
   * A top-k window of one tile reads that tile's sketch as it is: the same values, counts and
   * shares as merging every tile into an empty sketch gives, in and past the exact range, also
   * when more tiles follow (the next, longer window of one pass).
   */
  @Test
  void topKWindowsGiveWhatMergingEveryTileGives() throws IOException {
    Random random = new Random(2121);
    for (int round = 0; round < 500; round++) {
      int mapSize = round % 2 == 0 ? 8 : 64;
      int tiles = 1 + random.nextInt(round % 3 == 0 ? 2 : 8);
      List<TopKSlot> slots = new ArrayList<>();
      for (int t = 0; t < tiles; t++) {
        TopKSlot slot = new TopKSlot(mapSize);
        int values = random.nextInt(random.nextBoolean() ? 6 : 60);
        int spread = 1 + random.nextInt(round % 4 == 0 ? 200 : 12);
        for (int v = 0; v < values; v++) {
          slot.add("m-" + random.nextInt(spread));
        }
        if (random.nextBoolean()) {  // read back from the state: exact form or the sketch's own
          ByteArrayOutputStream bytes = new ByteArrayOutputStream();
          slot.writeTo(new DataOutputStream(bytes), random.nextBoolean());
          slot = new TopKSlot(mapSize);
          slot.readFrom(new java.io.DataInputStream(new java.io.ByteArrayInputStream(bytes.toByteArray())));
        }
        slots.add(slot);
      }
      TopKSlot.Window window = new TopKSlot.Window(mapSize);
      TopKSlot all = new TopKSlot(mapSize);
      for (int t = 0; t < slots.size(); t++) {
        window.add(slots.get(t));
        all.merge(slots.get(t));
        for (int rank = 1; rank <= 6; rank++) {
          String want = all.isEmpty() ? null : topValue(all, mapSize, rank);
          assertEquals(want, window.value(rank), "round " + round + " tile " + t + " rank " + rank);
          assertEquals(all.isEmpty() ? null : topShare(all, mapSize, rank), window.share(rank));
        }
      }
    }
  }

  /** The rank-th value of a slot merged into an empty sketch (the window as it was before its short cuts). */
  private static String topValue(TopKSlot slot, int mapSize, int rank) throws IOException {
    return rankedRow(slot, mapSize, rank) == null ? null : rankedRow(slot, mapSize, rank).getItem();
  }

  private static Double topShare(TopKSlot slot, int mapSize, int rank) throws IOException {
    org.apache.datasketches.frequencies.ItemsSketch<String> merged = mergedCopy(slot, mapSize);
    org.apache.datasketches.frequencies.ItemsSketch.Row<String> r = rankedRow(slot, mapSize, rank);
    return r == null ? null : (double) r.getEstimate() / merged.getStreamLength();
  }

  private static org.apache.datasketches.frequencies.ItemsSketch.Row<String> rankedRow(TopKSlot slot, int mapSize,
      int rank) throws IOException {
    org.apache.datasketches.frequencies.ItemsSketch.Row<String>[] rows = mergedCopy(slot, mapSize)
        .getFrequentItems(org.apache.datasketches.frequencies.ErrorType.NO_FALSE_NEGATIVES);
    Arrays.sort(rows, java.util.Comparator.<org.apache.datasketches.frequencies.ItemsSketch.Row<String>>comparingLong(
        r -> -r.getEstimate()).thenComparing(r -> r.getItem()));
    return rank <= rows.length ? rows[rank - 1] : null;
  }

  /** The slot's sketch (through its state form) merged into an empty one of the size. */
  private static org.apache.datasketches.frequencies.ItemsSketch<String> mergedCopy(TopKSlot slot, int mapSize)
      throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    slot.writeTo(new DataOutputStream(bytes), false);
    byte[] all = bytes.toByteArray();
    org.apache.datasketches.frequencies.ItemsSketch<String> merged =
        new org.apache.datasketches.frequencies.ItemsSketch<>(mapSize);
    merged.merge(org.apache.datasketches.frequencies.ItemsSketch.getInstance(
        org.apache.datasketches.memory.Memory.wrap(Arrays.copyOfRange(all, 4, all.length)),
        new org.apache.datasketches.ArrayOfStringsSerDe()));
    return merged;
  }

  @Test
  void smallWindowsAreExact() {
    EngineConfig cfg = config(input(), 256, 12, 200, 64);
    EntityState s = new EntityState(cfg);
    List<Row> events = new ArrayList<>();
    for (int i = 0; i < 40; i++) {
      Row r = event("a", i * 5_000L, i % 9, i * 1.5, "m-" + (i % 4 == 0 ? 0 : i % 3));
      events.add(r);
      TileFunction.add(cfg, s, r, r.getLong(1));
    }
    EntityState back = EntityState.decode(s.encode(cfg), cfg);
    Object[] v = Windows.valuesAsOf(back, 199_999L, cfg);    // 10 tiles: all 40 events
    assertEquals(9L, v[feature(cfg, "d_10")]);
    // KLL's exact quantile: the value at sorted position floor(q * n); q = 1 the maximum.
    assertEquals(20 * 1.5, (Double) v[feature(cfg, "p50_10")], 0.0);
    assertEquals(38 * 1.5, (Double) v[feature(cfg, "p95_10")], 0.0);
    assertEquals(39 * 1.5, (Double) v[feature(cfg, "p99_10")], 0.0);
    assertEquals("m-0", v[feature(cfg, "top1_10")]);      // 20 of 40
    assertEquals(0.5, (Double) v[feature(cfg, "top1s_10")], 0.0);
    assertEquals("m-1", v[feature(cfg, "top2_10")]);      // m-1 and m-2 have 10 each: the smaller value
    assertEquals(0.25, (Double) v[feature(cfg, "top2s_10")], 0.0);
    Object[] empty = Windows.valuesAsOf(back, 100 * TILE, cfg);
    assertEquals(0L, empty[feature(cfg, "d_2")]);
    assertNull(empty[feature(cfg, "p50_2")]);
    assertNull(empty[feature(cfg, "top1_2")]);
    assertNull(empty[feature(cfg, "top1s_2")]);
  }

  @Test
  void stateRoundTripsInEveryModeAndRefusesAnotherLayout() {
    EngineConfig cfg = config(input(), 20, 10, 16, 8);
    EntityState s = new EntityState(cfg);
    Random random = new Random(3);
    for (int i = 0; i < 2_000; i++) {        // tile 0: sketches; tile 1: exact and raw
      long t = i < 1_990 ? random.nextInt((int) TILE) : TILE + i;
      TileFunction.add(cfg, s, event("a", t, random.nextLong(), random.nextDouble(), "v" + random.nextInt(30)), t);
    }
    s.asOf = 5;
    byte[] bytes = s.encode(cfg);
    EntityState back = EntityState.decode(bytes, cfg);
    // The round trip is exact: the decoded state encodes to the same bytes.
    assertArrayEquals(bytes, back.encode(cfg));
    // Values of both: equal, except percentiles over 2 tiles. Merging KLL sketches compacts them
    // with random coin flips (DataSketches' own), so two merges of the same tiles may answer
    // different items within KLL's error (k = 16 here: uniform values within 0.15).
    Object[] before = Windows.valuesAsOf(s, TILE + 5, cfg);
    Object[] after = Windows.valuesAsOf(back, TILE + 5, cfg);
    for (int i = 0; i < before.length; i++) {
      if (cfg.features[i].name.startsWith("p") && before[i] != null) {
        assertEquals((Double) before[i], (Double) after[i], 0.15, cfg.features[i].name);
      } else {
        assertEquals(before[i], after[i], cfg.features[i].name);
      }
    }
    // Read back, then updated: the sketches come back to life (HLL is deterministic: same value).
    TileFunction.add(cfg, back, event("a", 7, 1L, 0.5, "v1"), 7);
    TileFunction.add(cfg, s, event("a", 7, 1L, 0.5, "v1"), 7);
    assertEquals(Windows.valuesAsOf(s, TILE + 5, cfg)[feature(cfg, "d_2")],
        Windows.valuesAsOf(back, TILE + 5, cfg)[feature(cfg, "d_2")]);

    String other = "{\"tile_ms\": 60000, \"lateness_ms\": 0, \"numeric_slots\": 0, \"hash_slots\": 1,"
        + " \"last_slots\": 0, \"quantile_slots\": 0, \"top_k_slots\": 1, \"features\": ["
        + "{\"name\": \"n\", \"agg\": \"count\", \"tiles\": 1}]}";
    EngineConfig changed = EngineConfig.parse(other, input(), false);
    IncompatibleStateException e = assertThrows(IncompatibleStateException.class,
        () -> EntityState.decode(bytes, changed));
    assertTrue(e.getMessage().endsWith("start from a new checkpoint"), e.getMessage());
  }

  /** The state format before sketches (format 1), written the way the engine wrote it then. */
  private static byte[] format1(long asOf, long maxEvent, Map<Long, long[]> tiles) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeByte(1);
      out.writeInt(0);                        // numeric, hash, last slots
      out.writeInt(1);
      out.writeInt(0);
      out.writeLong(asOf);
      out.writeLong(maxEvent);
      out.writeInt(0);                        // dedupe keys
      out.writeInt(tiles.size());
      for (Map.Entry<Long, long[]> tile : tiles.entrySet()) {
        out.writeLong(tile.getKey());
        out.writeLong(tile.getValue().length);  // count
        out.writeInt(tile.getValue().length);   // the hash set
        for (long h : tile.getValue()) {
          out.writeLong(h);
        }
      }
    }
    return bytes.toByteArray();
  }

  @Test
  void stateOfBeforeSketchesReadsAsBeforeOrIsRefused() throws IOException {
    Map<Long, long[]> tiles = new java.util.TreeMap<>();
    tiles.put(3L, new long[] {1, 2, 3, 0});
    tiles.put(4L, java.util.stream.LongStream.range(10, 410).toArray());
    byte[] old = format1(4 * TILE + 1, 4 * TILE, tiles);
    String json = "{\"tile_ms\": 60000, \"lateness_ms\": 0, \"numeric_slots\": 0, \"hash_slots\": 1,"
        + " \"last_slots\": 0, \"distinct\": [{\"exact_up_to\": 1000, \"lg_k\": 12}], \"features\": ["
        + "{\"name\": \"d\", \"agg\": \"approx_count_distinct\", \"tiles\": 2, \"slot\": 0},"
        + "{\"name\": \"n\", \"agg\": \"count\", \"tiles\": 2, \"slot\": -1}]}";
    StructType in = new StructType().add("_key", DataTypes.StringType).add("_ts", DataTypes.LongType)
        .add("_dk", DataTypes.LongType).add("_h0", DataTypes.LongType)
        .add("_event", new StructType().add("x", DataTypes.StringType));
    EngineConfig cfg = EngineConfig.parse(json, in, false);
    EntityState s = EntityState.decode(old, cfg);
    assertEquals(4 * TILE + 1, s.asOf);
    assertEquals(Arrays.asList(404L, 404L), Arrays.asList(Windows.valuesAsOf(s, 4 * TILE, cfg)));
    // Written again in format 2, read again: the same.
    assertEquals(Arrays.asList(404L, 404L),
        Arrays.asList(Windows.valuesAsOf(EntityState.decode(s.encode(cfg), cfg), 4 * TILE, cfg)));
    // A group with a percentile feature now cannot continue from it; nor can an unknown format.
    EngineConfig withPercentile = config(input(), 1000, 12, 200, 64);
    IncompatibleStateException e = assertThrows(IncompatibleStateException.class,
        () -> EntityState.decode(old, withPercentile));
    assertTrue(e.getMessage().contains("(format 1)") && e.getMessage().endsWith("start from a new checkpoint"),
        e.getMessage());
    byte[] future = old.clone();
    future[0] = 9;
    assertThrows(IncompatibleStateException.class, () -> EntityState.decode(future, cfg));
  }
}
