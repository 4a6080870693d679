package io.featurestream.tiles;

import java.util.NavigableMap;

/**
 * Feature values as of a time T: a window of n tiles covers the tile holding T and the n - 1
 * tiles before it (events are never later than T, see TileFunction).
 */
final class Windows {
  private Windows() {}

  static Object[] valuesAsOf(EntityState s, long asOf, EngineConfig cfg) {
    long current = Math.floorDiv(asOf, cfg.tileMs);
    Object[] values = new Object[cfg.features.length];
    for (int i = 0; i < cfg.features.length; i++) {
      Feature f = cfg.features[i];
      if (f.tiles == 0) {
        values[i] = s.lastValue[f.slot];
      } else {
        values[i] = windowValue(f, s.tiles.subMap(current - f.tiles + 1, true, current, true));
      }
    }
    return values;
  }

  private static Object windowValue(Feature f, NavigableMap<Long, Tile> window) {
    switch (f.agg) {
      case COUNT: {
        long count = 0;
        for (Tile t : window.values()) {
          count += t.count;
        }
        return count;
      }
      case SUM: {
        double sum = 0;
        for (Tile t : window.values()) {
          sum += t.sum(f.slot);
        }
        return sum;
      }
      case MEAN:
      case STDDEV_POP:
      case STDDEV_SAMP:
        return moments(f, window);
      case MIN:
      case MAX: {
        Double best = null;
        for (Tile t : window.values()) {
          if (t.n[f.slot] > 0) {
            double v = f.agg == Agg.MIN ? t.min(f.slot) : t.max(f.slot);
            if (best == null || (f.agg == Agg.MIN ? v < best : v > best)) {
              best = v;
            }
          }
        }
        return best;
      }
      case APPROX_COUNT_DISTINCT: {
        // Sized for the largest tile (the union is at least that); tiles of one entity often
        // repeat the same values, so their summed sizes would over-allocate.
        int largest = 0;
        for (Tile t : window.values()) {
          largest = Math.max(largest, t.hashes[f.slot].size());
        }
        LongSet union = new LongSet(largest);
        for (Tile t : window.values()) {
          union.addAll(t.hashes[f.slot]);
        }
        return (long) union.size();
      }
      case LAST: {
        long ts = Long.MIN_VALUE;
        Object value = null;
        for (Tile t : window.values()) {
          if (Values.newer(t.lastTs[f.slot], t.lastValue[f.slot], ts, value)) {
            ts = t.lastTs[f.slot];
            value = t.lastValue[f.slot];
          }
        }
        return value;
      }
      default:
        throw new IllegalStateException("unhandled aggregation " + f.agg);
    }
  }

  /** Chan et al.'s pairwise merge of (n, mean, M2) across tiles. */
  private static Double moments(Feature f, NavigableMap<Long, Tile> window) {
    long n = 0;
    double mean = 0;
    double m2 = 0;
    for (Tile t : window.values()) {
      long nb = t.n[f.slot];
      if (nb == 0) {
        continue;
      }
      long total = n + nb;
      double delta = t.mean(f.slot) - mean;
      mean += delta * nb / total;
      m2 += t.m2(f.slot) + delta * delta * ((double) n * nb / total);
      n = total;
    }
    if (f.agg == Agg.MEAN) {
      return n == 0 ? null : mean;
    }
    if (f.agg == Agg.STDDEV_POP) {
      return n == 0 ? null : Math.sqrt(Math.max(0.0, m2 / n));
    }
    return n < 2 ? null : Math.sqrt(Math.max(0.0, m2 / (n - 1)));
  }
}
