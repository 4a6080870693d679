package io.featurestream.tiles;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.api.java.UDF1;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.DataTypes;

/**
 * True when the bytes are not well-formed UTF-8 (false for null), for the parse step's DLQ check.
 *
 * <p>The same verdict as Spark's {@code encode(decode(value, 'UTF-8'), 'UTF-8') != value}: Java's
 * decoder replaces exactly the malformed sequences (a replacement changes the bytes), and this asks
 * the same decoder to report them instead. The common all-ASCII payload is one pass over the bytes
 * with no copy; only a payload with a byte above 0x7F goes through the decoder.
 */
public final class InvalidUtf8 implements UDF1<byte[], Boolean> {
  private static final long serialVersionUID = 1L;

  /**
   * The check applied to {@code value}, marked nondeterministic so that it is an optimizer barrier:
   * Spark neither pushes a filter through the projection that computes it nor merges that
   * projection into the next one. The parse step puts it beside {@code from_json}, so the DLQ checks
   * read the parsed struct instead of Spark inlining the parse into each of them (the verdict is
   * deterministic; only the optimizer is told otherwise).
   */
  public static Column barrier(Column value) {
    return functions.udf(new InvalidUtf8(), DataTypes.BooleanType).asNondeterministic().apply(value);
  }

  @Override
  public Boolean call(byte[] value) {
    return value != null && invalid(value);
  }

  static boolean invalid(byte[] value) {
    int i = 0;
    while (i < value.length && value[i] >= 0) {
      i++;
    }
    if (i == value.length) {
      return false;
    }
    try {
      StandardCharsets.UTF_8.newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(ByteBuffer.wrap(value, i, value.length - i));
      return false;
    } catch (CharacterCodingException e) {
      return true;
    }
  }
}
