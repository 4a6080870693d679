package io.featurestream.tiles;

/**
 * Lossless compact forms for the state's raw values (state format 4): a run of doubles that are
 * all decimals of at most {@link #MAX_SCALE} places (amounts, cents, counts) as zigzag varints of
 * value x 10^scale, and varints for the top-k counts. Every entity's state is read, rewritten and
 * scanned for timeouts each micro-batch it is touched, so its bytes are the state store's work.
 */
final class Compact {
  static final int MAX_SCALE = 6;
  private static final double[] POW10 = {1, 10, 100, 1_000, 10_000, 100_000, 1_000_000};
  /** Beyond 2^53 a double no longer holds every integer. */
  private static final double LIMIT = 9_007_199_254_740_992.0;

  private Compact() {}

  /**
   * The smallest scale s such that each value is exactly (its integer x 10^s) / 10^s, the same
   * double bit for bit; -1 when there is none up to MAX_SCALE (NaN, infinities, -0.0, binary
   * fractions).
   */
  static int decimalScale(double[] values, int count) {
    int scale = 0;
    for (int i = 0; i < count; i++) {
      while (!exact(values[i], scale)) {
        if (++scale > MAX_SCALE) {
          return -1;
        }
      }
    }
    // A value exact at a smaller scale is exact at this one too, but check rather than assume.
    for (int i = 0; i < count; i++) {
      if (!exact(values[i], scale)) {
        return -1;
      }
    }
    return scale;
  }

  private static boolean exact(double v, int scale) {
    double x = v * POW10[scale];
    if (!(Math.abs(x) < LIMIT)) {
      return false;
    }
    return Double.doubleToRawLongBits(unscale(Math.round(x), scale)) == Double.doubleToRawLongBits(v);
  }

  private static double unscale(long m, int scale) {
    return scale == 0 ? (double) m : m / POW10[scale];
  }

  /** {@code count} values at {@code scale} (from {@link #decimalScale}): the scale byte, then one varint each. */
  static byte[] decimals(double[] values, int count, int scale) {
    byte[] out = new byte[1 + count * 10];
    out[0] = (byte) scale;
    int pos = 1;
    for (int i = 0; i < count; i++) {
      pos = putVarLong(out, pos, zigzag(Math.round(values[i] * POW10[scale])));
    }
    return java.util.Arrays.copyOf(out, pos);
  }

  /** The {@code count} values of {@link #decimals}'s bytes. */
  static double[] fromDecimals(byte[] bytes, int count) {
    double[] values = new double[count];
    int scale = bytes[0];
    int pos = 1;
    for (int i = 0; i < count; i++) {
      long v = 0;
      int shift = 0;
      byte b;
      do {
        b = bytes[pos++];
        v |= (long) (b & 0x7F) << shift;
        shift += 7;
      } while (b < 0);
      values[i] = unscale((v >>> 1) ^ -(v & 1), scale);
    }
    return values;
  }

  private static long zigzag(long v) {
    return (v << 1) ^ (v >> 63);
  }

  /** Writes {@code v} (unsigned) as a varint at {@code pos}; returns the position after it. */
  static int putVarLong(byte[] out, int pos, long v) {
    while ((v & ~0x7FL) != 0) {
      out[pos++] = (byte) ((v & 0x7F) | 0x80);
      v >>>= 7;
    }
    out[pos++] = (byte) v;
    return pos;
  }
}
