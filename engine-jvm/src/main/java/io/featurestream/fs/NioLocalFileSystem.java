package io.featurestream.fs;

import org.apache.hadoop.fs.LocalFileSystem;

/**
 * Hadoop's local file system (checksummed, scheme `file`) over {@link NioRawLocalFileSystem}: the
 * same files, checksums and permissions, without a `chmod` process per file. A local Spark session
 * names it in `fs.file.impl` (featurestream.spark.configure_builder).
 */
public class NioLocalFileSystem extends LocalFileSystem {
  public NioLocalFileSystem() {
    super(new NioRawLocalFileSystem());
  }
}
