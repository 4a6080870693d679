package io.featurestream.tiles;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.sql.Date;
import java.sql.Timestamp;
import java.time.Duration;
import java.time.LocalDateTime;
import java.time.Period;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;
import org.apache.spark.sql.catalyst.CatalystTypeConverters;
import org.apache.spark.sql.catalyst.InternalRow;
import org.apache.spark.sql.catalyst.expressions.BoundReference;
import org.apache.spark.sql.catalyst.expressions.CreateNamedStruct;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.GenericInternalRow;
import org.apache.spark.sql.catalyst.expressions.Literal;
import org.apache.spark.sql.catalyst.expressions.UnsafeProjection;
import org.apache.spark.sql.catalyst.expressions.UnsafeRow;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructType;
import org.junit.jupiter.api.Test;
import scala.collection.JavaConverters;

/** PackedRow: a struct to bytes and back gives the same values, interpreted and generated, for every type. */
class PackedRowTest {
  private static final StructType INNER = new StructType()
      .add("a", DataTypes.IntegerType).add("b", DataTypes.StringType).add("c", DataTypes.TimestampType);
  private static final StructType TYPE = new StructType()
      .add("bool", DataTypes.BooleanType)
      .add("byte", DataTypes.ByteType)
      .add("short", DataTypes.ShortType)
      .add("int", DataTypes.IntegerType)
      .add("long", DataTypes.LongType)
      .add("float", DataTypes.FloatType)
      .add("double", DataTypes.DoubleType)
      .add("small_decimal", DataTypes.createDecimalType(10, 2))
      .add("big_decimal", DataTypes.createDecimalType(38, 18))
      .add("text", DataTypes.StringType)
      .add("payload", DataTypes.BinaryType)
      .add("day", DataTypes.DateType)
      .add("at", DataTypes.TimestampType)
      .add("local", DataTypes.TimestampNTZType)
      .add("ym", DataTypes.createYearMonthIntervalType())
      .add("dt", DataTypes.createDayTimeIntervalType())
      .add("tags", DataTypes.createArrayType(DataTypes.StringType))
      .add("counts", DataTypes.createMapType(DataTypes.StringType, DataTypes.LongType))
      .add("inner", INNER)
      .add("inners", DataTypes.createArrayType(INNER))
      .add("_dlq", new StructType().add("payload", DataTypes.StringType).add("partition", DataTypes.IntegerType)
          .add("offset", DataTypes.LongType).add("kafka_timestamp", DataTypes.TimestampType));

  private static Timestamp micros(long seconds, int micros) {
    Timestamp t = new Timestamp(seconds * 1000);
    t.setNanos(micros * 1000);
    return t;
  }

  private static Row row(byte[] payload) {
    Map<String, Long> counts = new HashMap<>();
    counts.put("a\u0000b", Long.MIN_VALUE);
    counts.put("\uD83D\uDE00", 3L);
    return RowFactory.create(true, (byte) -7, (short) 300, Integer.MIN_VALUE, Long.MAX_VALUE, Float.NaN,
        -0.0d, new BigDecimal("-12345678.90"), new BigDecimal("12345678901234567890.123456789012345678"),
        "{\"a\": \"\\u00e9\\n\"}\n\t\u00e9\uD83D\uDE00\"", payload, Date.valueOf("1969-12-31"),
        micros(-86_401, 999_999), LocalDateTime.of(2026, 3, 29, 1, 30, 5, 123_456_000), Period.ofMonths(-14),
        Duration.ofNanos(-1_234_567_000L), Arrays.asList("x", null, ""), counts,
        RowFactory.create(null, "\\", micros(1_700_000_000, 1)),
        Arrays.asList(RowFactory.create(1, null, null), null),
        RowFactory.create("ß", 7, (1L << 40) + 1, micros(0, 0)));
  }

  private static Row nulls() {
    return RowFactory.create(new Object[TYPE.size()]);
  }

  private static Row external(InternalRow internal) {
    return (Row) CatalystTypeConverters.createToScalaConverter(TYPE).apply(internal);
  }

  private static InternalRow internal(Row row) {
    return (InternalRow) CatalystTypeConverters.createToCatalystConverter(TYPE).apply(row);
  }

  private static InternalRow input(Row row) {
    return new GenericInternalRow(new Object[] {row == null ? null : internal(row)});
  }

  private static void roundTrips(Row row) {
    Expression packed = new PackedRow.Pack(new BoundReference(0, TYPE, true));
    Expression unpacked = new PackedRow.Unpack(packed, TYPE);
    InternalRow in = input(row);
    Row expected = row == null ? null : external(internal(row));
    // Interpreted.
    Object back = unpacked.eval(in);
    assertEquals(expected, back == null ? null : external((InternalRow) back));
    // Generated code.
    UnsafeRow out = UnsafeProjection.create(unpacked).apply(in);
    assertEquals(expected, out.isNullAt(0) ? null : external(out.getStruct(0, TYPE.size())));
    // The bytes are the same both ways, and a new array each time.
    UnsafeProjection packing = UnsafeProjection.create(packed);
    byte[] first = packing.apply(in).getBinary(0);
    byte[] second = packing.apply(in).getBinary(0);
    if (row == null) {
      assertNull(first);
      assertNull(packed.eval(in));
      return;
    }
    assertArrayEquals((byte[]) packed.eval(in), first);
    assertArrayEquals(first, second);
    assertNotSame(packed.eval(in), packed.eval(in));
  }

  @Test
  void everyTypeRoundTrips() {
    roundTrips(row("x".getBytes(StandardCharsets.UTF_8)));
    roundTrips(row(new byte[0]));
    roundTrips(nulls());
    roundTrips(null);
  }

  @Test
  void aTenMegabytePayloadRoundTrips() {
    byte[] payload = new byte[10 * 1024 * 1024];
    new Random(18).nextBytes(payload);
    roundTrips(row(payload));
  }

  @Test
  void aStructBuiltInTheQueryPacksLikeAnUnsafeOne() {
    // A struct built by the plan (CreateNamedStruct, a generic row) and the same struct read as an
    // UnsafeRow pack to the same bytes.
    Expression built = new CreateNamedStruct(JavaConverters.asScalaBuffer(Arrays.<Expression>asList(
        Literal.create("a", DataTypes.StringType), Literal.create(5, DataTypes.IntegerType),
        Literal.create("b", DataTypes.StringType), Literal.create("é", DataTypes.StringType))).toSeq());
    byte[] fromGeneric = (byte[]) new PackedRow.Pack(built).eval(null);
    UnsafeRow unsafe = UnsafeProjection.create(built).apply(null).getStruct(0, 2);
    byte[] fromUnsafe = (byte[]) new PackedRow.Pack(new BoundReference(0, built.dataType(), true))
        .eval(new GenericInternalRow(new Object[] {unsafe}));
    assertArrayEquals(fromGeneric, fromUnsafe);
  }
}
