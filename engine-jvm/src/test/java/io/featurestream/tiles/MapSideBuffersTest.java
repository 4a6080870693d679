package io.featurestream.tiles;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The map side's task-scoped helpers: the encode buffer (StateBytes.Out, reused) and the top-k values (StringCanon). */
class MapSideBuffersTest {

  /** Random writes through one reused buffer, reset in between: the bytes a new ByteArrayOutputStream gets. */
  @Test
  void aReusedOutWritesWhatAByteArrayOutputStreamWrites() throws IOException {
    Random random = new Random(11);
    StateBytes.Out sink = StateBytes.out(1);
    DataOutputStream out = sink.data();
    for (int round = 0; round < 200; round++) {
      ByteArrayOutputStream expected = new ByteArrayOutputStream();
      DataOutputStream reference = new DataOutputStream(expected);
      sink.reset();
      for (int op = random.nextInt(60); op > 0; op--) {
        switch (random.nextInt(5)) {
          case 0:
            int b = random.nextInt();
            out.writeByte(b);
            reference.writeByte(b);
            break;
          case 1:
            int i = random.nextInt();
            out.writeInt(i);
            reference.writeInt(i);
            break;
          case 2:
            long l = random.nextLong();
            out.writeLong(l);
            reference.writeLong(l);
            break;
          case 3:
            double d = random.nextGaussian();
            out.writeDouble(d);
            reference.writeDouble(d);
            break;
          default:
            byte[] bytes = new byte[random.nextInt(3000)];
            random.nextBytes(bytes);
            int off = bytes.length == 0 ? 0 : random.nextInt(bytes.length);
            int len = random.nextInt(bytes.length - off + 1);
            out.write(bytes, off, len);
            reference.write(bytes, off, len);
        }
      }
      out.flush();
      assertEquals(expected.size(), sink.size());
      assertArrayEquals(expected.toByteArray(), sink.toByteArray(), "round " + round);
    }
  }

  @Test
  void stringCanonGivesOneObjectPerValueUpToItsBound() {
    StringCanon canon = new StringCanon();
    assertNull(canon.of(null));
    String first = new String("m-1".toCharArray());
    assertSame(first, canon.of(first));
    assertSame(first, canon.of(new String("m-1".toCharArray())));
    for (int i = 0; canon.of("v" + i) != null && i < StringCanon.MAX + 10; i++) {
      // fills the table past its bound
    }
    String late = new String("late".toCharArray());
    assertSame(late, canon.of(late));
    String again = new String("late".toCharArray());
    assertSame(again, canon.of(again), "past the bound a value goes on as it came");
    assertSame(first, canon.of(new String("m-1".toCharArray())), "known values keep their object");
  }
}
