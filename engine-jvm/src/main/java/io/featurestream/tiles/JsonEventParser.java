package io.featurestream.tiles;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.io.UncheckedIOException;
import org.apache.spark.sql.catalyst.json.JSONOptions;
import org.apache.spark.sql.catalyst.json.JacksonParser;
import org.apache.spark.sql.catalyst.json.JacksonParser$;
import org.apache.spark.sql.internal.LegacyBehaviorPolicy$;
import org.apache.spark.sql.internal.SQLConf;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.types.TimestampType;
import scala.Function1;
import scala.runtime.AbstractFunction1;

/**
 * Spark's JSON parser for {@code from_json} (see {@link FromJson}) with one shortcut: a timestamp
 * field whose text is exactly {@code yyyy-MM-ddTHH:mm:ss[.f{1,6}]Z} (UTC, what producers and the
 * Feature Store write) is turned into microseconds here, without Spark's general parser (a String,
 * a UTF8String, its segments, a LocalDate, LocalTime and ZonedDateTime per value). Any other text,
 * and every other token, goes to Spark's own converter, so what is accepted, and every value, is
 * what Spark gives: the shortcut takes only text Spark's default timestamp parser reads as that
 * same instant (it validates the same ranges: month, day of month, hour, minute, second), and it is
 * on only where Spark uses that parser (no `timestampFormat` option, no legacy parser policy).
 */
final class JsonEventParser extends JacksonParser {
  static final long NOT_MINE = Long.MIN_VALUE;
  private static final int[] DAYS = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

  JsonEventParser(StructType schema, JSONOptions options) {
    super(schema, options, false, JacksonParser$.MODULE$.$lessinit$greater$default$4());
  }

  /** Called by JacksonParser's constructor (for every field of the schema): no state of this class is set yet. */
  @Override
  public Function1<JsonParser, Object> makeConverter(DataType type) {
    Function1<JsonParser, Object> spark = super.makeConverter(type);
    if (!(type instanceof TimestampType) || options().timestampFormatInRead().isDefined()
        || SQLConf.get().legacyTimeParserPolicy() == LegacyBehaviorPolicy$.MODULE$.LEGACY()) {
      return spark;
    }
    return new AbstractFunction1<JsonParser, Object>() {
      @Override
      public Object apply(JsonParser parser) {
        try {
          // Spark's parseJsonToken: from the field's name on to its value.
          JsonToken token = parser.currentToken();
          if (token == JsonToken.FIELD_NAME) {
            token = parser.nextToken();
          }
          if (token == JsonToken.VALUE_STRING) {
            long micros = utcMicros(parser.getTextCharacters(), parser.getTextOffset(), parser.getTextLength());
            if (micros != NOT_MINE) {
              return micros;
            }
          }
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
        return spark.apply(parser);
      }
    };
  }

  /**
   * Microseconds since the epoch of {@code yyyy-MM-ddTHH:mm:ss[.f{1,6}]Z} (year 1000 to 9999) in
   * {@code text[offset, offset + length)}, or {@link #NOT_MINE} for any other text (also a date or
   * time out of range, which Spark's parser refuses).
   */
  static long utcMicros(char[] text, int offset, int length) {
    if (length != 20 && (length < 22 || length > 27)) {
      return NOT_MINE;
    }
    int o = offset;
    if (text[o + 4] != '-' || text[o + 7] != '-' || text[o + 10] != 'T' || text[o + 13] != ':'
        || text[o + 16] != ':' || text[o + length - 1] != 'Z') {
      return NOT_MINE;
    }
    int year = digits(text, o, 4);
    int month = digits(text, o + 5, 2);
    int day = digits(text, o + 8, 2);
    int hour = digits(text, o + 11, 2);
    int minute = digits(text, o + 14, 2);
    int second = digits(text, o + 17, 2);
    if (year < 1000 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59
        || second < 0 || second > 59) {
      return NOT_MINE;
    }
    boolean leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (day > DAYS[month - 1] + (month == 2 && leap ? 1 : 0)) {
      return NOT_MINE;
    }
    long fraction = 0;
    if (length > 20) {
      if (text[o + 19] != '.') {
        return NOT_MINE;
      }
      int n = length - 21;
      int value = digits(text, o + 20, n);
      if (value < 0) {
        return NOT_MINE;
      }
      fraction = value;
      for (int i = n; i < 6; i++) {
        fraction *= 10;
      }
    }
    long seconds = epochDay(year, month, day) * 86_400L + hour * 3_600L + minute * 60L + second;
    return seconds * 1_000_000L + fraction;
  }

  /** The value of {@code n} ASCII digits, or -1 when one is not a digit. */
  private static int digits(char[] text, int from, int n) {
    int value = 0;
    for (int i = from; i < from + n; i++) {
      int d = text[i] - '0';
      if (d < 0 || d > 9) {
        return -1;
      }
      value = value * 10 + d;
    }
    return value;
  }

  /** Days since 1970-01-01 of a valid proleptic Gregorian date (java.time.LocalDate#toEpochDay's arithmetic). */
  static long epochDay(int year, int month, int day) {
    long y = year;
    long m = month;
    long total = 365 * y;
    if (y >= 0) {
      total += (y + 3) / 4 - (y + 99) / 100 + (y + 399) / 400;
    } else {
      total -= y / -4 - y / -100 + y / -400;
    }
    total += (367 * m - 362) / 12;
    total += day - 1;
    if (m > 2) {
      total--;
      boolean leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
      if (!leap) {
        total--;
      }
    }
    return total - 719_528L;
  }
}
