package io.featurestream.tiles;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.api.java.Optional;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.streaming.GroupStateTimeout;
import org.apache.spark.sql.streaming.TestGroupState;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;

/**
 * The batch pass's chunk function writes what the streaming state function writes for the same
 * chunks: a data batch at W, then the timer batch at W' (when its timer is due), state carried.
 */
class HistoryPassTest {
  private static final String CONFIG = "{\"tile_ms\": 60000, \"lateness_ms\": 120000, \"ttl_ms\": 0,"
      + " \"dedupe_within_ms\": -1, \"numeric_slots\": 1, \"hash_slots\": 1, \"last_slots\": 1,"
      + " \"history\": true, \"features\": ["
      + "{\"name\": \"n_2m\", \"agg\": \"count\", \"tiles\": 2, \"slot\": -1},"
      + "{\"name\": \"sum_5m\", \"agg\": \"sum\", \"tiles\": 5, \"slot\": 0}]}";

  private static Row event(long t, double amount) {
    return RowFactory.create("k", t, null, null, amount, 1L, "m", null);
  }

  private static List<String> records(Iterator<Row> out, List<byte[]> state) {
    List<String> found = new ArrayList<>();
    while (out.hasNext()) {
      Row row = out.next();
      if (row.getInt(0) == Output.RECORD) {
        found.add(row.get(2) + " " + row.get(3) + " " + row.get(4));
      } else if (row.getInt(0) == Output.STATE) {
        state.add((byte[]) row.get(row.length() - 1));
      }
    }
    return found;
  }

  /** The stream: one call per micro-batch with events, one per due timer; state carried in GroupState. */
  private static List<String> stream(EngineConfig cfg, List<List<Row>> chunks) {
    TileFunction function = new TileFunction(cfg);
    List<String> out = new ArrayList<>();
    Optional<byte[]> state = Optional.empty();
    long newest = Long.MIN_VALUE;
    for (List<Row> chunk : chunks) {
      long watermark = newest == Long.MIN_VALUE ? 0 : Math.max(0, newest - cfg.latenessMs);
      TestGroupState<byte[]> data = TestGroupState.create(state, GroupStateTimeout.EventTimeTimeout(), 0L,
          Optional.<Object>of(watermark), state.isPresent());
      out.addAll(records(function.call("k", chunk.iterator(), data), new ArrayList<>()));
      state = data.exists() ? Optional.of(data.get()) : Optional.empty();
      for (Row r : chunk) {
        newest = Math.max(newest, r.getLong(1));
      }
      long after = Math.max(watermark, newest - cfg.latenessMs);
      if (data.exists() && data.getTimeoutTimestampMs().isPresent()
          && (Long) data.getTimeoutTimestampMs().get() < after) {
        TestGroupState<byte[]> timer = TestGroupState.create(state, GroupStateTimeout.EventTimeTimeout(), 0L,
            Optional.<Object>of(after), true);
        out.addAll(records(function.call("k", List.<Row>of().iterator(), timer), new ArrayList<>()));
        state = timer.exists() ? Optional.of(timer.get()) : Optional.empty();
      }
    }
    return out;
  }

  private static List<String> batch(EngineConfig cfg, List<List<Row>> chunks) {
    List<String> out = new ArrayList<>();
    List<byte[]> state = new ArrayList<>();
    long newest = Long.MIN_VALUE;
    for (List<Row> chunk : chunks) {
      long watermark = newest == Long.MIN_VALUE ? 0 : Math.max(0, newest - cfg.latenessMs);
      for (Row r : chunk) {
        newest = Math.max(newest, r.getLong(1));
      }
      List<Row> carried = new ArrayList<>();
      for (byte[] s : state) {
        carried.add(RowFactory.create("k", s));
      }
      state = new ArrayList<>();
      HistoryPass.Chunk function = new HistoryPass.Chunk(cfg, watermark, newest - cfg.latenessMs);
      out.addAll(records(function.call("k", chunk.iterator(), carried.iterator()), state));
    }
    return out;
  }

  @Test
  void chunksGiveTheStreamsRecords() {
    StructType schema = EngineFixtures.input();
    EngineConfig cfg = EngineConfig.parse(CONFIG, schema, false);
    List<List<Row>> chunks = List.of(
        List.of(event(130_000, 4), event(10_000, 2), event(130_000, 1)),
        List.of(event(200_000, 3)),
        List.of(event(1_000_000, 5), event(1_030_000, 1)),
        List.of(event(5_000_000, 7)));
    List<String> expected = stream(cfg, chunks);
    assertEquals(expected, batch(cfg, chunks));
    assertEquals(15, expected.size(), expected.toString());  // 7 events at 6 times, 9 boundaries
  }
}
