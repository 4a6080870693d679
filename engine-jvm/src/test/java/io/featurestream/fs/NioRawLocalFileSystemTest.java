package io.featurestream.fs;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.FileNotFoundException;
import java.nio.file.Files;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Set;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.permission.FsPermission;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class NioRawLocalFileSystemTest {

  /** Octal digits of a mode as the OS reports it: user, group, other. */
  private static int octal(Set<PosixFilePermission> set) {
    String text = PosixFilePermissions.toString(set);
    int mode = 0;
    for (int i = 0; i < 9; i++) {
      mode = (mode << 1) | (text.charAt(i) == '-' ? 0 : 1);
    }
    return mode;
  }

  @Test
  void everyModeReadsBackFromTheOsAsHadoopsOctal(@TempDir java.nio.file.Path dir) throws Exception {
    NioRawLocalFileSystem fs = new NioRawLocalFileSystem();
    fs.initialize(java.net.URI.create("file:///"), new Configuration());
    java.nio.file.Path file = Files.createFile(dir.resolve("f"));
    for (int mode = 0; mode < 512; mode++) {
      fs.setPermission(new Path(file.toUri()), new FsPermission((short) mode));
      assertEquals(mode, octal(Files.getPosixFilePermissions(file)), Integer.toOctalString(mode));
    }
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-------"));
  }

  @Test
  void createdFilesAndFoldersGetTheUmaskedDefaults(@TempDir java.nio.file.Path dir) throws Exception {
    Configuration conf = new Configuration();
    conf.set("fs.permissions.umask-mode", "027");
    NioLocalFileSystem fs = new NioLocalFileSystem();
    fs.initialize(java.net.URI.create("file:///"), conf);
    Path folder = new Path(dir.resolve("a/b").toUri());
    fs.mkdirs(folder, FsPermission.getDirDefault().applyUMask(FsPermission.getUMask(conf)));
    assertEquals(0750, octal(Files.getPosixFilePermissions(dir.resolve("a/b"))));
    try (FSDataOutputStream out = fs.create(new Path(folder, "part"), true)) {
      out.write(1);
    }
    assertEquals(0640, octal(Files.getPosixFilePermissions(dir.resolve("a/b/part"))));
    // The checksum beside it, as Hadoop's LocalFileSystem writes one.
    assertEquals(true, Files.exists(dir.resolve("a/b/.part.crc")));
  }

  @Test
  void aMissingPathIsFileNotFound(@TempDir java.nio.file.Path dir) throws Exception {
    NioRawLocalFileSystem fs = new NioRawLocalFileSystem();
    fs.initialize(java.net.URI.create("file:///"), new Configuration());
    assertThrows(FileNotFoundException.class,
        () -> fs.setPermission(new Path(dir.resolve("none").toUri()), new FsPermission((short) 0644)));
  }
}
