package io.featurestream.tiles;

import java.util.HashSet;

/** Everything one entity's events in one tile contribute to any window: mergeable partials. */
final class Tile {
  final long index;
  long count;
  final long[] n;
  final double[] sum;
  final double[] mean;
  final double[] m2;
  final double[] min;
  final double[] max;
  final HashSet<Long>[] hashes;
  final long[] lastTs;
  final Object[] lastValue;

  @SuppressWarnings("unchecked")
  Tile(long index, EngineConfig cfg) {
    this.index = index;
    int ns = cfg.numericSlots;
    this.n = new long[ns];
    this.sum = new double[ns];
    this.mean = new double[ns];
    this.m2 = new double[ns];
    this.min = new double[ns];
    this.max = new double[ns];
    this.hashes = new HashSet[cfg.hashSlots];
    for (int i = 0; i < hashes.length; i++) {
      hashes[i] = new HashSet<>();
    }
    this.lastTs = new long[cfg.lastSlots];
    this.lastValue = new Object[cfg.lastSlots];
    java.util.Arrays.fill(lastTs, Long.MIN_VALUE);
  }

  /** Welford's update: mean and M2 stay accurate where sum of squares would cancel. */
  void addNumeric(int slot, double v) {
    long k = ++n[slot];
    sum[slot] += v;
    double delta = v - mean[slot];
    mean[slot] += delta / k;
    m2[slot] += delta * (v - mean[slot]);
    if (k == 1) {
      min[slot] = v;
      max[slot] = v;
    } else {
      min[slot] = Math.min(min[slot], v);
      max[slot] = Math.max(max[slot], v);
    }
  }

  void addLast(int slot, long ts, Object value) {
    if (Values.newer(ts, value, lastTs[slot], lastValue[slot])) {
      lastTs[slot] = ts;
      lastValue[slot] = value;
    }
  }
}
