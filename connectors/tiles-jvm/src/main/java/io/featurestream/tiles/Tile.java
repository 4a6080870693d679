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

  /** Adds another partial of the same tile: the result is what adding its events one by one gives. */
  void merge(Tile other, EngineConfig cfg) {
    count += other.count;
    for (int s = 0; s < cfg.numericSlots; s++) {
      long nb = other.n[s];
      if (nb == 0) {
        continue;
      }
      long na = n[s];
      if (na == 0) {
        n[s] = nb;
        sum[s] = other.sum[s];
        mean[s] = other.mean[s];
        m2[s] = other.m2[s];
        min[s] = other.min[s];
        max[s] = other.max[s];
        continue;
      }
      long total = na + nb;
      double delta = other.mean[s] - mean[s];
      mean[s] += delta * nb / total;
      m2[s] += other.m2[s] + delta * delta * ((double) na * nb / total);
      n[s] = total;
      sum[s] += other.sum[s];
      min[s] = Math.min(min[s], other.min[s]);
      max[s] = Math.max(max[s], other.max[s]);
    }
    for (int s = 0; s < cfg.hashSlots; s++) {
      hashes[s].addAll(other.hashes[s]);
    }
    for (int s = 0; s < cfg.lastSlots; s++) {
      addLast(s, other.lastTs[s], other.lastValue[s]);
    }
  }
}
