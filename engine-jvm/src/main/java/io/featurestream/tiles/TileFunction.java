package io.featurestream.tiles;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.api.java.function.FlatMapGroupsWithStateFunction;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.streaming.GroupState;

/**
 * One entity, one micro-batch (or one timer). The rules, in the order they apply:
 *
 * <p>Rows are events, or partials that the map side (PreAggregate) folded from several non-late
 * events of the entity: a partial is merged whole, as if its events came one by one.
 *
 * <ol>
 *   <li>Clock: W = Spark's watermark (newest event time of earlier micro-batches - allowed
 *       lateness); stream time S = W + allowed lateness.
 *   <li>An event with event time e &lt; W is late: it goes out as a late row, nothing else.
 *   <li>With a dedupe step, an event whose key hash was accepted with an event time within the
 *       bound is a duplicate: counted, nothing else.
 *   <li>Other events are added to the tile holding e.
 *   <li>The record's time T is the newest accepted event time, or the latest decay boundary
 *       (tile + window) * tileMs at or before S when that is later; if that is not after the last
 *       emitted T but events were added (a correction), T = last T + 1 ms, so EventTime strictly
 *       increases and the online store takes the record.
 *   <li>One record per entity per call: every feature as of T.
 *   <li>A timer for the next decay boundary (fires when S reaches it), or for clean-up once no
 *       tile is in any window.
 * </ol>
 */
final class TileFunction implements FlatMapGroupsWithStateFunction<String, Row, byte[], Row> {
  private static final long serialVersionUID = 1L;

  private final EngineConfig cfg;

  TileFunction(EngineConfig cfg) {
    this.cfg = cfg;
  }

  @Override
  public Iterator<Row> call(String key, Iterator<Row> rows, GroupState<byte[]> state) {
    if (cfg.history) {
      return history(key, rows, state);
    }
    long watermark = state.getCurrentWatermarkMs();
    EntityState s = state.exists() ? EntityState.decode(state.get(), cfg) : new EntityState(cfg);
    List<Row> out = new ArrayList<>(1);
    long aggregated = 0;
    long duplicates = 0;
    long folded = 0;
    while (rows.hasNext()) {
      Row row = rows.next();
      if (cfg.partialIdx >= 0 && !row.isNullAt(cfg.partialIdx)) {
        long split = row.getLong(cfg.pwmIdx);
        if (split != watermark) {
          throw new IllegalStateException("a partial was split at watermark " + split
              + " but the state operator's watermark is " + watermark + ": late events could be lost");
        }
        long events = PreAggregate.mergeInto(s, (byte[]) row.get(cfg.partialIdx), cfg);
        aggregated += events;
        folded += events;
        continue;
      }
      long t = row.getLong(cfg.tsIdx);
      if (t < watermark) {
        out.add(Output.late(cfg, key, row.get(cfg.eventIdx), t, watermark));
      } else if (isDuplicate(s, row, t)) {
        duplicates++;
      } else {
        add(cfg, s, row, t);
        aggregated++;
      }
    }

    long streamTime = watermark + cfg.latenessMs;
    if (s.maxEvent != EntityState.NONE) {
      long candidate = Math.max(s.maxEvent, s.latestBoundaryAtOrBefore(streamTime, cfg));
      long asOf = EntityState.NONE;
      if (s.asOf == EntityState.NONE || candidate > s.asOf) {
        asOf = candidate;
      } else if (aggregated > 0) {
        asOf = s.asOf + 1;
      }
      if (asOf != EntityState.NONE) {
        out.add(Output.record(cfg, key, asOf, Windows.valuesAsOf(s, asOf, cfg), aggregated, duplicates,
            folded));
        s.asOf = asOf;
      } else if (duplicates > 0) {
        out.add(Output.counters(cfg, key, duplicates));
      }
    } else if (duplicates > 0) {
      out.add(Output.counters(cfg, key, duplicates));
    }

    s.expire(watermark, cfg);
    schedule(s, state, watermark, streamTime);
    return out.iterator();
  }

  /**
   * History mode (backfill): the same rules, but a record at every distinct accepted event time
   * (with every event at or before it) and at every decay boundary, instead of one per call. The
   * entity's rows of the micro-batch are taken in event-time order (the state function gets them in
   * any order), so a backfill over events in event-time order gives, at every time the stream could
   * have written a record, the record the stream writes there. Boundaries up to the next event are
   * emitted before it; after the last one, those up to the stream time S (the rest follow in later
   * calls, when S passes them).
   */
  private Iterator<Row> history(String key, Iterator<Row> rows, GroupState<byte[]> state) {
    long watermark = state.getCurrentWatermarkMs();
    EntityState s = state.exists() ? EntityState.decode(state.get(), cfg) : new EntityState(cfg);
    List<Row> out = new ArrayList<>();
    historyStep(key, rows, s, watermark, out);
    schedule(s, state, watermark, watermark + cfg.latenessMs);
    return out.iterator();
  }

  /**
   * One history-mode call at watermark {@code watermark} on state {@code s} (updated in place):
   * the records of {@code rows} and of the boundaries up to the stream time, then expiry. The
   * streaming call above and the batch pass ({@link HistoryPass}) share it, so both write the same
   * records from the same events.
   */
  void historyStep(String key, Iterator<Row> rows, EntityState s, long watermark, List<Row> out) {
    long streamTime = watermark + cfg.latenessMs;
    List<Row> events = new ArrayList<>();
    while (rows.hasNext()) {
      Row row = rows.next();
      if (cfg.partialIdx >= 0 && !row.isNullAt(cfg.partialIdx)) {
        throw new IllegalStateException("history mode takes events one by one, not map-side partials");
      }
      events.add(row);
    }
    events.sort(Comparator.comparingLong(r -> r.getLong(cfg.tsIdx)));  // stable: ties keep their order
    long pendingDuplicates = 0;
    int i = 0;
    while (i < events.size()) {
      long t = events.get(i).getLong(cfg.tsIdx);
      if (t < watermark) {
        out.add(Output.late(cfg, key, events.get(i).get(cfg.eventIdx), t, watermark));
        i++;
        continue;
      }
      emitBoundaries(key, s, t - 1, out);
      long added = 0;
      for (; i < events.size() && events.get(i).getLong(cfg.tsIdx) == t; i++) {
        Row row = events.get(i);
        if (isDuplicate(s, row, t)) {
          pendingDuplicates++;
        } else {
          add(cfg, s, row, t);
          added++;
        }
      }
      if (added > 0) {
        // An event before a record already written (out of order, within lateness): a correction.
        long asOf = s.asOf == EntityState.NONE || t > s.asOf ? t : s.asOf + 1;
        out.add(Output.record(cfg, key, asOf, Windows.valuesAsOf(s, asOf, cfg), added, pendingDuplicates, 0));
        s.asOf = asOf;
        pendingDuplicates = 0;
      }
    }
    if (pendingDuplicates > 0) {
      out.add(Output.counters(cfg, key, pendingDuplicates));
    }
    if (s.maxEvent != EntityState.NONE) {
      emitBoundaries(key, s, streamTime, out);
    }
    s.expire(watermark, cfg);
  }

  /** Decay records at every boundary after the entity's last record and at or before {@code limit}. */
  private void emitBoundaries(String key, EntityState s, long limit, List<Row> out) {
    if (s.asOf == EntityState.NONE) {
      return;  // no event yet: no tile, no boundary
    }
    long b = s.nextBoundaryAfter(s.asOf, cfg);
    while (b != EntityState.NONE && b <= limit) {
      out.add(Output.record(cfg, key, b, Windows.valuesAsOf(s, b, cfg), 0, 0, 0));
      s.asOf = b;
      b = s.nextBoundaryAfter(b, cfg);
    }
  }

  private boolean isDuplicate(EntityState s, Row row, long t) {
    if (cfg.dedupeWithinMs < 0 || row.isNullAt(cfg.dedupeIdx)) {
      return false;
    }
    long hash = row.getLong(cfg.dedupeIdx);
    Long seen = s.dedupe.get(hash);
    if (seen != null && Math.abs(seen - t) <= cfg.dedupeWithinMs) {
      return true;
    }
    if (seen == null || t > seen) {
      s.dedupe.put(hash, t);
    }
    return false;
  }

  /** One accepted event into the entity's tiles and whole-history values (also the map side's fold). */
  static void add(EngineConfig cfg, EntityState s, Row row, long t) {
    add(cfg, s, cfg.maxWindowTiles > 0 ? s.tile(Math.floorDiv(t, cfg.tileMs), cfg) : null, row, t);
  }

  /** The same with the event's tile already looked up (null when the group has no window). */
  static void add(EngineConfig cfg, EntityState s, Tile tile, Row row, long t) {
    add(cfg, s, tile, null, row, t);
  }

  /**
   * The same, with {@code recentBuckets} (one per grain, entries may be null) holding the bucket
   * of each grain the entity's previous event went to: events mostly come in time order, so the
   * next one usually lands in the same buckets without a look-up. Null: look every bucket up.
   */
  static void add(EngineConfig cfg, EntityState s, Tile tile, Tile[] recentBuckets, Row row, long t) {
    addExceptSketches(cfg, s, tile, row, t);
    if (tile == null) {
      return;
    }
    tile.addSketches(cfg, cfg.fine, row);
    for (int g = 0; g < cfg.grains.length; g++) {
      long index = Math.floorDiv(tile.index, cfg.grains[g]);
      Tile bucket = recentBuckets == null ? null : recentBuckets[g];
      if (bucket == null || bucket.index != index) {
        bucket = s.bucket(g, index, cfg);
        if (recentBuckets != null) {
          recentBuckets[g] = bucket;
        }
      }
      bucket.addSketches(cfg, cfg.atGrain[g], row);
    }
  }

  /**
   * The event's count, numeric inputs and last values, not its sketch inputs (the map side holds
   * those in a {@link SketchBuffer}): the two parts touch disjoint slots, so their order does not
   * matter.
   */
  static void addExceptSketches(EngineConfig cfg, EntityState s, Tile tile, Row row, long t) {
    s.maxEvent = Math.max(s.maxEvent, t);
    if (tile != null) {
      tile.count++;
      for (int i = 0; i < cfg.numericSlots; i++) {
        int idx = cfg.numericIdx + i;
        if (!row.isNullAt(idx)) {
          tile.addNumeric(i, row.getDouble(idx));
        }
      }
    }
    for (int i = 0; i < cfg.lastSlots; i++) {
      int idx = cfg.lastIdx + i;
      if (row.isNullAt(idx)) {
        continue;
      }
      Object value = row.get(idx);
      if (tile != null) {
        tile.addLast(i, t, value);
      }
      if (Values.newer(t, value, s.lastTs[i], s.lastValue[i])) {
        s.lastTs[i] = t;
        s.lastValue[i] = value;
      }
    }
  }

  /**
   * Spark fires an event-time timer once the watermark passes it, so a boundary b that should
   * fire when stream time reaches b gets the timer b - lateness - 1.
   */
  private void schedule(EntityState s, GroupState<byte[]> state, long watermark, long streamTime) {
    long timer = nextTimer(s, cfg, watermark, streamTime);
    if (timer == DROP) {
      state.remove();
      return;
    }
    state.update(s.encode(cfg));
    if (timer != KEEP_WITHOUT_TIMER) {
      state.setTimeoutTimestamp(timer);
    }
  }

  static final long DROP = Long.MIN_VALUE;
  static final long KEEP_WITHOUT_TIMER = Long.MIN_VALUE + 1;

  /**
   * What happens to an entity's state after a call: {@link #DROP} (nothing can use it any more),
   * {@link #KEEP_WITHOUT_TIMER}, or kept with the returned event-time timer.
   */
  static long nextTimer(EntityState s, EngineConfig cfg, long watermark, long streamTime) {
    if (s.maxEvent == EntityState.NONE) {
      return DROP;
    }
    long next = s.nextBoundaryAfter(Math.max(s.asOf, streamTime), cfg);
    if (next != EntityState.NONE) {
      return Math.max(next - cfg.latenessMs - 1, Math.max(watermark, 1));
    }
    // No tile is in any window any more: keep the entity only while something can still use it.
    if (cfg.hasWholeHistory && cfg.ttlMs <= 0) {
      return KEEP_WITHOUT_TIMER;
    }
    long keepUntil = s.asOf;
    if (cfg.hasWholeHistory) {
      keepUntil = Math.max(keepUntil, s.maxEvent + cfg.ttlMs);
    }
    if (cfg.dedupeWithinMs >= 0) {
      keepUntil = Math.max(keepUntil, s.latestDedupeExpiry(cfg));
    }
    return watermark > keepUntil ? DROP : Math.max(keepUntil, Math.max(watermark, 1));
  }
}
