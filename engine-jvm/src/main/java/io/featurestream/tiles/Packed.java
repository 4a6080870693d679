package io.featurestream.tiles;

import java.io.DataInputStream;
import java.io.IOException;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * Runs of 8-byte values in the state's layout (big-endian, as DataOutputStream writes them),
 * moved in bulk: DataOutput/DataInput streams move a value per call (each a synchronized write or
 * read), and a state round trip moves thousands of them per entity and micro-batch.
 */
final class Packed {
  private static final VarHandle LONG = MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.BIG_ENDIAN);
  private static final VarHandle DOUBLE = MethodHandles.byteArrayViewVarHandle(double[].class, ByteOrder.BIG_ENDIAN);
  static final byte[] EMPTY = new byte[0];

  private Packed() {}

  /** {@code count} values of 8 bytes from the stream, as they are. */
  static byte[] read(DataInputStream in, int count) throws IOException {
    if (count == 0) {
      return EMPTY;
    }
    byte[] bytes = new byte[Math.multiplyExact(count, 8)];
    in.readFully(bytes);
    return bytes;
  }

  static long longAt(byte[] bytes, int i) {
    return (long) LONG.get(bytes, i << 3);
  }

  static double doubleAt(byte[] bytes, int i) {
    return (double) DOUBLE.get(bytes, i << 3);
  }

  static byte[] ofDoubles(double[] values, int count) {
    byte[] bytes = new byte[count << 3];
    for (int i = 0; i < count; i++) {
      DOUBLE.set(bytes, i << 3, values[i]);
    }
    return bytes;
  }

  static void putLong(byte[] bytes, int i, long value) {
    LONG.set(bytes, i << 3, value);
  }
}
