package io.featurestream.tiles;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.HashSet;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** LongSet against java.util.HashSet on random keys: adds, unions, growth, 0, and the state format. */
class LongSetTest {

  /** Keys from a small range (many repeats, 0 included) or spread over all longs. */
  private static long key(Random random, boolean narrow) {
    return narrow ? random.nextInt(200) - 100 : random.nextLong();
  }

  @Test
  void addsAndUnionsLikeAHashSet() throws IOException {
    Random random = new Random(7);
    for (int round = 0; round < 300; round++) {
      boolean narrow = round % 2 == 0;
      int parts = 1 + random.nextInt(5);
      HashSet<Long> expected = new HashSet<>();
      LongSet union = new LongSet(random.nextInt(3) == 0 ? random.nextInt(50) : 0);
      for (int p = 0; p < parts; p++) {
        HashSet<Long> reference = new HashSet<>();
        LongSet part = new LongSet();
        int adds = random.nextInt(round < 150 ? 20 : 3000);
        for (int i = 0; i < adds; i++) {
          long k = key(random, narrow);
          assertEquals(reference.add(k), part.add(k), "add " + k);
        }
        assertEquals(reference.size(), part.size());
        for (long k : reference) {
          assertTrue(part.contains(k));
        }
        expected.addAll(reference);
        union.addAll(part);
      }
      assertEquals(expected.size(), union.size());
      for (int i = 0; i < 200; i++) {
        long k = key(random, narrow);
        assertEquals(expected.contains(k), union.contains(k), "contains " + k);
      }
      LongSet read = roundTrip(union);
      assertEquals(expected.size(), read.size());
      for (long k : expected) {
        assertTrue(read.contains(k));
      }
    }
  }

  @Test
  void zeroIsAKeyLikeAnyOther() throws IOException {
    LongSet set = new LongSet();
    assertFalse(set.contains(0));
    assertTrue(set.add(0));
    assertFalse(set.add(0));
    assertTrue(set.contains(0));
    assertEquals(1, set.size());
    LongSet other = new LongSet();
    other.add(5);
    other.addAll(set);
    assertEquals(2, other.size());
    assertTrue(roundTrip(other).contains(0));
  }

  private static LongSet roundTrip(LongSet set) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      set.writeTo(out);
    }
    assertEquals(4 + 8L * set.size(), bytes.size());
    LongSet read = new LongSet();
    read.readFrom(new DataInputStream(new ByteArrayInputStream(bytes.toByteArray())));
    return read;
  }
}
