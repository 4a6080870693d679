package io.featurestream.tiles;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.util.Arrays;

/**
 * The byte streams under the state's DataInput/DataOutput streams, without the JDK's locks:
 * ByteArrayInputStream and ByteArrayOutputStream synchronise every call, and DataInputStream's
 * readInt and DataOutputStream's writeInt make four calls each, so a state round trip took
 * thousands of uncontended locks per entity and micro-batch. One thread reads or writes an entity's
 * state; the bytes are the same.
 */
final class StateBytes {
  private StateBytes() {}

  static DataInputStream in(byte[] data) {
    return new DataInputStream(new In(data));
  }

  /** An output buffer of {@code size} bytes to start with (it grows as needed). */
  static Out out(int size) {
    return new Out(size);
  }

  private static final class In extends ByteArrayInputStream {
    In(byte[] data) {
      super(data);
    }

    @Override
    public int read() {
      return pos < count ? buf[pos++] & 0xff : -1;
    }

    @Override
    public int read(byte[] b, int off, int len) {
      if (pos >= count) {
        return len == 0 ? 0 : -1;
      }
      int n = Math.min(len, count - pos);
      System.arraycopy(buf, pos, b, off, n);
      pos += n;
      return n;
    }
  }

  static final class Out extends ByteArrayOutputStream {
    Out(int size) {
      super(size);
    }

    /** The stream to write with. */
    DataOutputStream data() {
      return new DataOutputStream(this);
    }

    private void room(int more) {
      if (count + more > buf.length) {
        buf = Arrays.copyOf(buf, Math.max(buf.length * 2, count + more));
      }
    }

    @Override
    public void write(int b) {
      room(1);
      buf[count++] = (byte) b;
    }

    @Override
    public void write(byte[] b, int off, int len) {
      room(len);
      System.arraycopy(b, off, buf, count, len);
      count += len;
    }

    @Override
    public byte[] toByteArray() {
      return Arrays.copyOf(buf, count);
    }
  }
}
