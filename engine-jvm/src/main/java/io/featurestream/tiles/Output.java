package io.featurestream.tiles;

import java.sql.Timestamp;
import java.time.Instant;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;

/**
 * The engine's output rows. One schema for three kinds, told apart by {@code _kind}: a full record
 * for an entity (features as of {@code _as_of}), a late event (with how late it was), or counters
 * only (a micro-batch whose events were all duplicates). {@code _folded} counts the aggregated
 * events that reached the state folded into map-side partials (the rest came one by one).
 */
final class Output {
  static final int RECORD = 0;
  static final int LATE = 1;
  static final int COUNTERS = 2;
  /** Only in the batch pass's output ({@link HistoryPass}): an entity's state after the chunk. */
  static final int STATE = 3;

  private Output() {}

  static StructType schema(EngineConfig cfg) {
    StructType schema = new StructType()
        .add("_kind", DataTypes.IntegerType, false)
        .add("_key", DataTypes.StringType, false)
        .add("_as_of", DataTypes.TimestampType, true);
    for (Feature f : cfg.features) {
      schema = schema.add(f.name, featureType(f, cfg), true);
    }
    return schema
        .add("_aggregated", DataTypes.LongType, false)
        .add("_duplicates", DataTypes.LongType, false)
        .add("_event", cfg.eventType, true)
        .add("_late_by_ms", DataTypes.LongType, true)
        .add("_watermark", DataTypes.TimestampType, true)
        .add("_folded", DataTypes.LongType, false);
  }

  /** The batch pass's output: the schema above plus the entity's encoded state (STATE rows only). */
  static StructType batchSchema(EngineConfig cfg) {
    return schema(cfg).add("_state", DataTypes.BinaryType, true);
  }

  /** A row of {@link #schema} in the batch layout (no state). */
  static Row withoutState(Row row) {
    Object[] values = new Object[row.length() + 1];
    for (int i = 0; i < row.length(); i++) {
      values[i] = row.get(i);
    }
    return RowFactory.create(values);
  }

  static Row state(EngineConfig cfg, String key, byte[] state) {
    Object[] base = blank(cfg, STATE, key);
    Object[] values = new Object[base.length + 1];
    System.arraycopy(base, 0, values, 0, base.length);
    values[base.length] = state;
    return RowFactory.create(values);
  }

  static DataType featureType(Feature f, EngineConfig cfg) {
    switch (f.agg) {
      case COUNT:
      case APPROX_COUNT_DISTINCT:
        return DataTypes.LongType;
      case LAST:
        return cfg.lastTypes[f.slot];
      case TOP_K:
        return DataTypes.StringType;
      default:
        return DataTypes.DoubleType;
    }
  }

  private static Object time(long ms, EngineConfig cfg) {
    return cfg.java8Time ? Instant.ofEpochMilli(ms) : new Timestamp(ms);
  }

  private static Object[] blank(EngineConfig cfg, int kind, String key) {
    Object[] values = new Object[3 + cfg.features.length + 6];
    values[0] = kind;
    values[1] = key;
    values[3 + cfg.features.length] = 0L;
    values[4 + cfg.features.length] = 0L;
    values[8 + cfg.features.length] = 0L;
    return values;
  }

  static Row record(EngineConfig cfg, String key, long asOf, Object[] features, long aggregated,
                    long duplicates, long folded) {
    Object[] values = blank(cfg, RECORD, key);
    values[2] = time(asOf, cfg);
    System.arraycopy(features, 0, values, 3, features.length);
    values[3 + features.length] = aggregated;
    values[4 + features.length] = duplicates;
    values[8 + features.length] = folded;
    return RowFactory.create(values);
  }

  static Row counters(EngineConfig cfg, String key, long duplicates) {
    Object[] values = blank(cfg, COUNTERS, key);
    values[4 + cfg.features.length] = duplicates;
    return RowFactory.create(values);
  }

  static Row late(EngineConfig cfg, String key, Object event, long eventTime, long watermark) {
    Object[] values = blank(cfg, LATE, key);
    int base = 3 + cfg.features.length;
    values[base + 2] = event;
    values[base + 3] = watermark - eventTime;
    values[base + 4] = time(watermark, cfg);
    return RowFactory.create(values);
  }
}
