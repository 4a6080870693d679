package io.featurestream.asof;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;
import org.apache.spark.sql.catalyst.expressions.UnsafeRow;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.unsafe.types.UTF8String;
import org.junit.jupiter.api.Test;

/**
 * The map-side reduction against a brute force: for every label interval of every key, the max
 * record among the input rows in it must reach the output, and nothing else may matter (rows after
 * a key's last label, or of keys without labels, must not appear).
 */
class PartitionReductionTest {
  private static final StructType RECORD = new StructType()
      .add("et", DataTypes.TimestampType).add("del", DataTypes.BooleanType)
      .add("wt", DataTypes.TimestampType).add("api", DataTypes.TimestampType).add("f0", DataTypes.LongType);

  /** A feature row (key, sort time, record) as the join hands it over. */
  private record Feature(Object[] key, long ts, long et, Boolean del, Long wt, long f0) {}

  private static UnsafeRow labelRow(DataType[] keyTypes, Object[] key, long time) {
    Object[] values = Arrays.copyOf(key, key.length + 1);
    values[key.length] = time;
    DataType[] types = Arrays.copyOf(keyTypes, keyTypes.length + 1);
    types[keyTypes.length] = DataTypes.TimestampType;
    return UnsafeProjection.create(types).apply(new GenericInternalRow(values)).copy();
  }

  private static UnsafeRow featureRow(DataType[] keyTypes, Feature f) {
    Object[] values = Arrays.copyOf(f.key, f.key.length + 2);
    values[f.key.length] = f.ts;
    values[f.key.length + 1] = new GenericInternalRow(new Object[] {f.et, f.del, f.wt, f.wt, f.f0});
    DataType[] types = Arrays.copyOf(keyTypes, keyTypes.length + 2);
    types[keyTypes.length] = DataTypes.TimestampType;
    types[keyTypes.length + 1] = RECORD;
    return UnsafeProjection.create(types).apply(new GenericInternalRow(values)).copy();
  }

  private static int compareRecords(Feature a, Feature b) {
    int c = Long.compare(a.et, b.et);
    if (c == 0) {
      c = compareNullable(a.del, b.del);
    }
    if (c == 0) {
      c = compareNullable(a.wt, b.wt);
    }
    if (c == 0) {
      c = compareNullable(a.wt, b.wt); // api = wt in these rows
    }
    return c != 0 ? c : Long.compare(a.f0, b.f0);
  }

  private static <T extends Comparable<T>> int compareNullable(T a, T b) {
    if (a == null || b == null) {
      return a == null ? (b == null ? 0 : -1) : 1; // nulls first, as Spark's struct ordering
    }
    return a.compareTo(b);
  }

  private static String keyText(Object[] key) {
    return Arrays.toString(key);
  }

  private static void check(DataType[] keyTypes, List<Object[]> labelKeys, List<Long> labelTimes,
      List<Feature> features, boolean strictlyBefore, int maxGroups) {
    List<InternalRow> labels = new ArrayList<>();
    Map<String, List<Long>> timesByKey = new HashMap<>();
    for (int i = 0; i < labelKeys.size(); i++) {
      labels.add(labelRow(keyTypes, labelKeys.get(i), labelTimes.get(i)));
      timesByKey.computeIfAbsent(keyText(labelKeys.get(i)), k -> new ArrayList<>()).add(labelTimes.get(i));
    }
    // Brute force: a row's interval is the smallest label time of its key that sees it.
    Map<String, Feature> expected = new HashMap<>();
    Map<String, String> groupOfRow = new HashMap<>();
    for (Feature f : features) {
      List<Long> times = timesByKey.get(keyText(f.key));
      if (times == null) {
        continue;
      }
      Long closing = null;
      for (long t : times) {
        boolean sees = strictlyBefore ? t > f.ts : t >= f.ts;
        if (sees && (closing == null || t < closing)) {
          closing = t;
        }
      }
      if (closing == null) {
        continue;
      }
      String group = keyText(f.key) + "@" + closing;
      groupOfRow.put(f.toString(), group);
      Feature best = expected.get(group);
      if (best == null || compareRecords(f, best) > 0) {
        expected.put(group, f);
      }
    }
    LabelIndex index = LabelIndex.of(labels.toArray(new InternalRow[0]), keyTypes);
    List<InternalRow> input = new ArrayList<>();
    for (Feature f : features) {
      input.add(featureRow(keyTypes, f));
    }
    PartitionReduction reduction =
        new PartitionReduction(input.iterator(), index, keyTypes, RECORD, strictlyBefore, maxGroups);
    Map<String, Long> outputMaxF0 = new HashMap<>();
    Map<String, Feature> outputBest = new HashMap<>();
    Map<String, Feature> byRow = new HashMap<>();
    for (Feature f : features) {
      byRow.put(Arrays.toString(featureRow(keyTypes, f).getBytes()), f);
    }
    int rows = 0;
    while (reduction.hasNext()) {
      UnsafeRow row = ((UnsafeRow) reduction.next()).copy();
      rows++;
      Feature f = byRow.get(Arrays.toString(row.getBytes()));
      assertTrue(f != null, "the output row is an input row");
      String group = groupOfRow.get(f.toString());
      assertTrue(group != null, "no output from rows that no label can see: " + f);
      Feature best = outputBest.get(group);
      if (best == null || compareRecords(f, best) > 0) {
        outputBest.put(group, f);
      }
      outputMaxF0.merge(group, f.f0, Math::max);
    }
    assertEquals(expected.keySet(), outputBest.keySet());
    for (Map.Entry<String, Feature> entry : expected.entrySet()) {
      assertEquals(0, compareRecords(entry.getValue(), outputBest.get(entry.getKey())), entry.getKey());
    }
    if (maxGroups >= expected.size()) {
      assertEquals(expected.size(), rows, "one row per group when nothing is flushed");
    }
  }

  private static void randomCase(long seed, DataType[] keyTypes, boolean strictlyBefore, int maxGroups) {
    Random random = new Random(seed);
    int keys = 1 + random.nextInt(8);
    List<Object[]> labelKeys = new ArrayList<>();
    List<Long> labelTimes = new ArrayList<>();
    for (int i = 0; i < 40; i++) {
      labelKeys.add(key(keyTypes, random.nextInt(keys)));
      labelTimes.add((long) random.nextInt(50)); // small range: ties with features and each other
    }
    List<Feature> features = new ArrayList<>();
    for (int i = 0; i < 400; i++) {
      long et = random.nextInt(60);
      long ts = random.nextBoolean() ? et : et + random.nextInt(5); // availability: max(et, wt)
      Boolean del = random.nextInt(10) == 0 ? null : random.nextInt(20) == 0;
      Long wt = random.nextInt(10) == 0 ? null : (long) random.nextInt(3);
      features.add(new Feature(key(keyTypes, random.nextInt(keys + 2)), ts, et, del, wt, random.nextInt(3)));
    }
    check(keyTypes, labelKeys, labelTimes, features, strictlyBefore, maxGroups);
  }

  private static Object[] key(DataType[] keyTypes, int n) {
    if (keyTypes.length == 1) {
      return new Object[] {UTF8String.fromString("card-" + n)};
    }
    return new Object[] {n % 3, UTF8String.fromString(n % 2 == 0 ? "" : "m-" + n)};
  }

  // Each case costs ~0.3 s whatever its size (the reduction's projection and ordering are set up
  // per task), so the seed counts are what this suite costs CI: 60 + 60 + 30 cases, ~60 s (was 160 s).
  @Test
  void oneStringKeyMatchesBruteForce() {
    DataType[] keyTypes = {DataTypes.StringType};
    for (long seed = 0; seed < 60; seed++) {
      randomCase(seed, keyTypes, seed % 2 == 0, 1_000_000);
    }
  }

  @Test
  void compositeKeyMatchesBruteForce() {
    DataType[] keyTypes = {DataTypes.IntegerType, DataTypes.StringType};
    for (long seed = 0; seed < 60; seed++) {
      randomCase(seed, keyTypes, seed % 2 == 1, 1_000_000);
    }
  }

  @Test
  void flushingKeepsEveryGroupsMax() {
    DataType[] keyTypes = {DataTypes.StringType};
    for (long seed = 0; seed < 30; seed++) {
      randomCase(seed, keyTypes, false, 3);
    }
  }

  @Test
  void intervalBoundaries() {
    DataType[] keyTypes = {DataTypes.StringType};
    Object[] k = {UTF8String.fromString("k")};
    List<Object[]> keys = List.of(k, k, k);
    List<Long> times = List.of(10L, 20L, 20L);
    // At 10: the first interval when at-or-before, the second when strictly before; after 20: none.
    List<Feature> features = List.of(
        new Feature(k, 10, 10, false, 1L, 1), new Feature(k, 5, 5, false, 1L, 2),
        new Feature(k, 20, 20, false, 1L, 3), new Feature(k, 21, 21, false, 1L, 4));
    check(keyTypes, keys, times, features, false, 100);
    check(keyTypes, keys, times, features, true, 100);
  }
}
