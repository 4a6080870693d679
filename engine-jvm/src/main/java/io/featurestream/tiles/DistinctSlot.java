package io.featurestream.tiles;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.function.LongConsumer;
import org.apache.datasketches.hll.HllSketch;
import org.apache.datasketches.hll.TgtHllType;
import org.apache.datasketches.hll.Union;
import org.apache.datasketches.memory.Memory;

/**
 * approx_count_distinct in one tile: the exact set of the values' 64-bit hashes while it holds at
 * most {@code exactUpTo} of them, then an HLL sketch (HLL_4, lg K) fed the same hashes. The set
 * costs 8 bytes a value in the state; the sketch at most ~2^(lgK-1) bytes whatever the count.
 *
 * <p>What is read from the state stays serialised until the tile gets another value: a window
 * reads a sketch through a read-only wrap, without copying it, and exact hashes straight from
 * their bytes; an untouched slot is written back as the bytes it was read from.
 */
final class DistinctSlot {
  static final int DEFAULT_LG_K = 12;
  private static final byte EXACT = 0;
  private static final byte SKETCH = 1;

  private final int exactUpTo;
  private final int lgK;
  /** The exact hashes; null while they are only in {@link #exactBytes}, or once the sketch took over. */
  private LongSet exact;
  /**
   * The exact hashes as the state holds them (LongSet's format without the count), while they are
   * unchanged since read or written; else null. Null with {@link #exact}: sketched.
   */
  private byte[] exactBytes = Packed.EMPTY;
  private HllSketch sketch;
  private byte[] packed;

  DistinctSlot(int exactUpTo, int lgK) {
    this.exactUpTo = exactUpTo;
    this.lgK = lgK;
  }

  boolean isExact() {
    return exact != null || exactBytes != null;
  }

  boolean isEmpty() {
    return isExact() && exactSize() == 0;
  }

  /** The number of exact hashes; 0 once sketched. */
  int exactSize() {
    return exact != null ? exact.size() : exactBytes != null ? exactBytes.length >> 3 : 0;
  }

  void add(long hash) {
    if (isExact()) {
      LongSet set = exactSet();
      if (set.add(hash)) {
        exactBytes = null;
        if (set.size() > exactUpTo) {
          toSketch();
        }
      }
    } else {
      live().update(hash);
    }
  }

  /** The exact set to change, built from the bytes read if need be (only while {@link #isExact}). */
  private LongSet exactSet() {
    if (exact == null) {
      int n = exactBytes.length >> 3;
      exact = new LongSet(n);
      for (int i = 0; i < n; i++) {
        exact.add(Packed.longAt(exactBytes, i));
      }
    }
    return exact;
  }

  /** Every exact hash (only while {@link #isExact}). */
  void forEachExact(LongConsumer action) {
    if (exact != null) {
      exact.forEach(action);
      return;
    }
    for (int i = 0, n = exactBytes.length >> 3; i < n; i++) {
      action.accept(Packed.longAt(exactBytes, i));
    }
  }

  /** Adds every exact hash to {@code set} (only while {@link #isExact}). */
  void addExactTo(LongSet set) {
    if (exact != null) {
      set.addAll(exact);
      return;
    }
    for (int i = 0, n = exactBytes.length >> 3; i < n; i++) {
      set.add(Packed.longAt(exactBytes, i));
    }
  }

  private void toSketch() {
    HllSketch s = new HllSketch(lgK, TgtHllType.HLL_4);
    forEachExact(s::update);
    sketch = s;
    exact = null;
    exactBytes = null;
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
    if (other.isExact()) {
      other.forEachExact(this::add);
      return;
    }
    Union union = new Union(lgK);
    union.update(other.view());
    if (isExact()) {
      forEachExact(union::update);
      exact = null;
      exactBytes = null;
    } else {
      union.update(live());
    }
    sketch = union.getResult(TgtHllType.HLL_4);
    packed = null;
  }

  void writeTo(DataOutputStream out) throws IOException {
    if (isExact()) {
      if (exactBytes == null) {
        exactBytes = exact.toBytes();
      }
      out.writeByte(EXACT);
      out.writeInt(exactBytes.length >> 3);
      out.write(exactBytes);
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
      exactBytes = Packed.read(in, in.readInt());
      exact = null;
    } else if (mode == SKETCH) {
      packed = new byte[in.readInt()];
      in.readFully(packed);
      exact = null;
      exactBytes = null;
      sketch = null;
    } else {
      throw new IOException("unknown distinct-count mode " + mode);
    }
  }

  /** State format 1 (before sketches): the exact set only, of any size. */
  void readFormat1(DataInputStream in) throws IOException {
    exactBytes = Packed.read(in, in.readInt());
    exact = null;
  }

  /**
   * The union of a window's tiles: exact while the union holds at most {@code exactUpTo} hashes
   * (every tile is then exact too), else an HLL union (estimate rounded to a whole number).
   *
   * <p>The exact union starts with room for the tiles' summed sizes (at most exactUpTo), so it
   * does not grow and rehash hash by hash. Its count does not depend on its room, but the order in
   * which a union past exactUpTo receives the hashes does (the set's table order), and so may the
   * HLL estimate: before the switch the set is rebuilt as the room of the largest tile would have
   * built it (what the engine did before), from the tiles added so far, in their order.
   */
  static final class Window {
    private final int exactUpTo;
    private final int lgK;
    /** The room the exact union had before it was sized from the summed tiles (see above). */
    private final int largest;
    private LongSet exact;
    /** The exact tiles added so far, while {@link #exact} has the summed room; null if it has the other. */
    private java.util.ArrayList<DistinctSlot> added;
    private Union union;

    /**
     * @param largest the number of hashes in the window's largest exact tile
     * @param summed the summed numbers of hashes of the window's exact tiles
     */
    Window(int exactUpTo, int lgK, int largest, int summed) {
      this.exactUpTo = exactUpTo;
      this.lgK = lgK;
      this.largest = Math.min(largest, exactUpTo);
      int room = Math.min(summed, exactUpTo);
      this.exact = new LongSet(room);
      this.added = room != this.largest ? new java.util.ArrayList<>() : null;
    }

    void add(DistinctSlot tile) {
      if (union == null && tile.isExact()) {
        tile.addExactTo(exact);
        if (added != null) {
          added.add(tile);
        }
        if (exact.size() > exactUpTo) {
          toUnion();
        }
        return;
      }
      if (union == null) {
        toUnion();
      }
      if (tile.isExact()) {
        tile.forEachExact(union::update);
      } else {
        union.update(tile.view());
      }
    }

    private void toUnion() {
      if (added != null) {
        exact = new LongSet(largest);
        for (DistinctSlot t : added) {
          t.addExactTo(exact);
        }
        added = null;
      }
      union = new Union(lgK);
      exact.forEach(union::update);
    }

    long value() {
      return union == null ? exact.size() : Math.round(union.getEstimate());
    }
  }
}
