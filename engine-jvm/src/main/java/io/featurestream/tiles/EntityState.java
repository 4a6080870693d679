package io.featurestream.tiles;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;

/**
 * One entity's state: its tiles, whole-history last values, dedupe keys and what was emitted.
 *
 * <p>State format 2 (the one written) adds the percentile and top-k slot counts to the header and,
 * per tile, a mode byte before each distinct-count slot (exact set or HLL sketch), then the
 * percentile slots (raw values or KLL) and top-k slots (frequent items). Format 1 (before
 * sketches) is still read: its distinct-count slots are exact sets, and a group with percentile or
 * top-k features cannot continue from it.
 */
final class EntityState {
  static final long NONE = Long.MIN_VALUE;
  static final byte VERSION = 2;
  private static final byte VERSION_BEFORE_SKETCHES = 1;

  /** EventTime of the last record emitted; records only move forward. */
  long asOf = NONE;
  /** Newest accepted event time. */
  long maxEvent = NONE;
  final TreeMap<Long, Tile> tiles = new TreeMap<>();
  final long[] lastTs;
  final Object[] lastValue;
  /** Dedupe key hash → event time of the accepted event that holds it. */
  final HashMap<Long, Long> dedupe = new HashMap<>();

  EntityState(EngineConfig cfg) {
    this.lastTs = new long[cfg.lastSlots];
    this.lastValue = new Object[cfg.lastSlots];
    Arrays.fill(lastTs, Long.MIN_VALUE);
  }

  Tile tile(long index, EngineConfig cfg) {
    return tiles.computeIfAbsent(index, i -> new Tile(i, cfg));
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
    return best == Long.MAX_VALUE ? NONE : best;
  }

  /** Drop what no future record can use: tiles past the longest window, dedupe keys past their bound. */
  void expire(long watermark, EngineConfig cfg) {
    tiles.headMap(Math.floorDiv(watermark, cfg.tileMs) - cfg.maxWindowTiles, true).clear();
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
    ByteArrayOutputStream bytes = new ByteArrayOutputStream(64 + tiles.size() * 64);
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeByte(VERSION);
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
      writeTiles(out, cfg);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }

  void writeTiles(DataOutputStream out, EngineConfig cfg) throws IOException {
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
      for (int s = 0; s < cfg.hashSlots; s++) {
        t.hashes[s].writeTo(out);
      }
      for (int s = 0; s < cfg.quantileSlots; s++) {
        t.quantiles[s].writeTo(out);
      }
      for (int s = 0; s < cfg.topKSlots; s++) {
        t.topK[s].writeTo(out);
      }
      for (int s = 0; s < cfg.lastSlots; s++) {
        out.writeLong(t.lastTs[s]);
        Values.write(out, t.lastValue[s]);
      }
    }
  }

  /** Tiles as {@link #writeTiles} writes them in state format {@code version}. */
  void readTiles(DataInputStream in, EngineConfig cfg, byte version) throws IOException {
    int count = in.readInt();
    for (int i = 0; i < count; i++) {
      Tile t = new Tile(in.readLong(), cfg);
      t.count = in.readLong();
      for (int slot = 0; slot < cfg.numericSlots; slot++) {
        t.setNumeric(slot, in.readLong(), in.readDouble(), in.readDouble(), in.readDouble(), in.readDouble(),
            in.readDouble());
      }
      for (int slot = 0; slot < cfg.hashSlots; slot++) {
        if (version == VERSION_BEFORE_SKETCHES) {
          t.hashes[slot].readFormat1(in);
        } else {
          t.hashes[slot].readFrom(in);
        }
      }
      for (int slot = 0; slot < cfg.quantileSlots; slot++) {
        t.quantiles[slot].readFrom(in);
      }
      for (int slot = 0; slot < cfg.topKSlots; slot++) {
        t.topK[slot].readFrom(in);
      }
      for (int slot = 0; slot < cfg.lastSlots; slot++) {
        t.lastTs[slot] = in.readLong();
        t.lastValue[slot] = Values.read(in);
      }
      tiles.put(t.index, t);
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
    for (Tile t : other.tiles.values()) {
      Tile mine = tiles.get(t.index);
      if (mine == null) {
        tiles.put(t.index, t);
      } else {
        mine.merge(t, cfg);
      }
    }
  }

  static EntityState decode(byte[] data, EngineConfig cfg) {
    try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(data))) {
      byte version = in.readByte();
      int numeric = in.readInt();
      int hash = in.readInt();
      int last = in.readInt();
      boolean known = version == VERSION || version == VERSION_BEFORE_SKETCHES;
      int quantile = version == VERSION ? in.readInt() : 0;
      int topK = version == VERSION ? in.readInt() : 0;
      if (!known || numeric != cfg.numericSlots || hash != cfg.hashSlots || last != cfg.lastSlots
          || quantile != cfg.quantileSlots || topK != cfg.topKSlots) {
        throw new IncompatibleStateException(String.format(
            "state written for %d numeric/%d distinct/%d last/%d percentile/%d top-k inputs (format %d), the "
                + "feature group now has %d/%d/%d/%d/%d: start from a new checkpoint",
            numeric, hash, last, quantile, topK, version, cfg.numericSlots, cfg.hashSlots, cfg.lastSlots,
            cfg.quantileSlots, cfg.topKSlots));
      }
      EntityState s = new EntityState(cfg);
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
