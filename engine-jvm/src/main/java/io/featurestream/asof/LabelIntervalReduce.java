package io.featurestream.asof;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Dataset;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.BoundReference;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;
import org.apache.spark.sql.catalyst.util.TypeUtils;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StructType;
import scala.collection.JavaConverters;
import scala.math.Ordering;

/**
 * Map-side reduction of feature rows for the as-of join ({@code featurestream/training/pit.py}).
 *
 * <p>A label at time t takes the max record among its key's feature rows with sort time {@code s <= t}
 * ({@code s < t} strictly before). So two feature rows of a key whose sort times fall between the
 * same two consecutive label times of that key are eligible for exactly the same labels, and only
 * their max can ever win. Each input partition therefore keeps, per (key, label interval), the row
 * with the max record, and drops rows no label can see (keys without labels, times after the key's
 * last label). The join downstream is unchanged: it takes the max over whatever rows reach it, and
 * max is associative, so rows of one interval from several partitions, or from a flushed map, are
 * still exact.
 *
 * <p>Input rows: the key columns (0..k-1), the sort time (k, timestamp), the record struct (k+1),
 * compared with Spark's own struct ordering (the order of {@code max} in SQL). Labels: the same key
 * columns and the label time, none null. The labels' distinct times per key are collected to the
 * driver and broadcast, so this is for label sets that fit in memory; the caller decides.
 */
public final class LabelIntervalReduce {
  private LabelIntervalReduce() {}

  /** The reduced feature rows, same schema as {@code features}. */
  public static Dataset<Row> reduce(
      Dataset<Row> features, Dataset<Row> labelTimes, int keyCount, boolean strictlyBefore, int maxGroups) {
    SparkSession spark = features.sparkSession();
    StructType schema = features.schema();
    DataType[] keyTypes = new DataType[keyCount];
    for (int i = 0; i < keyCount; i++) {
      keyTypes[i] = schema.fields()[i].dataType();
    }
    LabelIndex index = LabelIndex.of(
        (InternalRow[]) labelTimes.queryExecution().executedPlan().executeCollect(), keyTypes);
    Broadcast<LabelIndex> shared = JavaSparkContext.fromSparkContext(spark.sparkContext()).broadcast(index);
    Reducer reducer = new Reducer(shared, keyTypes, (StructType) schema.fields()[keyCount + 1].dataType(),
        strictlyBefore, maxGroups);
    // Rows stay in Spark's internal (unsafe) format both ways: a Dataset.mapPartitions would
    // convert every row to and from Row objects. internalCreateDataFrame is Spark's own entry for
    // an RDD of internal rows (private[sql] in Scala, public in the bytecode Java sees).
    JavaRDD<InternalRow> rows = features.queryExecution().toRdd().toJavaRDD().mapPartitions(reducer);
    return spark.internalCreateDataFrame(rows.rdd(), schema, false);
  }

  static UnsafeProjection keyProjection(DataType[] keyTypes) {
    List<Expression> refs = new ArrayList<>();
    for (int i = 0; i < keyTypes.length; i++) {
      refs.add(new BoundReference(i, keyTypes[i], true));
    }
    return UnsafeProjection.create(JavaConverters.asScalaBuffer(refs).toSeq());
  }

  /**
   * Spark's ordering of the record struct, with the common case decided on its first field alone:
   * the EventTime, never null here (the caller drops rows without one), so two records with
   * different EventTimes compare as their longs do, as in the struct ordering.
   */
  static final class RecordOrder implements Serializable {
    private static final long serialVersionUID = 1L;
    private final Ordering<Object> full;

    @SuppressWarnings("unchecked")
    RecordOrder(StructType recordType) {
      this.full = (Ordering<Object>) TypeUtils.getInterpretedOrdering(recordType);
    }

    int compare(InternalRow a, InternalRow b) {
      int byTime = Long.compare(a.getLong(0), b.getLong(0));
      return byTime != 0 ? byTime : full.compare(a, b);
    }
  }

  static final class Reducer implements FlatMapFunction<Iterator<InternalRow>, InternalRow>, Serializable {
    private static final long serialVersionUID = 1L;
    private final Broadcast<LabelIndex> labels;
    private final DataType[] keyTypes;
    private final StructType recordType;
    private final boolean strictlyBefore;
    private final int maxGroups;

    Reducer(Broadcast<LabelIndex> labels, DataType[] keyTypes, StructType recordType, boolean strictlyBefore,
        int maxGroups) {
      this.labels = labels;
      this.keyTypes = keyTypes;
      this.recordType = recordType;
      this.strictlyBefore = strictlyBefore;
      this.maxGroups = maxGroups;
    }

    @Override
    public Iterator<InternalRow> call(Iterator<InternalRow> input) {
      return new PartitionReduction(input, labels.value(), keyTypes, recordType, strictlyBefore, maxGroups);
    }
  }
}
