package io.featurestream.tiles;

import java.util.HashMap;

/**
 * One String object per distinct top-k value of a map task (up to {@link #MAX} of them): each
 * deserialised row brings its own copy of a value, and a frequent-items sketch compares a value
 * with the keys it holds (other rows' copies, cold by the time the held inputs are replayed) byte
 * by byte; with one object per value the comparison is an identity and its hash code is cached.
 * The sketches get equal strings either way.
 */
final class StringCanon {
  /** Distinct values kept (about 100 bytes each); past it, values go on as they came. */
  static final int MAX = 1 << 16;
  private final HashMap<String, String> seen = new HashMap<>();

  /** The task's object for {@code value} (null for null). */
  String of(String value) {
    if (value == null) {
      return null;
    }
    String known = seen.get(value);
    if (known != null) {
      return known;
    }
    if (seen.size() < MAX) {
      seen.put(value, value);
    }
    return value;
  }
}
