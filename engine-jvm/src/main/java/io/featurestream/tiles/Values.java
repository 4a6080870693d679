package io.featurestream.tiles;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.sql.Timestamp;
import java.time.Instant;

/** Simple typed values: the tie rule of {@code last} and their binary form in the state. */
final class Values {
  private static final byte NULL = 0;
  private static final byte STRING = 1;
  private static final byte LONG = 2;
  private static final byte DOUBLE = 3;
  private static final byte BOOLEAN = 4;
  private static final byte TIMESTAMP = 5;
  private static final byte INSTANT = 6;
  private static final byte INT = 7;

  private Values() {}

  /**
   * Latest by event time; at equal event times the greater value wins, so the result does not
   * depend on the order events arrive in.
   */
  @SuppressWarnings({"unchecked", "rawtypes"})
  static boolean newer(long ts, Object value, long currentTs, Object current) {
    if (ts != currentTs) {
      return ts > currentTs;
    }
    if (current == null) {
      return value != null;
    }
    return value != null && ((Comparable) value).compareTo(current) > 0;
  }

  static void write(DataOutputStream out, Object value) throws IOException {
    if (value == null) {
      out.writeByte(NULL);
    } else if (value instanceof String s) {
      byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
      out.writeByte(STRING);
      out.writeInt(bytes.length);
      out.write(bytes);
    } else if (value instanceof Long l) {
      out.writeByte(LONG);
      out.writeLong(l);
    } else if (value instanceof Integer i) {
      out.writeByte(INT);
      out.writeInt(i);
    } else if (value instanceof Double d) {
      out.writeByte(DOUBLE);
      out.writeDouble(d);
    } else if (value instanceof Boolean b) {
      out.writeByte(BOOLEAN);
      out.writeBoolean(b);
    } else if (value instanceof Timestamp t) {
      out.writeByte(TIMESTAMP);
      out.writeLong(t.getTime());
      out.writeInt(t.getNanos());
    } else if (value instanceof Instant t) {
      out.writeByte(INSTANT);
      out.writeLong(t.getEpochSecond());
      out.writeInt(t.getNano());
    } else {
      throw new IllegalArgumentException("unsupported value type for last: " + value.getClass());
    }
  }

  static Object read(DataInputStream in) throws IOException {
    byte tag = in.readByte();
    switch (tag) {
      case NULL:
        return null;
      case STRING: {
        byte[] bytes = new byte[in.readInt()];
        in.readFully(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
      }
      case LONG:
        return in.readLong();
      case INT:
        return in.readInt();
      case DOUBLE:
        return in.readDouble();
      case BOOLEAN:
        return in.readBoolean();
      case TIMESTAMP: {
        Timestamp t = new Timestamp(in.readLong());
        t.setNanos(in.readInt());
        return t;
      }
      case INSTANT: {
        long seconds = in.readLong();
        return Instant.ofEpochSecond(seconds, in.readInt());
      }
      default:
        throw new IOException("unknown value tag " + tag);
    }
  }
}
