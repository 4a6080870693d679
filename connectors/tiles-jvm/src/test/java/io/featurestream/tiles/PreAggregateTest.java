package io.featurestream.tiles;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
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
}
