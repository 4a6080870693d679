package io.featurestream.tiles;

import java.io.Serializable;

/** One output column: an aggregation over a window of {@code tiles} tiles (0 = whole retained history). */
final class Feature implements Serializable {
  private static final long serialVersionUID = 2L;

  final String name;
  final Agg agg;
  final int tiles;
  /** Index of the input slot the aggregation reads (numeric, hash, last, quantile or top-k slot); -1 for count. */
  final int slot;
  /** approx_percentile: the rank in [0, 1] this column reports. */
  final double percentile;
  /** top_k and its share: which of the most frequent values (1 = the most frequent). */
  final int rank;
  /**
   * Sketch features: the tiles per sketch bucket (1 = the sketch lives in the tiles themselves).
   * The window is then its last {@code tiles / grain} buckets, the current one partial.
   */
  final int grain;

  Feature(String name, Agg agg, int tiles, int slot, double percentile, int rank, int grain) {
    this.name = name;
    this.agg = agg;
    this.tiles = tiles;
    this.slot = slot;
    this.percentile = percentile;
    this.rank = rank;
    this.grain = grain;
  }

  Feature(String name, Agg agg, int tiles, int slot) {
    this(name, agg, tiles, slot, Double.NaN, 0, 1);
  }

  /** The window in sketch buckets (in tiles when the grain is 1). */
  int buckets() {
    return tiles / grain;
  }
}
