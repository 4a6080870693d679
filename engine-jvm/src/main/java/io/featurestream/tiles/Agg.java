package io.featurestream.tiles;

/**
 * The aggregations an output column can use; names match the feature-group YAML, except that a
 * YAML {@code top_k} feature becomes {@code TOP_K} (the r-th most frequent value) and
 * {@code TOP_K_SHARE} (its share) columns.
 */
enum Agg {
  COUNT, SUM, MEAN, MIN, MAX, STDDEV_POP, STDDEV_SAMP, APPROX_COUNT_DISTINCT, LAST,
  APPROX_PERCENTILE, TOP_K, TOP_K_SHARE;

  static Agg parse(String name) {
    return Agg.valueOf(name.toUpperCase(java.util.Locale.ROOT));
  }
}
