package io.featurestream.tiles;

/** The aggregations a feature can use; names match the feature-group YAML. */
enum Agg {
  COUNT, SUM, MEAN, MIN, MAX, STDDEV_POP, STDDEV_SAMP, APPROX_COUNT_DISTINCT, LAST;

  static Agg parse(String name) {
    return Agg.valueOf(name.toUpperCase(java.util.Locale.ROOT));
  }
}
