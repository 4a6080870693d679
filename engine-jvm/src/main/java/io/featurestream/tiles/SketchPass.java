package io.featurestream.tiles;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The sketch features of one input slot (distinct counts, percentiles, top-k) at one grain,
 * evaluated in one pass: every window ends at the current tile (or bucket), so the slot's tiles
 * are merged from the newest backwards and each window is read off the running merge when its
 * oldest tile is in. A record with windows of 5 minutes, 1 hour and 1 day at one grain merges
 * each tile once, not three times.
 */
final class SketchPass implements Serializable {
  private static final long serialVersionUID = 1L;

  /** APPROX_COUNT_DISTINCT, APPROX_PERCENTILE or TOP_K (which also serves TOP_K_SHARE). */
  final Agg kind;
  final int slot;
  /** Tiles per bucket: 1 reads the engine's tiles, more the buckets of that grain. */
  final int grain;
  /** Window lengths in buckets of the grain (in tiles at grain 1), ascending. */
  final int[] windows;
  /** Per window, the indices (into EngineConfig.features) of the columns it gives. */
  final int[][] features;

  private SketchPass(Agg kind, int slot, int grain, int[] windows, int[][] features) {
    this.kind = kind;
    this.slot = slot;
    this.grain = grain;
    this.windows = windows;
    this.features = features;
  }

  static boolean isSketch(Agg agg) {
    return kindOf(agg) != null;
  }

  private static Agg kindOf(Agg agg) {
    switch (agg) {
      case APPROX_COUNT_DISTINCT:
      case APPROX_PERCENTILE:
      case TOP_K:
        return agg;
      case TOP_K_SHARE:
        return Agg.TOP_K;
      default:
        return null;
    }
  }

  static SketchPass[] plan(Feature[] features) {
    // (kind, slot, grain) -> window in buckets -> feature indices, in a stable order.
    Map<String, TreeMap<Integer, List<Integer>>> bySlot = new TreeMap<>();
    for (int i = 0; i < features.length; i++) {
      Agg kind = kindOf(features[i].agg);
      if (kind != null) {
        bySlot.computeIfAbsent(kind.name() + ":" + features[i].slot + ":" + features[i].grain, k -> new TreeMap<>())
            .computeIfAbsent(features[i].buckets(), n -> new ArrayList<>()).add(i);
      }
    }
    List<SketchPass> passes = new ArrayList<>();
    for (Map.Entry<String, TreeMap<Integer, List<Integer>>> e : bySlot.entrySet()) {
      String[] parts = e.getKey().split(":");
      TreeMap<Integer, List<Integer>> byWindow = e.getValue();
      int[] windows = new int[byWindow.size()];
      int[][] columns = new int[byWindow.size()][];
      int w = 0;
      for (Map.Entry<Integer, List<Integer>> window : byWindow.entrySet()) {
        windows[w] = window.getKey();
        columns[w++] = window.getValue().stream().mapToInt(Integer::intValue).toArray();
      }
      passes.add(new SketchPass(Agg.valueOf(parts[0]), Integer.parseInt(parts[1]), Integer.parseInt(parts[2]),
          windows, columns));
    }
    return passes.toArray(new SketchPass[0]);
  }
}
