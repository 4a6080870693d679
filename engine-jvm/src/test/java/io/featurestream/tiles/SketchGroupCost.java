package io.featurestream.tiles;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.spark.api.java.Optional;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.streaming.GroupStateTimeout;
import org.apache.spark.sql.streaming.TestGroupState;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * Not a test: the engine's CPU per event on bench-stream's sketch group without Spark (the map
 * side's fold and the state function apart), for comparing two versions of the engine on one
 * machine. Events as bench/stream_bench.py produces them: E entities x 100 events per
 * micro-batch spread over 10 minutes, merchants cycling through 200 per card, 3 micro-batches.
 *
 * <pre>
 *   java -cp target/test-classes:target/classes:$(cat target/cp.txt) io.featurestream.tiles.SketchGroupCost 2000 5
 * </pre>
 */
public final class SketchGroupCost {
  private static final long TILE = 60_000;
  private static final long SPAN = 10 * TILE;

  private SketchGroupCost() {}

  static StructType input() {
    return new StructType()
        .add("_key", DataTypes.StringType).add("_ts", DataTypes.LongType).add("_wm", DataTypes.TimestampType)
        .add("_dk", DataTypes.LongType).add("_h0", DataTypes.LongType).add("_q0", DataTypes.DoubleType)
        .add("_q1", DataTypes.DoubleType).add("_t0", DataTypes.StringType)
        .add("_event", new StructType().add("x", DataTypes.StringType));
  }

  /** bench/stream_bench.py's SKETCH_GROUP as featurestream.engine.aggregation.plan writes it. */
  static EngineConfig config() {
    StringBuilder f = new StringBuilder();
    int[][] windows = {{5, 1}, {60, 3}, {1440, 60}};
    String[] names = {"5m", "1h", "1d"};
    for (int q = 0; q < 2; q++) {
      for (int w = 0; w < 3; w++) {
        for (double p : new double[] {0.5, 0.95, 0.99}) {
          f.append(String.format("{\"name\": \"q%d_p%s_%s\", \"agg\": \"approx_percentile\", \"tiles\": %d, "
              + "\"slot\": %d, \"grain\": %d, \"percentile\": %s},", q, p, names[w], windows[w][0], q,
              windows[w][1], p));
        }
      }
    }
    for (int w = 0; w < 3; w++) {
      f.append(String.format("{\"name\": \"d_%s\", \"agg\": \"approx_count_distinct\", \"tiles\": %d, \"slot\": 0, "
          + "\"grain\": %d},", names[w], windows[w][0], windows[w][1]));
    }
    for (int w = 0; w < 3; w++) {
      for (int r = 1; r <= 3; r++) {
        for (String agg : new String[] {"top_k", "top_k_share"}) {
          f.append(String.format("{\"name\": \"t%d_%s_%s\", \"agg\": \"%s\", \"tiles\": %d, \"slot\": 0, "
              + "\"grain\": %d, \"rank\": %d},", r, agg, names[w], agg, windows[w][0], windows[w][1], r));
        }
      }
    }
    f.setLength(f.length() - 1);
    String json = "{\"tile_ms\": 60000, \"lateness_ms\": 300000, \"ttl_ms\": 604800000, \"dedupe_within_ms\": -1, "
        + "\"numeric_slots\": 0, \"hash_slots\": 1, \"last_slots\": 0, \"quantile_slots\": 2, \"top_k_slots\": 1, "
        + "\"distinct\": [{\"exact_up_to\": 256, \"lg_k\": 12}], \"quantile\": [{\"k\": 200}, {\"k\": 200}], "
        + "\"top_k\": [{\"sketch_size\": 64}], \"features\": [" + f + "], \"history\": false}";
    return EngineConfig.parse(json, TileEngine.mappedSchema(input()), false);
  }

  /** Micro-batch {@code b}: entities x perEntity events, in event-time order (as the bench's producer). */
  static List<Row> batch(int b, int entities, int perEntity, long start) {
    int perBatch = entities * perEntity;
    List<Row> rows = new ArrayList<>(perBatch);
    for (long i = (long) b * perBatch; i < (long) (b + 1) * perBatch; i++) {
      long t = start + (long) Math.floor(i * ((double) SPAN / perBatch));
      String merchant = "m-" + (((i / entities) * 31 + i) % 200);
      double amount = (i * 7919 % 100_000) / 100.0 + 0.5;
      rows.add(RowFactory.create("card-" + (i % entities), t, null, null, mix(merchant.hashCode()), amount,
          (double) Math.round(amount * 100), merchant, RowFactory.create("e"), null, null));
    }
    return rows;
  }

  /** A copy of {@code r} with new String objects (as each deserialised row has). */
  private static Row fresh(Row r) {
    Object[] values = new Object[r.length()];
    for (int i = 0; i < values.length; i++) {
      Object v = r.get(i);
      values[i] = v instanceof String ? new String(((String) v).toCharArray()) : v;
    }
    return RowFactory.create(values);
  }

  private static long mix(long h) {
    h *= 0x9E3779B97F4A7C15L;
    return h ^ (h >>> 29);
  }

  public static void main(String[] args) {
    int entities = args.length > 0 ? Integer.parseInt(args[0]) : 2000;
    int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 5;
    int batches = 3;
    EngineConfig cfg = config();
    long start = (1_800_000_000_000L / TILE) * TILE;
    List<List<Row>> input = new ArrayList<>();
    for (int b = 0; b < batches; b++) {
      input.add(batch(b, entities, 100, start));
    }
    ThreadMXBean bean = ManagementFactory.getThreadMXBean();
    long events = (long) entities * 100 * batches;
    long[] mapNs = new long[rounds];
    long[] stateNs = new long[rounds];
    long stateBytes = 0;
    for (int round = 0; round < rounds; round++) {
      Map<String, Optional<byte[]>> states = new LinkedHashMap<>();
      long newest = Long.MIN_VALUE;
      long sink = 0;
      for (int b = 0; b < batches; b++) {
        long watermark = newest == Long.MIN_VALUE ? 0 : newest - cfg.latenessMs;
        // Two map tasks, as the bench's two Kafka partitions (entities split by key), of rows
        // with strings of their own (as Spark's deserializer makes them: no hash code cached yet).
        List<List<Row>> parts = List.of(new ArrayList<>(), new ArrayList<>());
        for (Row r : input.get(b)) {
          parts.get(r.getString(0).hashCode() & 1).add(fresh(r));
        }
        long t0 = bean.getCurrentThreadCpuTime();
        Map<String, List<Row>> byKey = new LinkedHashMap<>();
        for (int part = 0; part < 2; part++) {
          Iterator<Row> mine = parts.get(part).iterator();
          Iterator<Row> out = new PreAggregate(cfg).process(mine, watermark);
          while (out.hasNext()) {
            Row r = out.next();
            byKey.computeIfAbsent(r.getString(0), k -> new ArrayList<>(2)).add(r);
          }
        }
        long t1 = bean.getCurrentThreadCpuTime();
        TileFunction function = new TileFunction(cfg);
        for (Map.Entry<String, List<Row>> e : byKey.entrySet()) {
          Optional<byte[]> state = states.getOrDefault(e.getKey(), Optional.empty());
          TestGroupState<byte[]> gs = TestGroupState.create(state, GroupStateTimeout.EventTimeTimeout(), 0L,
              Optional.<Object>of(watermark), state.isPresent());
          Iterator<Row> out = function.call(e.getKey(), e.getValue().iterator(), gs);
          while (out.hasNext()) {
            sink += out.next().length();
          }
          states.put(e.getKey(), gs.exists() ? Optional.of(gs.get()) : Optional.empty());
        }
        long t2 = bean.getCurrentThreadCpuTime();
        mapNs[round] += t1 - t0;
        stateNs[round] += t2 - t1;
        for (Row r : input.get(b)) {
          newest = Math.max(newest, r.getLong(1));
        }
      }
      stateBytes = 0;
      for (Optional<byte[]> s : states.values()) {
        stateBytes += s.isPresent() ? s.get().length : 0;
      }
      System.out.printf("round %d: map side %.0f ms, state function %.0f ms (%d)%n", round, mapNs[round] / 1e6,
          stateNs[round] / 1e6, sink);
    }
    Arrays.sort(mapNs);
    Arrays.sort(stateNs);
    System.out.printf("%,d events x %d rounds; median CPU per event: map side %.0f ns, state function %.0f ns; "
        + "best: %.0f / %.0f ns; state after the last batch %.0f bytes/entity%n", events, rounds,
        (double) mapNs[rounds / 2] / events, (double) stateNs[rounds / 2] / events, (double) mapNs[0] / events,
        (double) stateNs[0] / events, (double) stateBytes / entities);
  }
}
