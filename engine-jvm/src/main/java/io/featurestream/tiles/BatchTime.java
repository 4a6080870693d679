package io.featurestream.tiles;

import org.apache.spark.TaskContext;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.api.java.UDF0;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.DataTypes;

/**
 * The micro-batch's timestamp (epoch ms) for the parse step's future-event bound, as a column whose
 * generated code is the same in every micro-batch.
 *
 * <p>Spark replaces {@code current_timestamp()} with the batch's timestamp as a literal, and a
 * literal is written into the stage's generated class: every micro-batch compiled new classes
 * (5.6 of 59 query-thread JFR samples a small batch). A function of no argument is not folded; it
 * reads the timestamp the foreachBatch body took from the offset log (see
 * {@link TileEngine#useBatchWatermark}), so a replayed batch gets the same value, like Spark's own.
 * Outside such a body (a batch job, a query without our consumer) it answers the task's clock.
 */
public final class BatchTime {
  static final String PROPERTY = "featurestream.tiles.batchTime";

  private BatchTime() {}

  public static Column column() {
    return functions.udf((UDF0<Long>) BatchTime::current, DataTypes.LongType).asNonNullable().apply();
  }

  static long current() {
    Long stored = PreAggregate.batchValue(TaskContext.get(), PROPERTY);
    return stored != null ? stored : System.currentTimeMillis();
  }
}
