package io.featurestream.tiles;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;

/**
 * A set of primitive longs (open addressing, linear probing): the distinct-value hashes of one
 * tile and the union of a window's tiles.
 *
 * <p>Why not {@code HashSet<Long>}: each of its entries is a boxed Long plus a map node, about
 * 48-64 bytes, for an 8-byte value; this table holds 8-16 bytes per entry and adds without
 * allocating. Keys are xxhash64 values, already well spread; they are still mixed so that a
 * column of small integers would not cluster.
 */
final class LongSet {
  private static final int MIN_CAPACITY = 4;

  /** 0 marks a free slot; the key 0 itself is kept in {@link #hasZero}. */
  private long[] table;
  private int size;
  private boolean hasZero;

  LongSet() {
    table = new long[MIN_CAPACITY];
  }

  /** Room for {@code expected} keys without growing. */
  LongSet(int expected) {
    table = new long[capacityFor(expected)];
  }

  int size() {
    return size + (hasZero ? 1 : 0);
  }

  boolean add(long key) {
    if (key == 0) {
      boolean added = !hasZero;
      hasZero = true;
      return added;
    }
    int mask = table.length - 1;
    int i = slot(key, mask);
    while (true) {
      long current = table[i];
      if (current == 0) {
        table[i] = key;
        if (++size * 4 > table.length * 3) {
          grow();
        }
        return true;
      }
      if (current == key) {
        return false;
      }
      i = (i + 1) & mask;
    }
  }

  boolean contains(long key) {
    if (key == 0) {
      return hasZero;
    }
    int mask = table.length - 1;
    for (int i = slot(key, mask); ; i = (i + 1) & mask) {
      long current = table[i];
      if (current == 0) {
        return false;
      }
      if (current == key) {
        return true;
      }
    }
  }

  void addAll(LongSet other) {
    if (other.hasZero) {
      hasZero = true;
    }
    long[] keys = other.table;
    for (long key : keys) {
      if (key != 0) {
        add(key);
      }
    }
  }

  void forEach(java.util.function.LongConsumer action) {
    if (hasZero) {
      action.accept(0L);
    }
    for (long key : table) {
      if (key != 0) {
        action.accept(key);
      }
    }
  }

  /** The state format: the count, then each key (any order). */
  void writeTo(DataOutputStream out) throws IOException {
    out.writeInt(size());
    out.write(toBytes());
  }

  void readFrom(DataInputStream in) throws IOException {
    int count = in.readInt();
    if (size() == 0 && table.length < capacityFor(count)) {
      table = new long[capacityFor(count)];  // sized once, not grown key by key
    }
    byte[] keys = Packed.read(in, count);
    for (int i = 0; i < count; i++) {
      add(Packed.longAt(keys, i));
    }
  }

  /** The keys as {@link #writeTo} writes them after the count, in one array. */
  byte[] toBytes() {
    byte[] bytes = new byte[size() << 3];
    int i = 0;
    if (hasZero) {
      Packed.putLong(bytes, i++, 0L);
    }
    for (long key : table) {
      if (key != 0) {
        Packed.putLong(bytes, i++, key);
      }
    }
    return bytes;
  }

  private void grow() {
    long[] old = table;
    table = new long[old.length * 2];
    int mask = table.length - 1;
    for (long key : old) {
      if (key != 0) {
        int i = slot(key, mask);
        while (table[i] != 0) {
          i = (i + 1) & mask;
        }
        table[i] = key;
      }
    }
  }

  private static int slot(long key, int mask) {
    // The 64-bit finaliser of MurmurHash3 (fmix64), folded to an index.
    long h = key;
    h ^= h >>> 33;
    h *= 0xff51afd7ed558ccdL;
    h ^= h >>> 33;
    return (int) h & mask;
  }

  private static int capacityFor(int expected) {
    int capacity = MIN_CAPACITY;
    while (capacity * 3 < expected * 4 + 4) {
      capacity <<= 1;
    }
    return capacity;
  }
}
