package io.featurestream.tiles;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.LocalDate;
import java.time.ZoneOffset;
import java.util.Random;
import org.apache.spark.sql.catalyst.util.DateTimeUtils;
import org.apache.spark.unsafe.types.UTF8String;
import org.junit.jupiter.api.Test;
import scala.Option;

/** The timestamp shortcut of JsonEventParser against Spark's own string-to-timestamp parser. */
class JsonEventParserTest {
  private static Option<Object> spark(String text) {
    return DateTimeUtils.stringToTimestamp(UTF8String.fromString(text), ZoneOffset.ofHours(5));
  }

  /** Where the shortcut gives a value, Spark gives the same one (a zone other than UTC as the default). */
  private static boolean check(String text) {
    char[] chars = ("xx" + text + "yy").toCharArray();
    long ours = JsonEventParser.utcMicros(chars, 2, text.length());
    if (ours == JsonEventParser.NOT_MINE) {
      return false;
    }
    Option<Object> theirs = spark(text);
    assertTrue(theirs.isDefined(), text);
    assertEquals((long) (Long) theirs.get(), ours, text);
    return true;
  }

  @Test
  void theShortcutGivesSparksValueForEveryTextItTakes() {
    String[] taken = {
      "2026-11-20T08:00:00Z", "2026-11-20T08:00:00.1Z", "2026-11-20T08:00:00.12Z", "2026-11-20T08:00:00.123Z",
      "2026-11-20T08:00:00.1234Z", "2026-11-20T08:00:00.12345Z", "2026-11-20T08:00:00.123456Z",
      "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999999Z", "2000-02-29T12:00:00Z", "2024-02-29T23:59:59Z",
      "1000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "1900-03-01T00:00:00Z", "2100-12-31T00:00:00Z",
    };
    for (String text : taken) {
      assertTrue(check(text), text);
    }
    String[] left = {
      "2026-11-20T08:00:00", "2026-11-20 08:00:00Z", "2026-11-20T08:00:00.Z", "2026-11-20T08:00:00.1234567Z",
      "2026-11-20T08:00:00+00:00", "2026-13-20T08:00:00Z", "2026-00-20T08:00:00Z", "2026-11-31T08:00:00Z",
      "2026-02-29T08:00:00Z", "1900-02-29T08:00:00Z", "2026-11-20T24:00:00Z", "2026-11-20T08:60:00Z",
      "2026-11-20T08:00:60Z", "0999-11-20T08:00:00Z", "2026-11-20T08:00:00z", "2026-1a-20T08:00:00Z",
      "2026-11-20T08:00:00.12a4Z", " 2026-11-20T08:00:00Z", "2026-11-20T08:00:00Z ", "+2026-11-20T08:00:00Z",
      "2026-11-20t08:00:00Z", "2026/11/20T08:00:00Z", "2026-11-20T08:00:00.-1Z", "",
    };
    for (String text : left) {
      assertEquals(JsonEventParser.NOT_MINE, JsonEventParser.utcMicros(text.toCharArray(), 0, text.length()), text);
    }
    Random random = new Random(21);
    int taken2 = 0;
    for (int i = 0; i < 200_000; i++) {
      StringBuilder text = new StringBuilder(String.format("%04d-%02d-%02dT%02d:%02d:%02d", 1000 + random.nextInt(9000),
          random.nextInt(14), random.nextInt(33), random.nextInt(25), random.nextInt(61), random.nextInt(61)));
      int fraction = random.nextInt(8);
      if (fraction > 0) {
        text.append('.');
        for (int f = 0; f < fraction; f++) {
          text.append((char) ('0' + random.nextInt(10)));
        }
      }
      text.append('Z');
      if (check(text.toString())) {
        taken2++;
      } else if (fraction < 7) {
        // Left to Spark only when Spark refuses it too.
        assertTrue(spark(text.toString()).isEmpty(), text.toString());
      }
    }
    assertTrue(taken2 > 100_000, "random texts taken: " + taken2);
  }

  @Test
  void epochDaysAreJavaTimes() {
    for (LocalDate d = LocalDate.of(1000, 1, 1); d.getYear() < 10_000; d = d.plusDays(7)) {
      assertEquals(d.toEpochDay(), JsonEventParser.epochDay(d.getYear(), d.getMonthValue(), d.getDayOfMonth()));
    }
  }
}
