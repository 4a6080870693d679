package io.featurestream.tiles;

/** Everything one entity's events in one tile contribute to any window: mergeable partials. */
final class Tile {
  /** Per numeric slot, in {@link #stats}: sum, mean, M2, min, max (one array: one object to load). */
  private static final int STRIDE = 5;
  private static final int SUM = 0;
  private static final int MEAN = 1;
  private static final int M2 = 2;
  private static final int MIN = 3;
  private static final int MAX = 4;
  private static final DistinctSlot[] NO_HASHES = new DistinctSlot[0];
  private static final QuantileSlot[] NO_QUANTILES = new QuantileSlot[0];
  private static final TopKSlot[] NO_TOP_K = new TopKSlot[0];
  private static final long[] NO_TS = new long[0];
  private static final Object[] NO_VALUES = new Object[0];

  final long index;
  long count;
  final long[] n;
  private final double[] stats;
  final DistinctSlot[] hashes;
  final QuantileSlot[] quantiles;
  final TopKSlot[] topK;
  final long[] lastTs;
  final Object[] lastValue;

  Tile(long index, EngineConfig cfg) {
    this.index = index;
    int ns = cfg.numericSlots;
    this.n = new long[ns];
    this.stats = new double[ns * STRIDE];
    this.hashes = cfg.hashSlots == 0 ? NO_HASHES : new DistinctSlot[cfg.hashSlots];
    for (int i = 0; i < hashes.length; i++) {
      hashes[i] = new DistinctSlot(cfg.distinctExactUpTo[i], cfg.distinctLgK[i]);
    }
    this.quantiles = cfg.quantileSlots == 0 ? NO_QUANTILES : new QuantileSlot[cfg.quantileSlots];
    for (int i = 0; i < quantiles.length; i++) {
      quantiles[i] = new QuantileSlot(cfg.quantileK[i]);
    }
    this.topK = cfg.topKSlots == 0 ? NO_TOP_K : new TopKSlot[cfg.topKSlots];
    for (int i = 0; i < topK.length; i++) {
      topK[i] = new TopKSlot(cfg.topKMapSize[i]);
    }
    this.lastTs = cfg.lastSlots == 0 ? NO_TS : new long[cfg.lastSlots];
    this.lastValue = cfg.lastSlots == 0 ? NO_VALUES : new Object[cfg.lastSlots];
    java.util.Arrays.fill(lastTs, Long.MIN_VALUE);
  }

  double sum(int slot) {
    return stats[slot * STRIDE + SUM];
  }

  double mean(int slot) {
    return stats[slot * STRIDE + MEAN];
  }

  double m2(int slot) {
    return stats[slot * STRIDE + M2];
  }

  double min(int slot) {
    return stats[slot * STRIDE + MIN];
  }

  double max(int slot) {
    return stats[slot * STRIDE + MAX];
  }

  /** A numeric slot as decoded from its encoded form. */
  void setNumeric(int slot, long count, double sum, double mean, double m2, double min, double max) {
    n[slot] = count;
    int o = slot * STRIDE;
    stats[o + SUM] = sum;
    stats[o + MEAN] = mean;
    stats[o + M2] = m2;
    stats[o + MIN] = min;
    stats[o + MAX] = max;
  }

  /** Welford's update: mean and M2 stay accurate where sum of squares would cancel. */
  void addNumeric(int slot, double v) {
    long k = ++n[slot];
    double[] st = stats;
    int o = slot * STRIDE;
    st[o + SUM] += v;
    double delta = v - st[o + MEAN];
    st[o + MEAN] += delta / k;
    st[o + M2] += delta * (v - st[o + MEAN]);
    if (k == 1) {
      st[o + MIN] = v;
      st[o + MAX] = v;
    } else {
      st[o + MIN] = Math.min(st[o + MIN], v);
      st[o + MAX] = Math.max(st[o + MAX], v);
    }
  }

  /** One event's sketch inputs into the sketch slots this tile keeps (see SketchSlots). */
  void addSketches(EngineConfig cfg, SketchSlots keep, org.apache.spark.sql.Row row) {
    for (int i = 0; i < cfg.hashSlots; i++) {
      int idx = cfg.hashIdx + i;
      if (keep.hash[i] && !row.isNullAt(idx)) {
        hashes[i].add(row.getLong(idx));
      }
    }
    for (int i = 0; i < cfg.quantileSlots; i++) {
      int idx = cfg.quantileIdx + i;
      if (keep.quantile[i] && !row.isNullAt(idx)) {
        quantiles[i].add(row.getDouble(idx));
      }
    }
    for (int i = 0; i < cfg.topKSlots; i++) {
      int idx = cfg.topKIdx + i;
      if (keep.topK[i] && !row.isNullAt(idx)) {
        topK[i].add(row.getString(idx));
      }
    }
  }

  /** Merges this tile's sketch slots that {@code keep} holds into {@code bucket} (state formats 1 and 2). */
  void sketchesInto(Tile bucket, SketchSlots keep) {
    for (int s = 0; s < hashes.length; s++) {
      if (keep.hash[s]) {
        bucket.hashes[s].merge(hashes[s]);
      }
    }
    for (int s = 0; s < quantiles.length; s++) {
      if (keep.quantile[s]) {
        bucket.quantiles[s].merge(quantiles[s]);
      }
    }
    for (int s = 0; s < topK.length; s++) {
      if (keep.topK[s]) {
        bucket.topK[s].merge(topK[s]);
      }
    }
  }

  /** Empties the sketch slots that {@code keep} does not hold (null: every slot). */
  void dropSketchesBut(SketchSlots keep, EngineConfig cfg) {
    for (int s = 0; s < hashes.length; s++) {
      if ((keep == null || !keep.hash[s]) && !hashes[s].isEmpty()) {
        hashes[s] = new DistinctSlot(cfg.distinctExactUpTo[s], cfg.distinctLgK[s]);
      }
    }
    for (int s = 0; s < quantiles.length; s++) {
      if ((keep == null || !keep.quantile[s]) && !quantiles[s].isEmpty()) {
        quantiles[s] = new QuantileSlot(cfg.quantileK[s]);
      }
    }
    for (int s = 0; s < topK.length; s++) {
      if ((keep == null || !keep.topK[s]) && !topK[s].isEmpty()) {
        topK[s] = new TopKSlot(cfg.topKMapSize[s]);
      }
    }
  }

  /** Whether every sketch slot that {@code keep} holds is empty. */
  boolean sketchesEmpty(SketchSlots keep) {
    for (int s = 0; s < hashes.length; s++) {
      if (keep.hash[s] && !hashes[s].isEmpty()) {
        return false;
      }
    }
    for (int s = 0; s < quantiles.length; s++) {
      if (keep.quantile[s] && !quantiles[s].isEmpty()) {
        return false;
      }
    }
    for (int s = 0; s < topK.length; s++) {
      if (keep.topK[s] && !topK[s].isEmpty()) {
        return false;
      }
    }
    return true;
  }

  /**
   * This tile (a map-side partial's) becomes the state's as it is: its raw percentile values are
   * written back in the compact form (QuantileSlot.adopt). Its top-k sketches stay in the
   * partial's form: turning them into the compact form on write (read, rank, sort, re-encode)
   * cost the state function more CPU than it saved (SketchGroupCost, engine-jvm/README.md).
   */
  void adopt() {
    for (QuantileSlot q : quantiles) {
      q.adopt();
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
      int o = s * STRIDE;
      double[] st = stats;
      double[] ot = other.stats;
      if (na == 0) {
        n[s] = nb;
        System.arraycopy(ot, o, st, o, STRIDE);
        continue;
      }
      long total = na + nb;
      double delta = ot[o + MEAN] - st[o + MEAN];
      st[o + MEAN] += delta * nb / total;
      st[o + M2] += ot[o + M2] + delta * delta * ((double) na * nb / total);
      n[s] = total;
      st[o + SUM] += ot[o + SUM];
      st[o + MIN] = Math.min(st[o + MIN], ot[o + MIN]);
      st[o + MAX] = Math.max(st[o + MAX], ot[o + MAX]);
    }
    for (int s = 0; s < cfg.hashSlots; s++) {
      hashes[s].merge(other.hashes[s]);
    }
    for (int s = 0; s < cfg.quantileSlots; s++) {
      quantiles[s].merge(other.quantiles[s]);
    }
    for (int s = 0; s < cfg.topKSlots; s++) {
      topK[s].merge(other.topK[s]);
    }
    for (int s = 0; s < cfg.lastSlots; s++) {
      addLast(s, other.lastTs[s], other.lastValue[s]);
    }
  }
}
