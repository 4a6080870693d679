package io.featurestream.tiles;

import java.util.Arrays;
import org.apache.spark.sql.Row;

/**
 * The map side's sketch inputs of one entity, held until {@link #replay} folds them into the
 * entity's tiles and buckets a run at a time.
 *
 * <p>Why: a partition's events interleave its entities, so each event's sketch updates (every
 * input at every grain: a dozen hash tables and arrays on bench-stream's sketch group) found them
 * cold in the cache, and those misses were most of the map side's time. Appending an event's
 * values here touches a few array ends; a replay then updates one sketch with a run of values
 * while it is hot. Each sketch still gets its values in event order, so the partial is the one
 * the event-by-event fold builds.
 */
final class SketchBuffer {
  /** Events held before a replay (bounds the memory per entity). */
  static final int CAPACITY = 64;
  /**
   * The same for a buffer that also defers its events' tiles ({@link #deferring}): ~40 bytes an
   * event on bench-stream's sketch group, so at most ~5 KB an entity, in a handful of arrays.
   */
  static final int DEFERRED_CAPACITY = 128;
  private static final int INITIAL = 8;

  private final int hashSlots;
  private final int quantileSlots;
  private final int topKSlots;
  private final int stride;
  private final int capacity;
  private int size;
  /** Per event, the tile it went to (set at the replay when the buffer defers the tiles). */
  private Tile[] tiles = new Tile[INITIAL];
  /** Per event, its time, when the buffer defers the tiles (else null). */
  private long[] times;
  /** Per event, the distinct-count hashes then the percentile values (raw bits; null as NaN, which is ignored too). */
  private long[] values;
  /** Per event and distinct-count slot, whether the hash is there (the input was not null). */
  private boolean[] hashed;
  /** Per event and top-k slot, the value (null: none). */
  private String[] strings;
  /** The map task's one object per top-k value, or null (values kept as they came). */
  private final StringCanon canon;

  SketchBuffer(EngineConfig cfg) {
    this(cfg, false, null);
  }

  /**
   * @param deferTiles hold the events' times too and look their tiles up (and count them) only at
   *     the replay: the map side then keeps an entity's events in a few arrays until its partial is
   *     encoded instead of a tree of tiles, slots and sketch tables that every young collection of
   *     the task copies ({@link #deferring})
   * @param canon the map task's top-k values, one object each (null: none)
   */
  SketchBuffer(EngineConfig cfg, boolean deferTiles, StringCanon canon) {
    this.canon = canon;
    this.capacity = deferTiles ? DEFERRED_CAPACITY : CAPACITY;
    this.times = deferTiles ? new long[INITIAL] : null;
    this.hashSlots = cfg.hashSlots;
    this.quantileSlots = cfg.quantileSlots;
    this.topKSlots = cfg.topKSlots;
    this.stride = hashSlots + quantileSlots;
    this.values = new long[INITIAL * stride];
    this.hashed = new boolean[INITIAL * hashSlots];
    this.strings = new String[INITIAL * topKSlots];
  }

  /** Whether a group has sketch inputs to hold (else the map side updates as it goes). */
  static boolean applies(EngineConfig cfg) {
    return cfg.maxWindowTiles > 0 && cfg.hashSlots + cfg.quantileSlots + cfg.topKSlots > 0;
  }

  /**
   * Whether a group's events can defer their tiles to the replay: the map side of a group whose
   * tiles hold nothing but the count and sketches (no numeric or last inputs) and whose entities
   * are folded (see PreAggregate.Fold).
   */
  static boolean deferring(EngineConfig cfg) {
    return applies(cfg) && cfg.numericSlots == 0 && cfg.lastSlots == 0;
  }

  boolean isFull() {
    return size == capacity;
  }

  /** One event's sketch inputs, bound for {@code tile} (and the buckets holding it). */
  void add(EngineConfig cfg, Tile tile, Row row) {
    add(cfg, row).tiles[size - 1] = tile;
  }

  /** One event's time and sketch inputs, its tile looked up and counted at the replay. */
  void addDeferred(EngineConfig cfg, long t, Row row) {
    add(cfg, row).times[size - 1] = t;
  }

  private SketchBuffer add(EngineConfig cfg, Row row) {
    if (size == tiles.length) {
      int cap = Math.min(capacity, size * 2);
      tiles = Arrays.copyOf(tiles, cap);
      values = Arrays.copyOf(values, cap * stride);
      hashed = Arrays.copyOf(hashed, cap * hashSlots);
      strings = Arrays.copyOf(strings, cap * topKSlots);
      if (times != null) {
        times = Arrays.copyOf(times, cap);
      }
    }
    int i = size++;
    int o = i * stride;
    // Each value read once (a Row's getLong checks for null, then reads and unboxes again).
    for (int s = 0; s < hashSlots; s++) {
      Object v = row.get(cfg.hashIdx + s);
      hashed[i * hashSlots + s] = v != null;
      values[o + s] = v != null ? (Long) v : 0L;
    }
    for (int s = 0; s < quantileSlots; s++) {
      Object v = row.get(cfg.quantileIdx + s);
      values[o + hashSlots + s] = Double.doubleToRawLongBits(v != null ? (Double) v : Double.NaN);
    }
    for (int s = 0; s < topKSlots; s++) {
      String v = (String) row.get(cfg.topKIdx + s);
      strings[i * topKSlots + s] = canon == null ? v : canon.of(v);
    }
    return this;
  }

  /**
   * Folds the held events into their tiles' sketch slots (first into their tiles' counts when
   * the buffer defers the tiles) and into the buckets of every grain,
   * one slot and one grain at a time, then empties the buffer. {@code recentBuckets} (one per
   * grain, entries may be null) caches the bucket of the previous event, as {@link TileFunction#add}.
   */
  void replay(EngineConfig cfg, EntityState state, Tile[] recentBuckets) {
    if (size == 0) {
      return;
    }
    if (times != null) {
      // The deferred tiles, looked up and counted as TileFunction.addExceptSketches does
      // (the count is a tile's only other content in a deferring group).
      Tile tile = null;
      for (int i = 0; i < size; i++) {
        long index = Math.floorDiv(times[i], cfg.tileMs);
        if (tile == null || tile.index != index) {
          tile = state.tile(index, cfg);
        }
        tile.count++;
        tiles[i] = tile;
      }
    }
    feed(cfg.fine, tiles);
    if (cfg.grains.length > 0) {
      Tile[] buckets = new Tile[size];
      for (int g = 0; g < cfg.grains.length; g++) {
        Tile bucket = recentBuckets[g];
        for (int i = 0; i < size; i++) {
          long index = Math.floorDiv(tiles[i].index, cfg.grains[g]);
          if (bucket == null || bucket.index != index) {
            bucket = state.bucket(g, index, cfg);
          }
          buckets[i] = bucket;
        }
        recentBuckets[g] = bucket;
        feed(cfg.atGrain[g], buckets);
      }
    }
    Arrays.fill(tiles, 0, size, null);
    Arrays.fill(strings, 0, size * topKSlots, null);
    size = 0;
  }

  /** Every held event into the slots {@code keep} holds of {@code into[i]}, slot by slot. */
  private void feed(SketchSlots keep, Tile[] into) {
    for (int s = 0; s < hashSlots; s++) {
      if (keep.hash[s]) {
        for (int i = 0; i < size; i++) {
          if (hashed[i * hashSlots + s]) {
            into[i].hashes[s].add(values[i * stride + s]);
          }
        }
      }
    }
    for (int s = 0; s < quantileSlots; s++) {
      if (keep.quantile[s]) {
        for (int i = 0; i < size; i++) {
          into[i].quantiles[s].add(Double.longBitsToDouble(values[i * stride + hashSlots + s]));
        }
      }
    }
    for (int s = 0; s < topKSlots; s++) {
      if (keep.topK[s]) {
        for (int i = 0; i < size; i++) {
          String v = strings[i * topKSlots + s];
          if (v != null) {
            into[i].topK[s].add(v);
          }
        }
      }
    }
  }
}
