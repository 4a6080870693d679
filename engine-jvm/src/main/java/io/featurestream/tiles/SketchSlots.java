package io.featurestream.tiles;

import java.io.Serializable;

/**
 * Which sketch slots (distinct count, percentile, top-k) one kind of tile keeps: the engine's own
 * tiles keep those of the sketch features whose grain is 1, the buckets of a coarser grain those
 * of the features with that grain. A slot no feature reads at a grain is neither updated nor
 * stored there.
 */
final class SketchSlots implements Serializable {
  private static final long serialVersionUID = 1L;

  final boolean[] hash;
  final boolean[] quantile;
  final boolean[] topK;

  SketchSlots(int hashSlots, int quantileSlots, int topKSlots) {
    this.hash = new boolean[hashSlots];
    this.quantile = new boolean[quantileSlots];
    this.topK = new boolean[topKSlots];
  }

  /** Every slot: what tiles of state formats 1 and 2 hold. */
  static SketchSlots all(int hashSlots, int quantileSlots, int topKSlots) {
    SketchSlots s = new SketchSlots(hashSlots, quantileSlots, topKSlots);
    java.util.Arrays.fill(s.hash, true);
    java.util.Arrays.fill(s.quantile, true);
    java.util.Arrays.fill(s.topK, true);
    return s;
  }

  void use(Agg agg, int slot) {
    switch (agg) {
      case APPROX_COUNT_DISTINCT:
        hash[slot] = true;
        break;
      case APPROX_PERCENTILE:
        quantile[slot] = true;
        break;
      case TOP_K:
      case TOP_K_SHARE:
        topK[slot] = true;
        break;
      default:
        throw new IllegalArgumentException(agg + " is not a sketch");
    }
  }
}
