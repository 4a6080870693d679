package io.featurestream.tiles;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * One entity's state: its tiles, the sketch buckets of coarser grains, whole-history last values,
 * dedupe keys and what was emitted.
 *
 * <p>State format 4 (the one written) is format 3 with compact forms of two sketch slots: raw
 * percentile values that are short decimals as varints (QuantileSlot), and top-k sketches that
 * never purged as sorted values and counts (TopKSlot). Format 3 is read as it is (its slots are
 * the other forms of the same layout); an engine before format 4 refuses format 4 (unknown format,
 * start from a new checkpoint).
 *
 * <p>State format 3: a tile holds only the sketch slots of grain-1 features,
 * and after the tiles come, per grain above 1 (EngineConfig.grains), its buckets: index, then the
 * sketch slots of that grain's features. Format 2 (sketches in every tile, no buckets) adds the
 * percentile and top-k slot counts to the header and, per tile, a mode byte before each
 * distinct-count slot (exact set or HLL sketch), then the percentile slots (raw values or KLL) and
 * top-k slots (frequent items); it is read and its tiles' sketches merged into the buckets of the
 * grains the features now have. Format 1 (before sketches) is read too: its distinct-count slots
 * are exact sets, and a group with percentile or top-k features cannot continue from it.
 */
final class EntityState {
  static final long NONE = Long.MIN_VALUE;
  static final byte VERSION = 4;
  private static final byte VERSION_BEFORE_COMPACT = 3;
  private static final byte VERSION_BEFORE_BUCKETS = 2;
  private static final byte VERSION_BEFORE_SKETCHES = 1;

  /** EventTime of the last record emitted; records only move forward. */
  long asOf = NONE;
  /** Newest accepted event time. */
  long maxEvent = NONE;
  final TreeMap<Long, Tile> tiles = new TreeMap<>();
  /** Per grain above 1 (EngineConfig.grains): bucket index (tile index / grain) → its sketches. */
  final List<TreeMap<Long, Tile>> buckets;
  final long[] lastTs;
  final Object[] lastValue;
  /** Dedupe key hash → event time of the accepted event that holds it. */
  final HashMap<Long, Long> dedupe = new HashMap<>();
  /** The size of the encoded state this was decoded from (0: none), to size the next encoding's buffer. */
  int decodedBytes;

  EntityState(EngineConfig cfg) {
    this.lastTs = new long[cfg.lastSlots];
    this.lastValue = new Object[cfg.lastSlots];
    Arrays.fill(lastTs, Long.MIN_VALUE);
    this.buckets = new ArrayList<>(cfg.grains.length);
    for (int g = 0; g < cfg.grains.length; g++) {
      buckets.add(new TreeMap<>());
    }
  }

  Tile tile(long index, EngineConfig cfg) {
    return tiles.computeIfAbsent(index, i -> new Tile(i, cfg));
  }

  /** Bucket {@code index} of grain number {@code g}. */
  Tile bucket(int g, long index, EngineConfig cfg) {
    return buckets.get(g).computeIfAbsent(index, i -> new Tile(i, cfg));
  }

  /** The tiles (grain 1) or the buckets of a grain. */
  TreeMap<Long, Tile> tilesOf(int grain, EngineConfig cfg) {
    return grain == 1 ? tiles : buckets.get(cfg.grainIndex(grain));
  }

  /** Latest decay boundary (tile + n) * tileMs that is at or before {@code clock}; NONE if none. */
  long latestBoundaryAtOrBefore(long clock, EngineConfig cfg) {
    long best = NONE;
    for (long k : tiles.keySet()) {
      for (int n : cfg.windowTiles) {
        long b = (k + n) * cfg.tileMs;
        if (b <= clock && b > best) {
          best = b;
        }
      }
    }
    for (int g = 0; g < cfg.grains.length; g++) {
      long width = cfg.grains[g] * cfg.tileMs;
      for (long j : buckets.get(g).keySet()) {
        for (int m : cfg.grainWindows[g]) {
          long b = (j + m) * width;
          if (b <= clock && b > best) {
            best = b;
          }
        }
      }
    }
    return best;
  }

  /** Earliest decay boundary strictly after {@code time}; NONE if every tile has left every window. */
  long nextBoundaryAfter(long time, EngineConfig cfg) {
    long best = Long.MAX_VALUE;
    for (long k : tiles.keySet()) {
      for (int n : cfg.windowTiles) {
        long b = (k + n) * cfg.tileMs;
        if (b > time && b < best) {
          best = b;
        }
      }
    }
    // A bucket leaves a window no later than its tiles (m·grain <= n tiles), so these add
    // boundaries but never keep an entity longer.
    for (int g = 0; g < cfg.grains.length; g++) {
      long width = cfg.grains[g] * cfg.tileMs;
      for (long j : buckets.get(g).keySet()) {
        for (int m : cfg.grainWindows[g]) {
          long b = (j + m) * width;
          if (b > time && b < best) {
            best = b;
          }
        }
      }
    }
    return best == Long.MAX_VALUE ? NONE : best;
  }

  /** Drop what no future record can use: tiles past the longest window, dedupe keys past their bound. */
  void expire(long watermark, EngineConfig cfg) {
    long current = Math.floorDiv(watermark, cfg.tileMs);
    tiles.headMap(current - cfg.maxWindowTiles, true).clear();
    if (cfg.fineSketchTiles > 0 && cfg.fineSketchTiles < cfg.maxWindowTiles) {
      // The tiles stay for the longer exact windows; their sketches only for the grain-1 ones.
      for (Tile t : tiles.headMap(current - cfg.fineSketchTiles, true).values()) {
        t.dropSketchesBut(null, cfg);
      }
    }
    for (int g = 0; g < cfg.grains.length; g++) {
      int[] windows = cfg.grainWindows[g];
      buckets.get(g).headMap(Math.floorDiv(watermark, cfg.grains[g] * cfg.tileMs) - windows[windows.length - 1], true)
          .clear();
    }
    if (cfg.dedupeWithinMs >= 0) {
      dedupe.values().removeIf(t -> t + cfg.dedupeWithinMs < watermark);
    }
  }

  long latestDedupeExpiry(EngineConfig cfg) {
    long latest = NONE;
    for (long t : dedupe.values()) {
      latest = Math.max(latest, t + cfg.dedupeWithinMs);
    }
    return latest;
  }

  byte[] encode(EngineConfig cfg) {
    return encode(cfg, VERSION);
  }

  /** In state format {@code version}: 4, or 3 (what the engine wrote before; for the tests of reading it). */
  byte[] encode(EngineConfig cfg, byte version) {
    if (version != VERSION && version != VERSION_BEFORE_COMPACT) {
      throw new IllegalArgumentException("cannot write state format " + version);
    }
    boolean compact = version == VERSION;
    // Sized for what was read plus a margin: growing from a small buffer copied the state ~5 times.
    StateBytes.Out bytes = StateBytes.out(Math.max(64 + tiles.size() * 64, decodedBytes + (decodedBytes >> 3) + 1024));
    try (DataOutputStream out = bytes.data()) {
      out.writeByte(version);
      out.writeInt(cfg.numericSlots);
      out.writeInt(cfg.hashSlots);
      out.writeInt(cfg.lastSlots);
      out.writeInt(cfg.quantileSlots);
      out.writeInt(cfg.topKSlots);
      out.writeLong(asOf);
      out.writeLong(maxEvent);
      for (int i = 0; i < cfg.lastSlots; i++) {
        out.writeLong(lastTs[i]);
        Values.write(out, lastValue[i]);
      }
      out.writeInt(dedupe.size());
      for (Map.Entry<Long, Long> e : dedupe.entrySet()) {
        out.writeLong(e.getKey());
        out.writeLong(e.getValue());
      }
      writeTiles(out, cfg, compact);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }

  /** The tiles, then the buckets of every grain (the part of the state a map-side partial has too). */
  void writeTiles(DataOutputStream out, EngineConfig cfg, boolean compact) throws IOException {
    out.writeInt(tiles.size());
    for (Tile t : tiles.values()) {
      out.writeLong(t.index);
      out.writeLong(t.count);
      for (int s = 0; s < cfg.numericSlots; s++) {
        out.writeLong(t.n[s]);
        out.writeDouble(t.sum(s));
        out.writeDouble(t.mean(s));
        out.writeDouble(t.m2(s));
        out.writeDouble(t.min(s));
        out.writeDouble(t.max(s));
      }
      if (cfg.fineSketchTiles > 0) {
        // One byte instead of the empty slots of the tiles that dropped their sketches.
        boolean empty = t.sketchesEmpty(cfg.fine);
        out.writeBoolean(!empty);
        if (!empty) {
          writeSketches(out, t, cfg, cfg.fine, compact);
        }
      }
      for (int s = 0; s < cfg.lastSlots; s++) {
        out.writeLong(t.lastTs[s]);
        Values.write(out, t.lastValue[s]);
      }
    }
    for (int g = 0; g < cfg.grains.length; g++) {
      out.writeInt(buckets.get(g).size());
      for (Tile b : buckets.get(g).values()) {
        out.writeLong(b.index);
        writeSketches(out, b, cfg, cfg.atGrain[g], compact);
      }
    }
  }

  private static void writeSketches(DataOutputStream out, Tile t, EngineConfig cfg, SketchSlots keep,
      boolean compact) throws IOException {
    for (int s = 0; s < cfg.hashSlots; s++) {
      if (keep.hash[s]) {
        t.hashes[s].writeTo(out);
      }
    }
    for (int s = 0; s < cfg.quantileSlots; s++) {
      if (keep.quantile[s]) {
        t.quantiles[s].writeTo(out, compact);
      }
    }
    for (int s = 0; s < cfg.topKSlots; s++) {
      if (keep.topK[s]) {
        t.topK[s].writeTo(out, compact);
      }
    }
  }

  private static void readSketches(DataInputStream in, Tile t, EngineConfig cfg, SketchSlots keep, byte version)
      throws IOException {
    for (int slot = 0; slot < cfg.hashSlots; slot++) {
      if (!keep.hash[slot]) {
        continue;
      }
      if (version == VERSION_BEFORE_SKETCHES) {
        t.hashes[slot].readFormat1(in);
      } else {
        t.hashes[slot].readFrom(in);
      }
    }
    for (int slot = 0; slot < cfg.quantileSlots; slot++) {
      if (keep.quantile[slot]) {
        t.quantiles[slot].readFrom(in);
      }
    }
    for (int slot = 0; slot < cfg.topKSlots; slot++) {
      if (keep.topK[slot]) {
        t.topK[slot].readFrom(in);
      }
    }
  }

  /** Tiles (and buckets) as {@link #writeTiles} writes them in state format {@code version}. */
  void readTiles(DataInputStream in, EngineConfig cfg, byte version) throws IOException {
    boolean bucketed = version >= VERSION_BEFORE_COMPACT;
    SketchSlots inTiles = bucketed ? cfg.fine : SketchSlots.all(cfg.hashSlots, cfg.quantileSlots, cfg.topKSlots);
    int count = in.readInt();
    for (int i = 0; i < count; i++) {
      Tile t = new Tile(in.readLong(), cfg);
      t.count = in.readLong();
      for (int slot = 0; slot < cfg.numericSlots; slot++) {
        t.setNumeric(slot, in.readLong(), in.readDouble(), in.readDouble(), in.readDouble(), in.readDouble(),
            in.readDouble());
      }
      if (!bucketed || (cfg.fineSketchTiles > 0 && in.readBoolean())) {
        readSketches(in, t, cfg, inTiles, version);
      }
      for (int slot = 0; slot < cfg.lastSlots; slot++) {
        t.lastTs[slot] = in.readLong();
        t.lastValue[slot] = Values.read(in);
      }
      tiles.put(t.index, t);
    }
    if (!bucketed) {
      intoBuckets(cfg);
      return;
    }
    for (int g = 0; g < cfg.grains.length; g++) {
      int size = in.readInt();
      for (int i = 0; i < size; i++) {
        Tile b = new Tile(in.readLong(), cfg);
        readSketches(in, b, cfg, cfg.atGrain[g], version);
        buckets.get(g).put(b.index, b);
      }
    }
  }

  /**
   * State of formats 1 and 2 kept every sketch in the tiles: each tile's sketches go to the
   * buckets of the grains their features now have, and leave the tile unless a feature of grain
   * 1 reads them (values as if the events had come with this definition; sketch merges stay
   * within the sketches' bounds).
   */
  private void intoBuckets(EngineConfig cfg) {
    for (Tile t : tiles.values()) {
      for (int g = 0; g < cfg.grains.length; g++) {
        t.sketchesInto(bucket(g, Math.floorDiv(t.index, cfg.grains[g]), cfg), cfg.atGrain[g]);
      }
      t.dropSketchesBut(cfg.fine, cfg);
    }
  }

  /** Merges a partial (one map task's events of this entity, none of them late) into this state. */
  void merge(EntityState other, EngineConfig cfg) {
    maxEvent = Math.max(maxEvent, other.maxEvent);
    for (int i = 0; i < cfg.lastSlots; i++) {
      if (Values.newer(other.lastTs[i], other.lastValue[i], lastTs[i], lastValue[i])) {
        lastTs[i] = other.lastTs[i];
        lastValue[i] = other.lastValue[i];
      }
    }
    mergeTiles(tiles, other.tiles, cfg);
    for (int g = 0; g < cfg.grains.length; g++) {
      mergeTiles(buckets.get(g), other.buckets.get(g), cfg);
    }
  }

  private static void mergeTiles(TreeMap<Long, Tile> into, TreeMap<Long, Tile> from, EngineConfig cfg) {
    for (Tile t : from.values()) {
      Tile mine = into.get(t.index);
      if (mine == null) {
        t.adopt();
        into.put(t.index, t);
      } else {
        mine.merge(t, cfg);
      }
    }
  }

  static EntityState decode(byte[] data, EngineConfig cfg) {
    try (DataInputStream in = StateBytes.in(data)) {
      byte version = in.readByte();
      int numeric = in.readInt();
      int hash = in.readInt();
      int last = in.readInt();
      boolean known = version == VERSION || version == VERSION_BEFORE_COMPACT || version == VERSION_BEFORE_BUCKETS
          || version == VERSION_BEFORE_SKETCHES;
      int quantile = version != VERSION_BEFORE_SKETCHES ? in.readInt() : 0;
      int topK = version != VERSION_BEFORE_SKETCHES ? in.readInt() : 0;
      if (!known || numeric != cfg.numericSlots || hash != cfg.hashSlots || last != cfg.lastSlots
          || quantile != cfg.quantileSlots || topK != cfg.topKSlots) {
        throw new IncompatibleStateException(String.format(
            "state written for %d numeric/%d distinct/%d last/%d percentile/%d top-k inputs (format %d), the "
                + "feature group now has %d/%d/%d/%d/%d: start from a new checkpoint",
            numeric, hash, last, quantile, topK, version, cfg.numericSlots, cfg.hashSlots, cfg.lastSlots,
            cfg.quantileSlots, cfg.topKSlots));
      }
      EntityState s = new EntityState(cfg);
      s.decodedBytes = data.length;
      s.asOf = in.readLong();
      s.maxEvent = in.readLong();
      for (int i = 0; i < cfg.lastSlots; i++) {
        s.lastTs[i] = in.readLong();
        s.lastValue[i] = Values.read(in);
      }
      int keys = in.readInt();
      for (int i = 0; i < keys; i++) {
        s.dedupe.put(in.readLong(), in.readLong());
      }
      s.readTiles(in, cfg, version);
      return s;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
