package io.featurestream.tiles;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.sql.Timestamp;
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

/** History mode (the backfill): a record at every event time and every decay boundary, in event-time order. */
class HistoryModeTest {

  private static EngineConfig history(StructType schema) {
    String json = "{\"tile_ms\": 60000, \"lateness_ms\": 120000, \"ttl_ms\": 0, \"dedupe_within_ms\": -1,"
        + " \"numeric_slots\": 1, \"hash_slots\": 1, \"last_slots\": 1, \"history\": true, \"features\": ["
        + "{\"name\": \"n_2m\", \"agg\": \"count\", \"tiles\": 2, \"slot\": -1},"
        + "{\"name\": \"sum_5m\", \"agg\": \"sum\", \"tiles\": 5, \"slot\": 0}]}";
    return EngineConfig.parse(json, TileEngine.mappedSchema(schema), false);
  }

  private static Row event(long t, double amount) {
    return RowFactory.create("k", t, null, null, amount, 1L, "m", null, null, null);
  }

  private static List<long[]> records(Iterator<Row> out) {
    List<long[]> found = new ArrayList<>();
    while (out.hasNext()) {
      Row row = out.next();
      if (row.getInt(0) == Output.RECORD) {
        found.add(new long[] {((Timestamp) row.get(2)).getTime(), row.getLong(3), Math.round(row.getDouble(4))});
      }
    }
    return found;
  }

  @Test
  void recordsAtEveryEventAndBoundaryInEventTimeOrder() {
    EngineConfig cfg = history(EngineFixtures.input());
    TileFunction function = new TileFunction(cfg);
    // Out of order in the batch; the stream time (watermark 0 + 120s lateness) is 120s.
    TestGroupState<byte[]> state = TestGroupState.create(Optional.empty(), GroupStateTimeout.EventTimeTimeout(),
        0L, Optional.<Object>of(0L), false);
    List<long[]> got = records(function.call("k", List.of(event(130_000, 4), event(10_000, 2),
        event(130_000, 1)).iterator(), state));
    // (time, count over 2 tiles, sum over 5 tiles): the event at 10s, its 2-tile window ending at
    // 120s, both events at 130s at once; nothing after: the next boundary (240s) is past 120s.
    assertEquals(3, got.size());
    assertEquals(List.of(10_000L, 1L, 2L), List.of(got.get(0)[0], got.get(0)[1], got.get(0)[2]));
    assertEquals(List.of(120_000L, 0L, 2L), List.of(got.get(1)[0], got.get(1)[1], got.get(1)[2]));
    assertEquals(List.of(130_000L, 2L, 7L), List.of(got.get(2)[0], got.get(2)[1], got.get(2)[2]));

    // A timer call once the stream time is 400s: the boundaries 240s (2m window) and 300s (5m of tile 0).
    TestGroupState<byte[]> later = TestGroupState.create(Optional.of(state.get()),
        GroupStateTimeout.EventTimeTimeout(), 0L, Optional.<Object>of(280_000L), true);
    List<long[]> decay = records(function.call("k", List.<Row>of().iterator(), later));
    assertEquals(2, decay.size());
    assertEquals(List.of(240_000L, 0L, 7L), List.of(decay.get(0)[0], decay.get(0)[1], decay.get(0)[2]));
    assertEquals(List.of(300_000L, 0L, 5L), List.of(decay.get(1)[0], decay.get(1)[1], decay.get(1)[2]));
  }
}
