package io.featurestream.asof;

import java.io.Serializable;
import java.util.Arrays;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.unsafe.Platform;
import org.apache.spark.unsafe.array.ByteArrayMethods;

/**
 * The labels' distinct times per key, laid out for one lookup per feature row with few cache misses.
 *
 * <p>A lookup per row is the whole cost of the map-side reduction, and a map of key objects to
 * arrays costs about ten dependent cache misses per row (node, key, its bytes, the arrays...),
 * which measured slower than the shuffle it saves. Here everything is in flat primitive arrays: an
 * open-addressing table whose slot holds the key's hash, where its bytes are and where its times
 * are; the keys' bytes back to back; and the times of all keys back to back. A key's intervals are
 * numbered globally by the position of their closing label time, so per-task state is flat too.
 */
final class LabelIndex implements Serializable {
  private static final long serialVersionUID = 1L;

  // Open addressing, SLOT longs per slot: (hash << 32 | start of the key in keyBytes), (start << 32 |
  // end of its times). A key in keyBytes is its length (4 bytes) then its bytes, so the slot and
  // one read there are a lookup. At most 3/4 full, so 100k keys take 2 MB.
  private static final int SLOT = 2;
  private static final int LENGTH_BYTES = 4;
  private final long[] slots;
  private final byte[] keyBytes;
  private final long[] times;

  private LabelIndex(long[] slots, byte[] keyBytes, long[] times) {
    this.slots = slots;
    this.keyBytes = keyBytes;
    this.times = times;
  }

  /** From label rows (key columns, then the time in microseconds; none null). */
  static LabelIndex of(InternalRow[] labels, DataType[] keyTypes) {
    KeyBytes keyOf = new KeyBytes(keyTypes);
    int timeOrdinal = keyTypes.length;
    // Number the keys in order of appearance (open addressing on the same hash as lookups, keys
    // back to back in one arena) and count each key's labels: ~3x faster than a HashMap of
    // wrapped byte arrays for 1M labels, and this runs on the driver before the job starts.
    int capacity = Integer.highestOneBit(Math.max(2, labels.length));
    while (capacity < labels.length + labels.length / 3 + 1) {
      capacity <<= 1;
    }
    int[] numberAt = new int[capacity]; // key number + 1; 0 is empty
    int[] hashAt = new int[capacity];
    byte[] arena = new byte[1 << 16];
    int[] arenaStart = new int[17];
    int[] keyOfLabel = new int[labels.length];
    int[] counts = new int[16];
    int keys = 0;
    for (int i = 0; i < labels.length; i++) {
      if (!keyOf.read(labels[i])) {
        throw new IllegalArgumentException("label keys must not be null (the caller filters them)");
      }
      int hash = keyOf.hash();
      int slot = spread(hash) & (capacity - 1);
      int number = -1;
      while (numberAt[slot] != 0) {
        int candidate = numberAt[slot] - 1;
        int start = arenaStart[candidate];
        if (hashAt[slot] == hash && arenaStart[candidate + 1] - start == keyOf.size
            && ByteArrayMethods.arrayEquals(keyOf.base, keyOf.offset, arena, Platform.BYTE_ARRAY_OFFSET + start,
                keyOf.size)) {
          number = candidate;
          break;
        }
        slot = (slot + 1) & (capacity - 1);
      }
      if (number < 0) {
        number = keys++;
        if (keys + 1 > arenaStart.length) {
          arenaStart = Arrays.copyOf(arenaStart, arenaStart.length * 2);
          counts = Arrays.copyOf(counts, arenaStart.length);
        }
        int start = arenaStart[number];
        if (arena.length < start + keyOf.size) {
          arena = Arrays.copyOf(arena, Math.max(arena.length * 2, start + keyOf.size));
        }
        Platform.copyMemory(keyOf.base, keyOf.offset, arena, Platform.BYTE_ARRAY_OFFSET + start, keyOf.size);
        arenaStart[number + 1] = start + keyOf.size;
        numberAt[slot] = number + 1;
        hashAt[slot] = hash;
      }
      keyOfLabel[i] = number;
      counts[number]++;
    }
    // Each key's times in its own segment, sorted, equal times merged (they close the same interval).
    int[] fillAt = new int[keys + 1];
    for (int k = 0; k < keys; k++) {
      fillAt[k + 1] = fillAt[k] + counts[k];
    }
    long[] all = new long[labels.length];
    int[] next = Arrays.copyOf(fillAt, keys);
    for (int i = 0; i < labels.length; i++) {
      all[next[keyOfLabel[i]]++] = labels[i].getLong(timeOrdinal);
    }
    long[] times = new long[labels.length];
    int[] timesStart = new int[keys + 1];
    int keyByteCount = 0;
    int timeCount = 0;
    for (int k = 0; k < keys; k++) {
      Arrays.sort(all, fillAt[k], fillAt[k + 1]);
      timesStart[k] = timeCount;
      for (int i = fillAt[k]; i < fillAt[k + 1]; i++) {
        if (i == fillAt[k] || all[i] != all[i - 1]) {
          times[timeCount++] = all[i];
        }
      }
      keyByteCount += arenaStart[k + 1] - arenaStart[k];
    }
    timesStart[keys] = timeCount;
    int slotCount = Integer.highestOneBit(Math.max(2, keys));
    while (slotCount < keys + keys / 3 + 1) {
      slotCount <<= 1;
    }
    long[] slots = new long[SLOT * slotCount];
    byte[] keyBytes = new byte[keyByteCount + LENGTH_BYTES * keys];
    int keyStart = 0;
    for (int k = 0; k < keys; k++) {
      int size = arenaStart[k + 1] - arenaStart[k];
      Platform.putInt(keyBytes, Platform.BYTE_ARRAY_OFFSET + keyStart, size);
      System.arraycopy(arena, arenaStart[k], keyBytes, keyStart + LENGTH_BYTES, size);
      keyOf.base = arena;
      keyOf.offset = Platform.BYTE_ARRAY_OFFSET + arenaStart[k];
      keyOf.size = size;
      insert(slots, keyOf.hash(), keyStart, timesStart[k], timesStart[k + 1]);
      keyStart += LENGTH_BYTES + size;
    }
    return new LabelIndex(slots, keyBytes, Arrays.copyOf(times, timeCount));
  }

  private static void insert(long[] slots, int hash, int keyStart, int timesStart, int timesEnd) {
    int mask = slots.length / SLOT - 1;
    int slot = spread(hash) & mask;
    while (slots[SLOT * slot + 1] != 0) {
      slot = (slot + 1) & mask;
    }
    slots[SLOT * slot] = ((long) hash << 32) | (keyStart & 0xffffffffL);
    slots[SLOT * slot + 1] = ((long) timesStart << 32) | timesEnd; // timesEnd >= 1: never 0 when used
  }

  private static int spread(int hash) {
    return hash ^ (hash >>> 16);
  }

  /** Label times of all keys together. */
  int intervals() {
    return times.length;
  }

  /** The first slot to probe for a key with this hash. */
  int home(int hash) {
    return spread(hash) & (slots.length / SLOT - 1);
  }

  /** A slot's times word (0 when the slot is empty), for {@link #find}. */
  long slotRange(int slot) {
    return slots[SLOT * slot + 1];
  }

  /**
   * The key's times as {@code (timesStart << 32) | timesEnd} (positions in the global times), or
   * -1 when no label has the key. {@code slot} is {@link #home} of the hash and {@code range} its
   * {@link #slotRange}, read by the caller ahead of time.
   */
  long find(KeyBytes key, int hash, int slot, long range) {
    int mask = slots.length / SLOT - 1;
    while (true) {
      if (range == 0) {
        return -1;
      }
      long head = slots[SLOT * slot];
      long keyAt = Platform.BYTE_ARRAY_OFFSET + (int) head;
      if ((int) (head >>> 32) == hash && Platform.getInt(keyBytes, keyAt) == key.size
          && ByteArrayMethods.arrayEquals(key.base, key.offset, keyBytes, keyAt + LENGTH_BYTES, key.size)) {
        return range;
      }
      slot = (slot + 1) & mask;
      range = slots[SLOT * slot + 1];
    }
  }

  /**
   * A task's working copy: for each key with times at global positions [s, e), its times at
   * {@code [s + s, s + e)} followed by the newest EventTime seen per interval at {@code [s + e, e + e)}
   * (interval g, for s <= g < e, at {@code e + g}), so a row's search and its update touch
   * neighbouring memory. Newest EventTimes start at {@code empty}.
   */
  long[] taskLayout(long empty) {
    long[] layout = new long[2 * times.length];
    Arrays.fill(layout, empty);
    for (int at = 0; at < slots.length; at += SLOT) {
      long range = slots[at + 1];
      if (range != 0) {
        int start = (int) (range >>> 32);
        int end = (int) range;
        System.arraycopy(times, start, layout, 2 * start, end - start);
      }
    }
    return layout;
  }

  /**
   * The interval (global position of its closing label time) of a feature at sort time s, for a key
   * with times [start, end) in {@code layout}: the first label time that sees it ({@code >= s}, or
   * {@code > s} strictly before); -1 when none does.
   */
  static int group(long[] layout, int start, int end, long s, boolean strictlyBefore) {
    int low = start;
    int high = end;
    while (low < high) {
      int mid = (low + high) >>> 1;
      long time = layout[start + mid];
      boolean sees = strictlyBefore ? time > s : time >= s;
      if (sees) {
        high = mid;
      } else {
        low = mid + 1;
      }
    }
    return low == end ? -1 : low;
  }
}
