package io.featurestream.tiles;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Comparator;
import org.apache.datasketches.ArrayOfStringsSerDe;
import org.apache.datasketches.frequencies.ErrorType;
import org.apache.datasketches.frequencies.ItemsSketch;
import org.apache.datasketches.memory.Memory;

/**
 * top_k in one tile: a frequent-items sketch (Misra-Gries, DataSketches' ItemsSketch) of the
 * values as strings. It counts exactly while it holds at most 0.75 x sketch_size distinct values;
 * beyond, it keeps the most frequent ones and every count it reports is at most
 * 3.5 / sketch_size x (number of values) above the true one, never below.
 *
 * <p>State format 4 stores a sketch that still counts exactly (it never purged) as its values and
 * counts alone, sorted by value, with varint counts and lengths: about a third of the sketch's own
 * serialisation (a 48-byte header, 8 bytes a count, 4 a length). A negative length marks it.
 */
final class TopKSlot {
  static final int DEFAULT_SIZE = 64;
  private static final ArrayOfStringsSerDe SERDE = new ArrayOfStringsSerDe();

  private final int mapSize;
  private ItemsSketch<String> sketch;
  /** The serialised sketch as read from the state, until the tile gets another value. */
  private byte[] packed;
  /** Whether {@link #packed} is the exact form ({@link #exactBytes}) rather than the sketch's own. */
  private boolean packedExact;

  TopKSlot(int mapSize) {
    this.mapSize = mapSize;
  }

  boolean isEmpty() {
    return sketch == null && packed == null;
  }

  void add(String value) {
    live().update(value);
  }

  private ItemsSketch<String> live() {
    if (sketch == null) {
      sketch = packed != null ? unpack() : new ItemsSketch<>(mapSize);
      packed = null;
    }
    return sketch;
  }

  private ItemsSketch<String> view() {
    return sketch != null ? sketch : unpack();
  }

  private ItemsSketch<String> unpack() {
    if (!packedExact) {
      return ItemsSketch.getInstance(Memory.wrap(packed), SERDE);
    }
    ItemsSketch<String> s = new ItemsSketch<>(mapSize);
    int[] pos = {0};
    long n = varLong(packed, pos);
    for (long i = 0; i < n; i++) {
      long count = varLong(packed, pos);
      int length = (int) varLong(packed, pos);
      s.update(new String(packed, pos[0], length, StandardCharsets.UTF_8), count);
      pos[0] += length;
    }
    return s;
  }

  /** A sketch that never purged, as its values and counts sorted by value (one form per content). */
  private static byte[] exactBytes(ItemsSketch<String> sketch) {
    ItemsSketch.Row<String>[] rows = sketch.getFrequentItems(0L, ErrorType.NO_FALSE_NEGATIVES);
    Arrays.sort(rows, Comparator.comparing((ItemsSketch.Row<String> r) -> r.getItem()));
    byte[][] items = new byte[rows.length][];
    int room = 10;
    for (int i = 0; i < rows.length; i++) {
      items[i] = rows[i].getItem().getBytes(StandardCharsets.UTF_8);
      room += 20 + items[i].length;
    }
    byte[] out = new byte[room];
    int pos = Compact.putVarLong(out, 0, rows.length);
    for (int i = 0; i < rows.length; i++) {
      pos = Compact.putVarLong(out, pos, rows[i].getEstimate());
      pos = Compact.putVarLong(out, pos, items[i].length);
      System.arraycopy(items[i], 0, out, pos, items[i].length);
      pos += items[i].length;
    }
    return Arrays.copyOf(out, pos);
  }

  private static long varLong(byte[] bytes, int[] pos) {
    long v = 0;
    int shift = 0;
    byte b;
    do {
      b = bytes[pos[0]++];
      v |= (long) (b & 0x7F) << shift;
      shift += 7;
    } while (b < 0);
    return v;
  }

  /** Adds another partial of the same tile. */
  void merge(TopKSlot other) {
    if (!other.isEmpty()) {
      live().merge(other.view());
    }
  }

  void writeTo(DataOutputStream out) throws IOException {
    writeTo(out, true);
  }

  /** @param compact false: state format 3's form (the sketch's own serialisation only) */
  void writeTo(DataOutputStream out, boolean compact) throws IOException {
    if (isEmpty()) {
      out.writeInt(0);
      return;
    }
    if (!compact && (sketch != null || packedExact)) {
      byte[] bytes = view().toByteArray(SERDE);
      out.writeInt(bytes.length);
      out.write(bytes);
      return;
    }
    boolean exact = sketch != null ? sketch.getMaximumError() == 0 : packedExact;
    byte[] bytes = sketch == null ? packed : exact ? exactBytes(sketch) : sketch.toByteArray(SERDE);
    out.writeInt(exact ? -bytes.length : bytes.length);
    out.write(bytes);
  }

  /** A slot as {@link #writeTo} writes it (format 3's have no exact form: positive lengths only). */
  void readFrom(DataInputStream in) throws IOException {
    int length = in.readInt();
    if (length != 0) {
      packedExact = length < 0;
      packed = new byte[Math.abs(length)];
      in.readFully(packed);
    }
  }

  /**
   * A window's tiles merged into one sketch. Values are ranked by estimated count, ties going to
   * the smaller value (String order), so the ranking does not depend on the order of events.
   *
   * <p>A window with one non-empty tile reads that tile's sketch instead of a merge of it into an
   * empty one, which would be a copy: the same counts, offset and stream length (the tile holds at
   * most 0.75 x size values, so nothing is purged). A feed of an exact tile's values straight into
   * the merge, without the tile's own sketch, was tried and dropped: the order of the updates
   * moves values in the merge's hash table, and a later purge samples its counts in table order,
   * so the values written past the exact range would change.
   */
  static final class Window {
    private static final Comparator<ItemsSketch.Row<String>> RANKING =
        Comparator.<ItemsSketch.Row<String>>comparingLong(r -> -r.getEstimate())
            .thenComparing((ItemsSketch.Row<String> r) -> r.getItem());
    private final int mapSize;
    /** The merge of the tiles added, once there are two; null before. */
    private ItemsSketch<String> merged;
    /** The only non-empty tile added so far (merged == null). */
    private TopKSlot only;
    /** The sketch the values are read from: merged, or the only tile's. */
    private ItemsSketch<String> read;
    private ItemsSketch.Row<String>[] ranked;

    Window(int mapSize) {
      this.mapSize = mapSize;
    }

    void add(TopKSlot tile) {
      if (tile.isEmpty()) {
        return;
      }
      ranked = null;
      read = null;
      if (merged == null && only == null) {
        only = tile;
        return;
      }
      if (merged == null) {
        merged = new ItemsSketch<>(mapSize);
        into(only);
        only = null;
      }
      into(tile);
    }

    private void into(TopKSlot tile) {
      merged.merge(tile.view());
    }

    private ItemsSketch<String> sketch() {
      if (read == null) {
        read = merged != null ? merged : only != null ? only.view() : new ItemsSketch<>(mapSize);
        if (read.getMaximumMapCapacity() != (int) (mapSize * 0.75)) {
          // A tile of another sketch size (read from older state): merged as before.
          merged = new ItemsSketch<>(mapSize);
          merged.merge(read);
          read = merged;
        }
      }
      return read;
    }

    private ItemsSketch.Row<String> row(int rank) {
      if (ranked == null) {
        ranked = sketch().getFrequentItems(ErrorType.NO_FALSE_NEGATIVES);
        Arrays.sort(ranked, RANKING);
      }
      return rank <= ranked.length ? ranked[rank - 1] : null;
    }

    /**
     * The rank-th most frequent value (1 = the most frequent); null when the sketch knows fewer
     * values (past its exact range: the true rank-th is then at most epsilon * n frequent).
     */
    String value(int rank) {
      ItemsSketch.Row<String> r = row(rank);
      return r == null ? null : r.getItem();
    }

    /** Its estimated count over the window's non-null values; null when fewer values. */
    Double share(int rank) {
      ItemsSketch.Row<String> r = row(rank);
      return r == null ? null : (double) r.getEstimate() / sketch().getStreamLength();
    }
  }
}
