package io.featurestream.tiles;

import java.util.Iterator;
import java.util.NavigableMap;

/**
 * Feature values as of a time T: a window of n tiles covers the tile holding T and the n - 1
 * tiles before it (events are never later than T, see TileFunction). A sketch feature of grain
 * c > 1 covers the bucket of c tiles holding T and the floor(n / c) - 1 buckets before it.
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
      } else if (!SketchPass.isSketch(f.agg)) {
        values[i] = windowValue(f, s.tiles.subMap(current - f.tiles + 1, true, current, true));
      }
    }
    for (SketchPass pass : cfg.sketchPasses) {
      sketchValues(pass, s, current, cfg, values);
    }
    return values;
  }

  /**
   * One slot's sketch features at one grain: its tiles (or buckets) merged newest first, each
   * window read when complete. A window of m buckets holds the current bucket (partial) and the
   * m - 1 before it.
   */
  private static void sketchValues(SketchPass pass, EntityState s, long currentTile, EngineConfig cfg,
                                   Object[] values) {
    long current = Math.floorDiv(currentTile, pass.grain);
    int longest = pass.windows[pass.windows.length - 1];
    NavigableMap<Long, Tile> tiles = s.tilesOf(pass.grain, cfg).subMap(current - longest + 1, true, current, true);
    Iterator<Tile> newestFirst = tiles.descendingMap().values().iterator();
    Tile next = newestFirst.hasNext() ? newestFirst.next() : null;
    int slot = pass.slot;
    DistinctSlot.Window distinct = null;
    if (pass.kind == Agg.APPROX_COUNT_DISTINCT) {
      int largest = 0;
      int summed = 0;
      for (Tile t : tiles.values()) {
        int size = t.hashes[slot].exactSize();
        largest = Math.max(largest, size);
        summed += size;
      }
      distinct = new DistinctSlot.Window(cfg.distinctExactUpTo[slot], cfg.distinctLgK[slot], largest, summed);
    }
    QuantileSlot.Window quantile = pass.kind == Agg.APPROX_PERCENTILE
        ? new QuantileSlot.Window(cfg.quantileK[slot]) : null;
    TopKSlot.Window topK = pass.kind == Agg.TOP_K ? new TopKSlot.Window(cfg.topKMapSize[slot]) : null;
    for (int w = 0; w < pass.windows.length; w++) {
      long first = current - pass.windows[w] + 1;
      for (; next != null && next.index >= first; next = newestFirst.hasNext() ? newestFirst.next() : null) {
        if (distinct != null) {
          distinct.add(next.hashes[slot]);
        } else if (quantile != null) {
          quantile.add(next.quantiles[slot]);
        } else {
          topK.add(next.topK[slot]);
        }
      }
      if (quantile != null) {
        // One sorted view of the merged sketch for all the window's percentiles, not one each.
        int[] columns = pass.features[w];
        double[] ranks = new double[columns.length];
        for (int j = 0; j < columns.length; j++) {
          ranks[j] = cfg.features[columns[j]].percentile;
        }
        Double[] got = quantile.quantiles(ranks);
        for (int j = 0; j < columns.length; j++) {
          values[columns[j]] = got[j];
        }
        continue;
      }
      for (int i : pass.features[w]) {
        Feature f = cfg.features[i];
        switch (f.agg) {
          case APPROX_COUNT_DISTINCT:
            values[i] = distinct.value();
            break;
          case TOP_K:
            values[i] = topK.value(f.rank);
            break;
          default:
            values[i] = topK.share(f.rank);
        }
      }
    }
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
