package io.featurestream.tiles;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The UDF against the round trip it replaces (decode with replacement, encode, compare). */
class InvalidUtf8Test {
  private static boolean roundTripDiffers(byte[] value) {
    byte[] back = new String(value, StandardCharsets.UTF_8).getBytes(StandardCharsets.UTF_8);
    return !Arrays.equals(back, value);
  }

  private static void check(byte[] value) {
    assertEquals(roundTripDiffers(value), new InvalidUtf8().call(value), Arrays.toString(value));
  }

  @Test
  void knownCases() {
    assertEquals(false, new InvalidUtf8().call(null));
    check(new byte[0]);
    check("{\"a\": 1}".getBytes(StandardCharsets.UTF_8));
    check("café ☕ 🍰".getBytes(StandardCharsets.UTF_8));
    check(new byte[] {(byte) 0xff, (byte) 0xfe, '{', '}'});
    check(new byte[] {'m', '-', (byte) 0xc3, 0x28});
    check(new byte[] {(byte) 0xc0, (byte) 0x80}); // overlong NUL
    check(new byte[] {(byte) 0xed, (byte) 0xa0, (byte) 0x80}); // an encoded surrogate
    check(new byte[] {(byte) 0xf4, (byte) 0x90, (byte) 0x80, (byte) 0x80}); // above U+10FFFF
    check(new byte[] {'a', (byte) 0xe2, (byte) 0x98}); // truncated at the end
    check(new byte[] {(byte) 0xef, (byte) 0xbf, (byte) 0xbd}); // U+FFFD itself is valid
  }

  @Test
  void randomBytesAgreeWithTheRoundTrip() {
    Random random = new Random(7);
    byte[] pool = "aé☕🍰".getBytes(StandardCharsets.UTF_8);
    for (int n = 0; n < 200_000; n++) {
      byte[] value = new byte[random.nextInt(9)];
      for (int i = 0; i < value.length; i++) {
        value[i] = random.nextInt(3) == 0 ? (byte) random.nextInt(256) : pool[random.nextInt(pool.length)];
      }
      check(value);
    }
  }
}
