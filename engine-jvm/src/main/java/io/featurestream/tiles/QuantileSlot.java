package io.featurestream.tiles;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.Arrays;
import org.apache.datasketches.kll.KllDoublesSketch;
import org.apache.datasketches.memory.Memory;

/**
 * approx_percentile in one tile: the values themselves while there are at most k of them (what a
 * KLL sketch's first level would hold anyway, without its k-slot array), then a KLL sketch of k.
 * NaN is ignored, as the sketch does.
 *
 * <p>What is read from the state stays serialised until the tile gets another value: a window
 * reads a sketch through a read-only wrap and raw values straight from their bytes, and an
 * untouched slot is written back as the bytes it was read from. Raw values that are all short
 * decimals (amounts, cents) are stored as varints of value x 10^scale ({@link Compact}, state
 * format 4: ~3 bytes a value instead of 8), the same doubles bit for bit when read back. The
 * state function writes raw values sorted (any order reads the same; state written before is
 * read as it is), so a window merges its tiles' sorted runs instead of sorting all their values.
 */
final class QuantileSlot {
  static final int DEFAULT_K = 200;
  private static final byte RAW = 0;
  private static final byte SKETCH = 1;
  private static final byte RAW_DECIMAL = 2;
  private static final double[] NONE = new double[0];

  private final int k;
  /** The raw values; null while they are only in {@link #rawBytes}. */
  private double[] raw = NONE;
  private int size;
  /** The raw values as the state holds them, while they are unchanged since read or written; else null. */
  private byte[] rawBytes;
  /** Whether {@link #rawBytes} holds {@link Compact#decimals} (else 8 bytes a value). */
  private boolean rawDecimal;
  private KllDoublesSketch sketch;
  private byte[] packed;

  QuantileSlot(int k) {
    this.k = k;
  }

  boolean isEmpty() {
    return isRaw() && size == 0;
  }

  private boolean isRaw() {
    return sketch == null && packed == null;
  }

  void add(double v) {
    if (Double.isNaN(v)) {
      return;
    }
    if (!isRaw()) {
      live().update(v);
    } else if (size < k) {
      unpack();
      rawBytes = null;
      if (size == raw.length) {
        raw = Arrays.copyOf(raw, Math.min(k, Math.max(4, size * 2)));
      }
      raw[size++] = v;
    } else {
      live().update(v);
    }
  }

  /** The sketch to update: built from the raw values, or heapified from the state. */
  private KllDoublesSketch live() {
    if (sketch == null) {
      if (packed != null) {
        sketch = KllDoublesSketch.heapify(Memory.wrap(packed));
        packed = null;
      } else {
        sketch = KllDoublesSketch.newHeapInstance(k);
        for (int i = 0; i < size; i++) {
          sketch.update(rawValue(i));
        }
        raw = NONE;
        rawBytes = null;
        size = 0;
      }
    }
    return sketch;
  }

  private void unpack() {
    if (raw == null) {
      if (rawDecimal) {
        raw = Compact.fromDecimals(rawBytes, size);
        return;
      }
      raw = new double[size];
      for (int i = 0; i < size; i++) {
        raw[i] = Packed.doubleAt(rawBytes, i);
      }
    }
  }

  /** Raw value {@code i} (only while {@link #isRaw}), from the array or the bytes read. */
  private double rawValue(int i) {
    if (raw == null && rawDecimal) {
      unpack();
    }
    return raw != null ? raw[i] : Packed.doubleAt(rawBytes, i);
  }

  /**
   * A slot that came with a map-side partial and becomes the state's as it is: raw values that a
   * partial holds 8 bytes each are written back in the compact form where they are short
   * decimals, as a slot that got values in the state function is (the same doubles).
   */
  void adopt() {
    if (isRaw() && rawBytes != null && !rawDecimal && size > 0) {
      unpack();
      rawBytes = null;
    }
  }

  /** Adds another partial of the same tile. */
  void merge(QuantileSlot other) {
    if (other.isRaw()) {
      for (int i = 0; i < other.size; i++) {
        add(other.rawValue(i));
      }
    } else {
      live().merge(other.view());
    }
  }

  private KllDoublesSketch view() {
    return sketch != null ? sketch : KllDoublesSketch.wrap(Memory.wrap(packed));
  }

  void writeTo(DataOutputStream out) throws IOException {
    writeTo(out, true);
  }

  /** @param compact false: state format 3's forms (raw values 8 bytes each) */
  void writeTo(DataOutputStream out, boolean compact) throws IOException {
    if (isRaw() && !compact) {
      unpack();
      out.writeByte(RAW);
      out.writeInt(size);
      out.write(Packed.ofDoubles(raw, size));
      return;
    }
    if (isRaw()) {
      if (rawBytes == null) {
        // Sorted, so that a window reads this tile's values as one sorted run (Window.sort). Their
        // order means nothing else: at most the order of a sketch's updates once the tile or a
        // window passes k values, and a KLL sketch compacts at random anyway.
        Arrays.sort(raw, 0, size);
        int scale = size == 0 ? -1 : Compact.decimalScale(raw, size);
        rawDecimal = scale >= 0;
        rawBytes = rawDecimal ? Compact.decimals(raw, size, scale) : Packed.ofDoubles(raw, size);
      }
      out.writeByte(rawDecimal ? RAW_DECIMAL : RAW);
      out.writeInt(size);
      if (rawDecimal) {
        out.writeInt(rawBytes.length);
      }
      out.write(rawBytes);
      return;
    }
    byte[] bytes = sketch != null ? sketch.toByteArray() : packed;
    out.writeByte(SKETCH);
    out.writeInt(bytes.length);
    out.write(bytes);
  }

  void readFrom(DataInputStream in) throws IOException {
    byte mode = in.readByte();
    if (mode == RAW) {
      size = in.readInt();
      rawBytes = Packed.read(in, size);
      rawDecimal = false;
      raw = size == 0 ? NONE : null;
    } else if (mode == RAW_DECIMAL) {
      size = in.readInt();
      rawBytes = new byte[in.readInt()];
      in.readFully(rawBytes);
      rawDecimal = true;
      raw = null;
    } else if (mode == SKETCH) {
      packed = new byte[in.readInt()];
      in.readFully(packed);
    } else {
      throw new IOException("unknown percentile mode " + mode);
    }
  }

  /** Appends the raw values (only while {@link #isRaw}) to {@code into} from {@code at}. */
  private void copyRaw(double[] into, int at) {
    if (raw == null && rawDecimal) {
      unpack();
    }
    if (raw != null) {
      System.arraycopy(raw, 0, into, at, size);
      return;
    }
    for (int i = 0; i < size; i++) {
      into[at + i] = Packed.doubleAt(rawBytes, i);
    }
  }

  /**
   * A window's tiles merged into one KLL sketch of k (exact while it holds at most k values).
   *
   * <p>While the window holds at most k values, all from raw tiles, they are kept in one array
   * and a percentile is read off it sorted: the value at position floor(q x n) (q = 1: the
   * maximum), which is what a KLL sketch that never compacted returns (it holds the same values
   * with weight 1 each: DataSketches' posOfRank and its min and max for q = 0 and 1), without
   * building the sketch and its sorted view. Past k values or at a sketch tile, the values go into
   * the sketch in the order they came, as before.
   */
  static final class Window {
    private final int k;
    private KllDoublesSketch merged;
    /** The window's values while exact (merged == null), a run per tile; sorted in place when read. */
    private double[] values = NONE;
    private int n;
    /** Where each tile's run of {@link #values} starts. */
    private int[] starts = new int[8];
    private int runs;
    private double[] scratch = NONE;

    Window(int k) {
      this.k = k;
    }

    void add(QuantileSlot tile) {
      if (merged == null && tile.isRaw()) {
        if (tile.size == 0) {
          return;
        }
        if (n + tile.size <= k) {
          if (n + tile.size > values.length) {
            values = Arrays.copyOf(values, Math.min(k, Math.max(n + tile.size, 2 * values.length)));
          }
          tile.copyRaw(values, n);
          if (runs == starts.length) {
            starts = Arrays.copyOf(starts, 2 * runs);
          }
          starts[runs++] = n;
          n += tile.size;
          return;
        }
      }
      KllDoublesSketch sketch = sketch();
      if (tile.isRaw()) {
        for (int i = 0; i < tile.size; i++) {
          sketch.update(tile.rawValue(i));
        }
      } else {
        sketch.merge(tile.view());
      }
    }

    /** The sketch, built from the values kept so far on first use. */
    private KllDoublesSketch sketch() {
      if (merged == null) {
        merged = KllDoublesSketch.newHeapInstance(k);
        for (int i = 0; i < n; i++) {
          merged.update(values[i]);
        }
        values = NONE;
        n = 0;
        runs = 0;
      }
      return merged;
    }

    /**
     * The value at each normalised rank (0 = min, 1 = max), all from one sorted view of the sketch
     * (getQuantile would build and sort one per rank); all null for an empty window.
     */
    Double[] quantiles(double[] ranks) {
      Double[] out = new Double[ranks.length];
      if (merged == null) {
        if (n > 0) {
          sort();
          for (int i = 0; i < ranks.length; i++) {
            out[i] = values[position(ranks[i], n)];
          }
        }
        return out;
      }
      if (!merged.isEmpty()) {
        double[] got = merged.getQuantiles(ranks);
        for (int i = 0; i < ranks.length; i++) {
          out[i] = got[i];
        }
      }
      return out;
    }

    /**
     * Sorts {@link #values} in Arrays.sort's order (Double.compare: -0.0 before 0.0; no NaN gets
     * here), which is the one order of the same doubles: each tile's run on its own, then the runs
     * merged pairwise. A run read from the state is sorted already (written so), a tile that got
     * values since has a sorted prefix and a few values after it; a whole-array sort of the window
     * did the same work again for every window of every record.
     */
    private void sort() {
      for (int r = 0; r < runs; r++) {
        sortRun(starts[r], r + 1 < runs ? starts[r + 1] : n);
      }
      for (int width = 1; width < runs; width *= 2) {
        for (int r = 0; r + width < runs; r += 2 * width) {
          merge(starts[r], starts[r + width], r + 2 * width < runs ? starts[r + 2 * width] : n);
        }
      }
      runs = 1;  // sorted whole: one run for the next window's tiles to join
    }

    /** Sorts values[lo, hi): its sorted prefix kept, the rest sorted and merged into it. */
    private void sortRun(int lo, int hi) {
      int p = lo + 1;
      while (p < hi && Double.compare(values[p - 1], values[p]) <= 0) {
        p++;
      }
      if (p >= hi) {
        return;
      }
      if (hi - p <= 32) {
        for (int i = p + 1; i < hi; i++) {
          double x = values[i];
          int j = i - 1;
          while (j >= p && Double.compare(values[j], x) > 0) {
            values[j + 1] = values[j];
            j--;
          }
          values[j + 1] = x;
        }
      } else {
        Arrays.sort(values, p, hi);
      }
      merge(lo, p, hi);
    }

    /** Merges the sorted values[lo, mid) and values[mid, hi) in place. */
    private void merge(int lo, int mid, int hi) {
      if (lo == mid || mid == hi || Double.compare(values[mid - 1], values[mid]) <= 0) {
        return;
      }
      int left = mid - lo;
      if (scratch.length < left) {
        scratch = new double[Math.max(left, Math.min(k, 2 * scratch.length))];
      }
      System.arraycopy(values, lo, scratch, 0, left);
      int i = 0;
      int j = mid;
      int o = lo;
      while (i < left && j < hi) {
        values[o++] = Double.compare(values[j], scratch[i]) < 0 ? values[j++] : scratch[i++];
      }
      System.arraycopy(scratch, i, values, o, left - i);
    }

    /** DataSketches' position of a normalised rank among n values: floor(rank x n), at most n - 1. */
    static int position(double rank, int n) {
      long pos = (long) Math.floor(rank * n);
      return (int) (pos == n ? n - 1 : pos);
    }
  }
}
