package io.featurestream.tiles;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import org.apache.datasketches.hll.HllSketch;
import org.apache.datasketches.hll.TgtHllType;
import org.apache.datasketches.hll.Union;
import org.apache.datasketches.memory.Memory;

/**
 * approx_count_distinct in one tile: the exact set of the values' 64-bit hashes while it holds at
 * most {@code exactUpTo} of them, then an HLL sketch (HLL_4, lg K) fed the same hashes. The set
 * costs 8 bytes a value in the state; the sketch at most ~2^(lgK-1) bytes whatever the count.
 *
 * <p>A sketch read from the state stays serialised until the tile gets another value: a window
 * reads it through a read-only wrap, without copying it.
 */
final class DistinctSlot {
  static final int DEFAULT_LG_K = 12;
  private static final byte EXACT = 0;
  private static final byte SKETCH = 1;

  private final int exactUpTo;
  private final int lgK;
  /** The exact hashes; null once the sketch took over. */
  private LongSet exact;
  private HllSketch sketch;
  private byte[] packed;

  DistinctSlot(int exactUpTo, int lgK) {
    this.exactUpTo = exactUpTo;
    this.lgK = lgK;
    this.exact = new LongSet();
  }

  boolean isExact() {
    return exact != null;
  }

  boolean isEmpty() {
    return exact != null && exact.size() == 0;
  }

  /** The number of exact hashes; 0 once sketched. */
  int exactSize() {
    return exact == null ? 0 : exact.size();
  }

  void add(long hash) {
    if (exact != null) {
      if (exact.add(hash) && exact.size() > exactUpTo) {
        toSketch();
      }
    } else {
      live().update(hash);
    }
  }

  private void toSketch() {
    HllSketch s = new HllSketch(lgK, TgtHllType.HLL_4);
    exact.forEach(s::update);
    sketch = s;
    exact = null;
  }

  private HllSketch live() {
    if (sketch == null) {
      sketch = HllSketch.heapify(packed);
      packed = null;
    }
    return sketch;
  }

  /** The sketch for reading (only when not {@link #isExact}). */
  HllSketch view() {
    return sketch != null ? sketch : HllSketch.wrap(Memory.wrap(packed));
  }

  /** Adds another partial of the same tile. */
  void merge(DistinctSlot other) {
    if (other.exact != null) {
      other.exact.forEach(this::add);
      return;
    }
    Union union = new Union(lgK);
    union.update(other.view());
    if (exact != null) {
      exact.forEach(union::update);
      exact = null;
    } else {
      union.update(live());
    }
    sketch = union.getResult(TgtHllType.HLL_4);
    packed = null;
  }

  void writeTo(DataOutputStream out) throws IOException {
    if (exact != null) {
      out.writeByte(EXACT);
      exact.writeTo(out);
      return;
    }
    byte[] bytes = sketch != null ? sketch.toCompactByteArray() : packed;
    out.writeByte(SKETCH);
    out.writeInt(bytes.length);
    out.write(bytes);
  }

  void readFrom(DataInputStream in) throws IOException {
    byte mode = in.readByte();
    if (mode == EXACT) {
      exact.readFrom(in);
    } else if (mode == SKETCH) {
      packed = new byte[in.readInt()];
      in.readFully(packed);
      exact = null;
      sketch = null;
    } else {
      throw new IOException("unknown distinct-count mode " + mode);
    }
  }

  /** State format 1 (before sketches): the exact set only, of any size. */
  void readFormat1(DataInputStream in) throws IOException {
    exact.readFrom(in);
  }

  /**
   * The union of a window's tiles: exact while the union holds at most {@code exactUpTo} hashes
   * (every tile is then exact too), else an HLL union (estimate rounded to a whole number).
   */
  static final class Window {
    private final int exactUpTo;
    private final int lgK;
    private final LongSet exact;
    private Union union;

    /** @param expected the exact union's initial room (a window's largest exact tile) */
    Window(int exactUpTo, int lgK, int expected) {
      this.exactUpTo = exactUpTo;
      this.lgK = lgK;
      this.exact = new LongSet(Math.min(expected, exactUpTo));
    }

    void add(DistinctSlot tile) {
      if (union == null && tile.isExact()) {
        exact.addAll(tile.exact);
        if (exact.size() > exactUpTo) {
          toUnion();
        }
        return;
      }
      if (union == null) {
        toUnion();
      }
      if (tile.isExact()) {
        tile.exact.forEach(union::update);
      } else {
        union.update(tile.view());
      }
    }

    private void toUnion() {
      union = new Union(lgK);
      exact.forEach(union::update);
    }

    long value() {
      return union == null ? exact.size() : Math.round(union.getEstimate());
    }
  }
}
