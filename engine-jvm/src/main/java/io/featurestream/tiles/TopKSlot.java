package io.featurestream.tiles;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
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
 */
final class TopKSlot {
  static final int DEFAULT_SIZE = 64;
  private static final ArrayOfStringsSerDe SERDE = new ArrayOfStringsSerDe();

  private final int mapSize;
  private ItemsSketch<String> sketch;
  /** The serialised sketch as read from the state, until the tile gets another value. */
  private byte[] packed;

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
      sketch = packed != null ? ItemsSketch.getInstance(Memory.wrap(packed), SERDE) : new ItemsSketch<>(mapSize);
      packed = null;
    }
    return sketch;
  }

  private ItemsSketch<String> view() {
    return sketch != null ? sketch : ItemsSketch.getInstance(Memory.wrap(packed), SERDE);
  }

  /** Adds another partial of the same tile. */
  void merge(TopKSlot other) {
    if (!other.isEmpty()) {
      live().merge(other.view());
    }
  }

  void writeTo(DataOutputStream out) throws IOException {
    if (isEmpty()) {
      out.writeInt(0);
      return;
    }
    byte[] bytes = sketch != null ? sketch.toByteArray(SERDE) : packed;
    out.writeInt(bytes.length);
    out.write(bytes);
  }

  void readFrom(DataInputStream in) throws IOException {
    int length = in.readInt();
    if (length > 0) {
      packed = new byte[length];
      in.readFully(packed);
    }
  }

  /**
   * A window's tiles merged into one sketch. Values are ranked by estimated count, ties going to
   * the smaller value (String order), so the ranking does not depend on the order of events.
   */
  static final class Window {
    private static final Comparator<ItemsSketch.Row<String>> RANKING =
        Comparator.<ItemsSketch.Row<String>>comparingLong(r -> -r.getEstimate())
            .thenComparing((ItemsSketch.Row<String> r) -> r.getItem());
    private final ItemsSketch<String> merged;
    private ItemsSketch.Row<String>[] ranked;

    Window(int mapSize) {
      merged = new ItemsSketch<>(mapSize);
    }

    void add(TopKSlot tile) {
      if (!tile.isEmpty()) {
        merged.merge(tile.view());
        ranked = null;
      }
    }

    private ItemsSketch.Row<String> row(int rank) {
      if (ranked == null) {
        ranked = merged.getFrequentItems(ErrorType.NO_FALSE_NEGATIVES);
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
      return r == null ? null : (double) r.getEstimate() / merged.getStreamLength();
    }
  }
}
