package io.featurestream.tiles;

import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/** The engine input and feature set the unit tests share: one slot of each kind, every aggregation. */
final class EngineFixtures {
  private EngineFixtures() {}

  /** The engine's input columns as featurestream.aggregation lays them out. */
  static StructType input() {
    return new StructType()
        .add("_key", DataTypes.StringType)
        .add("_ts", DataTypes.LongType)
        .add("_wm", DataTypes.TimestampType)
        .add("_dk", DataTypes.LongType)
        .add("_n0", DataTypes.DoubleType)
        .add("_h0", DataTypes.LongType)
        .add("_l0", DataTypes.StringType)
        .add("_event", new StructType().add("x", DataTypes.StringType));
  }

  /** 1-minute tiles, 2 minutes of lateness, every aggregation over 5 tiles plus a 2-tile count. */
  static EngineConfig config(StructType schema, long dedupeMs) {
    String json = "{\"tile_ms\": 60000, \"lateness_ms\": 120000, \"ttl_ms\": 0, \"dedupe_within_ms\": "
        + dedupeMs + ", \"numeric_slots\": 1, \"hash_slots\": 1, \"last_slots\": 1, \"features\": ["
        + "{\"name\": \"n_2m\", \"agg\": \"count\", \"tiles\": 2, \"slot\": -1},"
        + "{\"name\": \"sum_5m\", \"agg\": \"sum\", \"tiles\": 5, \"slot\": 0},"
        + "{\"name\": \"mean_5m\", \"agg\": \"mean\", \"tiles\": 5, \"slot\": 0},"
        + "{\"name\": \"min_5m\", \"agg\": \"min\", \"tiles\": 5, \"slot\": 0},"
        + "{\"name\": \"max_5m\", \"agg\": \"max\", \"tiles\": 5, \"slot\": 0},"
        + "{\"name\": \"sd_5m\", \"agg\": \"stddev_pop\", \"tiles\": 5, \"slot\": 0},"
        + "{\"name\": \"sds_5m\", \"agg\": \"stddev_samp\", \"tiles\": 5, \"slot\": 0},"
        + "{\"name\": \"d_5m\", \"agg\": \"approx_count_distinct\", \"tiles\": 5, \"slot\": 0},"
        + "{\"name\": \"last_5m\", \"agg\": \"last\", \"tiles\": 5, \"slot\": 0},"
        + "{\"name\": \"latest\", \"agg\": \"last\", \"tiles\": 0, \"slot\": 0}]}";
    return EngineConfig.parse(json, schema, false);
  }
}
