package io.featurestream.tiles;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;

/** The state and window arithmetic without Spark: values computed by hand for a few events. */
class TileStateTest {
  private static final long TILE = 60_000;

  private static StructType input() {
    return EngineFixtures.input();
  }

  private static EngineConfig config() {
    return EngineFixtures.config(input(), 300_000);
  }

  /** Events (time, amount, hash, merchant) added the way TileFunction adds them. */
  private static EntityState state(EngineConfig cfg, Object[][] events) {
    EntityState s = new EntityState(cfg);
    for (Object[] e : events) {
      long t = (Long) e[0];
      Tile tile = s.tile(Math.floorDiv(t, TILE), cfg);
      tile.count++;
      tile.addNumeric(0, (Double) e[1]);
      tile.hashes[0].add((Long) e[2]);
      tile.addLast(0, t, e[3]);
      if (Values.newer(t, e[3], s.lastTs[0], s.lastValue[0])) {
        s.lastTs[0] = t;
        s.lastValue[0] = e[3];
      }
      s.maxEvent = Math.max(s.maxEvent, t);
    }
    return s;
  }

  private static final Object[][] EVENTS = {
      {10_000L, 2.0, 1L, "m-1"}, {70_000L, 4.0, 2L, "m-2"}, {130_000L, 6.0, 1L, "m-3"}, {130_000L, 9.0, 3L, "m-0"},
  };

  @Test
  void windowsCoverTheCurrentTileAndTheOnesBefore() {
    EngineConfig cfg = config();
    EntityState s = state(cfg, EVENTS);
    Object[] v = Windows.valuesAsOf(s, 130_000L, cfg);
    assertEquals(3L, v[0]);                      // tiles 1..2: 70s, 130s, 130s
    assertEquals(21.0, (Double) v[1], 1e-12);
    assertEquals(5.25, (Double) v[2], 1e-12);
    assertEquals(2.0, v[3]);
    assertEquals(9.0, v[4]);
    double mean = 5.25;
    double var = ((2 - mean) * (2 - mean) + (4 - mean) * (4 - mean) + (6 - mean) * (6 - mean)
        + (9 - mean) * (9 - mean)) / 4;
    assertEquals(Math.sqrt(var), (Double) v[5], 1e-12);
    assertEquals(Math.sqrt(var * 4 / 3), (Double) v[6], 1e-12);
    assertEquals(3L, v[7]);
    assertEquals("m-3", v[8]);                   // tie at 130s: the greater value wins
    assertEquals("m-3", v[9]);
  }

  @Test
  void emptyWindowsAreZeroOrNull() {
    EngineConfig cfg = config();
    Object[] v = Windows.valuesAsOf(state(cfg, EVENTS), 10 * TILE, cfg);
    assertEquals(0L, v[0]);
    assertEquals(0.0, v[1]);
    assertNull(v[2]);
    assertNull(v[3]);
    assertNull(v[6]);
    assertEquals(0L, v[7]);
    assertNull(v[8]);
    assertEquals("m-3", v[9]);                   // whole history
  }

  @Test
  void decayBoundariesAreTilePlusWindow() {
    EngineConfig cfg = config();
    EntityState s = state(cfg, EVENTS);          // tiles 0, 1, 2; windows 2 and 5 tiles
    assertEquals(4 * TILE, s.latestBoundaryAtOrBefore(4 * TILE + 5, cfg));
    assertEquals(5 * TILE, s.nextBoundaryAfter(4 * TILE, cfg));
    assertEquals(EntityState.NONE, s.nextBoundaryAfter(7 * TILE, cfg));
    s.expire(6 * TILE, cfg);                     // (k + 5) * tile <= watermark: tiles 0 and 1 go
    assertEquals(1, s.tiles.size());
  }

  @Test
  void stateRoundTripsAndRefusesAnotherLayout() {
    EngineConfig cfg = config();
    EntityState s = state(cfg, EVENTS);
    s.asOf = 130_001L;
    s.dedupe.put(42L, 10_000L);
    EntityState back = EntityState.decode(s.encode(cfg), cfg);
    assertEquals(130_001L, back.asOf);
    assertEquals(10_000L, back.dedupe.get(42L));
    assertEquals(s.tiles.keySet(), back.tiles.keySet());
    assertEquals(java.util.Arrays.asList(Windows.valuesAsOf(s, 130_000L, cfg)),
        java.util.Arrays.asList(Windows.valuesAsOf(back, 130_000L, cfg)));
    String other = "{\"tile_ms\": 60000, \"lateness_ms\": 0, \"numeric_slots\": 0, \"hash_slots\": 1,"
        + " \"last_slots\": 1, \"features\": [{\"name\": \"n\", \"agg\": \"count\", \"tiles\": 1}]}";
    EngineConfig changed = EngineConfig.parse(other, input(), false);
    assertThrows(IncompatibleStateException.class, () -> EntityState.decode(s.encode(cfg), changed));
  }

  @Test
  void lastPrefersLaterTimesThenGreaterValues() {
    assertTrue(Values.newer(2, "a", 1, "z"));
    assertFalse(Values.newer(1, "z", 2, "a"));
    assertTrue(Values.newer(1, "b", 1, "a"));
    assertFalse(Values.newer(1, null, 1, "a"));
  }

  @Test
  void aWindowlessFeatureOtherThanLastIsRefused() {
    String json = "{\"tile_ms\": 60000, \"lateness_ms\": 0, \"numeric_slots\": 1, \"hash_slots\": 1,"
        + " \"last_slots\": 1, \"features\": [{\"name\": \"s\", \"agg\": \"sum\", \"tiles\": 0, \"slot\": 0}]}";
    assertThrows(InvalidEngineConfigException.class, () -> EngineConfig.parse(json, input(), false));
  }
}
