package io.featurestream.tiles;

import java.io.Serializable;

/** One output column: an aggregation over a window of {@code tiles} tiles (0 = whole retained history). */
final class Feature implements Serializable {
  private static final long serialVersionUID = 1L;

  final String name;
  final Agg agg;
  final int tiles;
  /** Index of the input slot the aggregation reads (numeric, hash or last slot); -1 for count. */
  final int slot;

  Feature(String name, Agg agg, int tiles, int slot) {
    this.name = name;
    this.agg = agg;
    this.tiles = tiles;
    this.slot = slot;
  }
}
